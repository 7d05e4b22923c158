"""`python -m indexer DIR...` == `clapsearch index DIR...` (the same command, run as is: the
indexer builds on the library and never imports its CLI)."""

import os
import sys

if __name__ == "__main__":
    argv = [sys.executable, "-m", "clapsearch.cli", "index", *sys.argv[1:]]
    os.execv(sys.executable, argv)
