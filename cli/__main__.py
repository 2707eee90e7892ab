"""`python -m cli`: the `engagement` command."""

import sys

from cli.main import main

sys.exit(main())
