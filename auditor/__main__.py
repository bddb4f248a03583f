"""`python -m auditor` runs the regaudit CLI."""

import sys

from auditor.cli import main

sys.exit(main())
