"""`python -m churn …`: the same command line as the `churn` script."""

import sys

from churn.cli import main

sys.exit(main())
