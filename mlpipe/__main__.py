"""``python -m mlpipe`` is the ``mlpipe`` command."""

from mlpipe.cli.main import main

main()
