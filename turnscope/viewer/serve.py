"""``python -m turnscope.viewer.serve run APP ...``: ``streamlit run`` that warms itself up.

A fresh Streamlit server makes its first visitor pay for everything done once per process:
importing pandas, pyarrow, plotly.py, SQLAlchemy and turnscope's pages, compiling
Streamlit's emoji regex, and running the runs page's queries (at 100,000 runs: ~1.2 s of a
~2.5 s first visit, against 0.13 s for the same script later). So the heavy libraries are
imported before the server starts, and once it answers, a background thread opens the runs
page and the newest run's page through the server's own websocket, exactly as a browser does,
then closes that session and prints one line:
``turnscope: viewer ready on URL (warmed in N s)``. Everything here is best effort: a failed
warm-up prints one line and changes nothing else.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

WARM = (  # imported before the server starts, in the main thread (see main())
    "pandas",
    "pyarrow",
    "plotly.graph_objects",
    "sqlalchemy.dialects.sqlite",
    "streamlit.emojis",  # set_page_config's icon check compiles a huge regex: 0.17 s
    # not turnscope's pages: their st.cache_data caches, made before the runtime exists, would
    # not be the server's (Streamlit warns "No runtime found"); the warm-up visit imports them
    "websockets.sync.client",  # what the warm-up visit itself uses
    "streamlit.proto.BackMsg_pb2",
    "streamlit.proto.ForwardMsg_pb2",
)
READY_PREFIX = "turnscope: viewer ready on "
VISIT_TIMEOUT = 120.0  # seconds for one page: a cold page on a huge database is slow, not stuck


def _import_heavy() -> None:
    """Import the heavy libraries; best effort (a page imports what it needs anyway)."""
    import importlib

    for name in WARM:
        try:
            importlib.import_module(name)
        except Exception:
            pass


def _server_address(deadline: float) -> tuple[str, str] | None:
    """``host:port/base`` the server answers on, once its runtime exists, and the path of its
    websocket (None: it never started)."""
    from streamlit import config
    from streamlit.runtime import Runtime

    while not Runtime.exists():
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)
    host = str(config.get_option("server.address") or "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: talk to it locally
        host = "127.0.0.1"
    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    where = f"{f'[{host}]' if ':' in host else host}:{int(config.get_option('server.port'))}"
    where += f"/{base}" if base else ""
    return where, f"{where}/_stcore/stream"


def wait_healthy(base: str, deadline: float) -> bool:
    """Until the Streamlit server at ``base`` answers its health check (False: not by
    ``deadline``, a ``time.monotonic()`` value)."""
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as reply:
                if reply.read() == b"ok":
                    return True
        except OSError:
            time.sleep(0.1)
    return False


def visit(
    ws_url: str,
    page: str = "",
    query: str = "",
    timeout: float = VISIT_TIMEOUT,
    cookies: dict[str, str] | None = None,
) -> int:
    """Run one page through the server's websocket as a browser tab would (a new session,
    a script run, then the session closes); returns how many exception boxes it drew."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    deadline = time.monotonic() + timeout
    errors = 0
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else None
    with connect(
        ws_url,
        subprotocols=["streamlit"],  # type: ignore[list-item]
        open_timeout=10,
        max_size=None,
        additional_headers=headers,
    ) as ws:
        back = BackMsg()
        back.rerun_script.query_string = query
        back.rerun_script.page_name = page
        back.rerun_script.context_info.timezone = "UTC"
        ws.send(back.SerializeToString())
        while True:
            raw = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            msg = ForwardMsg.FromString(raw if isinstance(raw, bytes) else raw.encode())
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.new_element.WhichOneof("type") == "exception":
                errors += 1
            if kind == "script_finished":
                return errors


def _newest_run() -> str | None:
    """The newest run's trace id in the viewer's database (its page is the next most visited)."""
    from turnscope.store.queries import Store
    from turnscope.viewer.data import db_url

    try:
        store = Store(db_url())
        try:
            rows = store.list_runs(limit=1)
        finally:
            store.close()
    except Exception:  # no database yet, or not a turnscope one: the runs page says so
        return None
    return str(rows[0]["trace_id"]) if rows else None


def _access_cookie() -> dict[str, str] | None:
    """The cookie a browser let in by the token carries (None: no token access), so the
    warm-up visits the pages themselves, not the login prompt."""
    import os

    from turnscope.viewer import access

    token = os.environ.get(access.ENV_TOKEN)
    if access.mode() != "token" or not token:
        return None
    return {access.COOKIE: access.cookie_value(token)}


def warm_up(started: float, timeout: float = 60.0) -> None:
    """Wait for the server, visit the runs page and the newest run; one line out."""
    try:
        address = _server_address(started + timeout)
        if address is None:
            return
        where, stream = address
        base = f"http://{where}"
        if not wait_healthy(base, started + timeout):
            print(f"turnscope: warm-up skipped: {base} did not answer", file=sys.stderr)
            return
        ws_url = f"ws://{stream}"
        cookies = _access_cookie()
        errors = visit(ws_url, cookies=cookies)
        trace_id = _newest_run()
        if trace_id:
            errors += visit(ws_url, "run", f"trace_id={trace_id}", cookies=cookies)
        note = f"; {errors} error box(es) drawn, open the page to see them" if errors else ""
        print(
            f"{READY_PREFIX}{base} (warmed in {time.monotonic() - started:.1f} s{note})",
            file=sys.stderr,
            flush=True,
        )
    except Exception as exc:  # the warm-up must never take the viewer down
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"turnscope: warm-up skipped: {reason}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> Any:
    """Import, start the warm-up thread, then hand the command line to Streamlit's CLI."""
    started = time.monotonic()
    # Imports stay in this thread, Streamlit first: importing pandas in a background thread
    # while Streamlit imports plotly here let plotly see a half-initialised pandas in
    # sys.modules and crash the server (about one start in eight). Imports hold the GIL
    # anyway, so running them beside the server's start saved little.
    from streamlit.web import cli

    _import_heavy()
    threading.Thread(target=warm_up, args=(started,), name="turnscope-warm", daemon=True).start()
    sys.argv = ["streamlit", *(sys.argv[1:] if argv is None else argv)]
    return cli.main()


if __name__ == "__main__":
    main()
