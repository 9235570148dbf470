"""``python -m softioc``: runs a script as pythonSoftIOC's does, or a
``pythonioc`` subcommand."""

from .cli import module_main

module_main()
