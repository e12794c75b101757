"""``python -m seqkit``: the same as the ``seqkit`` command."""

from seqkit.cli import main

main()
