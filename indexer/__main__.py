"""`python -m indexer DIR...` == `clapsearch index DIR...`."""

import sys

from clapsearch.cli import app
from clapsearch.cli.common import run_app

if __name__ == "__main__":
    sys.argv = ["clapsearch", "index", *sys.argv[1:]]
    run_app(app)
