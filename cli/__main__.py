"""`python -m cli`: the same as the `llm-tui` command."""

import sys

from cli.main import main

sys.exit(main())
