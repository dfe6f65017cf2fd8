"""``python -m sme_abm.dashboard.launch ARGS``: ``solara run ARGS`` with the
dashboard's guard (:mod:`sme_abm.dashboard.guard`) in front of Solara's app.

Solara's command line starts uvicorn on ``solara.server.starlette:app``; this
module imports that app first and adds the middleware while it has not yet
started, then hands over to Solara's own ``run`` command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # Solara loads the app when its server module is imported, from SOLARA_APP
    # (which `solara run` would set only later).
    os.environ["SOLARA_APP"] = str(Path(args[0]).resolve())
    import solara.server.starlette as solara_app

    from .guard import install

    install(solara_app.app)
    from solara.__main__ import main as solara_main

    sys.argv = ["solara", "run", *args]
    solara_main()


if __name__ == "__main__":
    main()
