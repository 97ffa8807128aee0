"""The ``mlpipe`` command line: thin commands over the runtime.

May import: anything below it (it is the face); it builds nothing by hand, it calls the Engine.
"""
