"""``python -m softioc``: the same as the ``pythonioc`` command."""

from .cli import main

main()
