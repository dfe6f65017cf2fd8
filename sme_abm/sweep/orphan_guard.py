"""Imported first by a sweep's forkserver: it is SIGKILLed when the sweep dies, however it dies.

Only the forkserver imports this module (its side effect would otherwise tie the importing
process to its own parent); see :func:`sme_abm.sweep.executor._start_forkserver`.
"""

import os

from .executor import PARENT_ENV, die_with_parent

die_with_parent(int(os.environ[PARENT_ENV]) if os.environ.get(PARENT_ENV, "").isdigit() else None)
