"""``python -m softac.cli ARGS``: the same as the ``softac`` console script."""

import sys

from softac.cli import main

sys.exit(main())
