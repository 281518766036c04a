"""Suite-wide setup: tests use the in-memory store unless they choose another.

Outside Lambda pflambda's default is the embedded SQLite store in ``.pflambda/`` of the
working directory; a test that builds an Agent or Settings without saying which store
would otherwise write there. Tests of the embedded store set ``PFLAMBDA_STORE`` (or pass
an ``env``) themselves.
"""

from __future__ import annotations

import os

os.environ.setdefault("PFLAMBDA_STORE", "memory")
