"""``python -m restorekit.cli``: the same command line as the ``restorekit`` script."""

from .app import main

main()
