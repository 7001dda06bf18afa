"""``python -m seedspace`` runs the command line."""

import sys

from seedspace.cli.main import main

sys.exit(main())
