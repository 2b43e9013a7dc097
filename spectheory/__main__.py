"""``python -m spectheory`` runs the command-line interface."""

import sys

from spectheory._cli import main

sys.exit(main())
