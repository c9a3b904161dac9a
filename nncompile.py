"""`python -m nncompile …` runs the `nncompile` command."""

import sys

from runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
