"""``python -m pflambda`` is the ``pflambda`` command."""

import sys

from pflambda.cli import main

sys.exit(main())
