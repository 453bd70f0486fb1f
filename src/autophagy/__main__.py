"""``python -m autophagy``: the same command line as ``autophagy``."""

from autophagy.cli import main

main()
