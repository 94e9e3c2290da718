"""``python -m turnscope.viewer.serve run APP ...``: ``streamlit run`` whose process imports
the viewer's heavy libraries in the background while the server starts.

Otherwise the first page a user opens pays for them (pandas, pyarrow, Altair, plotly.py and
SQLAlchemy: ~0.8 s of a 4–5 s first visit at 100,000 runs). Only third-party modules are
warmed: turnscope's pages define Streamlit caches, which need the running server.
"""

from __future__ import annotations

import sys
import threading

WARM = ("pandas", "pyarrow", "altair", "plotly.graph_objects", "sqlalchemy.dialects.sqlite")


def _warm() -> None:
    """Import the heavy libraries; best effort (a page imports what it needs anyway)."""
    import importlib

    for name in WARM:
        try:
            importlib.import_module(name)
        except Exception:
            pass


def main() -> None:
    """Start warming, then hand the command line to Streamlit's own CLI."""
    threading.Thread(target=_warm, name="turnscope-warm", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    cli.main()


if __name__ == "__main__":
    main()
