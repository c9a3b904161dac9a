"""`python -m nncompile …` runs the `nncompile` command."""

import sys

from nncompile.cli import main

if __name__ == "__main__":
    sys.exit(main())
