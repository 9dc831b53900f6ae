"""Lets `python -m simulatord` run the command line."""

import sys

from simulatord.cli import main

sys.exit(main())
