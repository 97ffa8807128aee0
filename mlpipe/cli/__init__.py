"""The ``mlpipe`` command line: thin commands over the runtime."""
