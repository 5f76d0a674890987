"""`python -m leadrules.engine.cli`: the same as the `leadrules` command."""

import sys

from leadrules.engine.cli import main

sys.exit(main())
