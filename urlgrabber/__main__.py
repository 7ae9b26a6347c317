"""``python -m urlgrabber``: the command line (see ``urlgrabber.cli``)."""

from __future__ import annotations

import sys

from urlgrabber.cli import main

if __name__ == "__main__":
    sys.exit(main())
