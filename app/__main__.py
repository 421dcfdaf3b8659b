"""`python -m app`: start the web app (see `python -m app --help`)."""

import sys

from app import main

if __name__ == "__main__":
    sys.exit(main())
