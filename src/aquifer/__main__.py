"""``python -m aquifer`` is the ``aquifer`` command."""

from aquifer.cli import main

main()
