"""``python -m archsmith``: the command line (see ``archsmith.cli``)."""

import sys

from archsmith.cli import main

if __name__ == "__main__":
    sys.exit(main())
