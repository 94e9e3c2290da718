"""``turnscope view``: start the Streamlit viewer (turnscope/viewer) on a database, read-only."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from turnscope.cli.options import DB_HELP, ENV_JAEGER, PRICES_HELP, CliError, open_store


def add_view_command(sub: Any) -> None:
    """Register ``turnscope view``."""
    from turnscope.viewer.access import ENV_TOKEN, MODES  # no Streamlit

    p = sub.add_parser(
        "view",
        help="open the Streamlit viewer on a database (read-only)",
        description=(
            "Browse runs (failures first, filters in the URL), follow a run turn by turn, and "
            "see failure causes grouped across runs. The database is opened read-only; the "
            "server listens on 127.0.0.1 unless --host says otherwise; any other address "
            "needs access control (--auth). At start it opens its own runs page once "
            "(imports, cold queries) and then prints 'turnscope: viewer ready on URL'. Needs "
            "the viewer extra: pip install 'turnscope[viewer]'."
        ),
        epilog=(
            "Examples: turnscope view --db demo.db --port 8502; "
            "turnscope view --host 0.0.0.0 --auth token --db postgresql+psycopg://... "
            "(prints the URL to open: http://HOST:8501/?token=...)"
        ),
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help=(
            "address to listen on (default 127.0.0.1: only this machine; 0.0.0.0 shares it, "
            "and needs --auth)"
        ),
    )
    p.add_argument(
        "--auth",
        choices=MODES,
        default="none",
        help=(
            f"who may see the runs: 'token' asks for a token (${ENV_TOKEN}, else a random one; "
            "the URL to open is printed at start, and the browser keeps a cookie); 'oidc' "
            "asks for an OpenID Connect login through Streamlit's st.login, configured in the "
            "[auth] section of .streamlit/secrets.toml (see --secrets); default 'none', "
            "allowed on 127.0.0.1 only"
        ),
    )
    p.add_argument(
        "--secrets",
        metavar="FILE",
        help=(
            "Streamlit secrets file with the [auth] section for --auth oidc (default: "
            "./.streamlit/secrets.toml, then ~/.streamlit/secrets.toml)"
        ),
    )
    p.add_argument(
        "--allow-no-auth",
        action="store_true",
        help=(
            "listen on a non-loopback --host without access control anyway: only when "
            "something else limits who reaches the port (a container whose port is "
            "published on 127.0.0.1, an authenticating proxy)"
        ),
    )
    p.add_argument("--port", type=_port, default=8501, help="port to listen on (default 8501)")
    p.add_argument(
        "--jaeger-url",
        metavar="URL",
        help=(
            "Jaeger UI holding the same traces, for 'Open in Jaeger' links "
            f"(default: ${ENV_JAEGER})"
        ),
    )
    p.add_argument(
        "--open-browser",
        action="store_true",
        help="also open the viewer in a web browser on this machine",
    )
    p.add_argument("--prices", metavar="FILE", help=PRICES_HELP)
    p.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace) -> int:
    """Launch the viewer: ``streamlit run`` on turnscope's app, as a child process."""
    import importlib.util
    import subprocess

    from turnscope.store.engine import ENV_DB, StoreError, redact, resolve_url
    from turnscope.viewer import access

    refused = access.refusal(args.host, args.auth, args.allow_no_auth)
    if refused:
        raise CliError(refused)
    if importlib.util.find_spec("streamlit") is None or importlib.util.find_spec("plotly") is None:
        raise CliError("the viewer needs streamlit and plotly: pip install 'turnscope[viewer]'")
    secrets_file = access.oidc_secrets(args.secrets) if args.auth == "oidc" else None
    url = resolve_url(args.db)
    try:
        open_store(url).close()
    except StoreError as exc:
        # start anyway: the page says the same and works as soon as runs are recorded there
        print(f"turnscope: warning: {exc}", file=sys.stderr)
    env = dict(os.environ)
    env[ENV_DB] = url  # the database goes in the environment, never through a shell
    if args.prices:
        from turnscope.prices import ENV_PRICES, load_book

        load_book(args.prices)  # a bad file: one line and exit 2, before the server starts
        env[ENV_PRICES] = os.path.abspath(args.prices)
    jaeger = args.jaeger_url or os.environ.get(ENV_JAEGER)
    if jaeger:
        env[ENV_JAEGER] = jaeger
    else:
        env.pop(ENV_JAEGER, None)
    env[access.ENV_AUTH] = args.auth
    token = None
    if args.auth == "token":
        token = os.environ.get(access.ENV_TOKEN) or access.new_token()
        env[access.ENV_TOKEN] = token
    else:
        env.pop(access.ENV_TOKEN, None)
    command = view_command(args.host, args.port, headless=not args.open_browser)
    if secrets_file:
        command += ["--secrets.files", str(secrets_file)]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    who = {"none": "", "token": ", token required", "oidc": f", OpenID Connect ({secrets_file})"}
    print(
        f"turnscope viewer on http://{shown}:{args.port} — {redact(url)} "
        f"(read-only{who[args.auth]}). Ctrl+C stops it.",
        file=sys.stderr,
        flush=True,
    )
    if token:  # the one place the token is shown
        print(
            f"turnscope: open {access.open_url(args.host, args.port, token)}",
            file=sys.stderr,
            flush=True,
        )
    if os.name == "posix":
        # become the server: signals (Ctrl+C, a supervisor's SIGTERM) reach it directly and
        # no orphaned server outlives a killed launcher
        sys.stdout.flush()
        os.execve(command[0], command, env)
    process = subprocess.Popen(command, env=env)  # pragma: no cover - Windows
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait()


def view_command(host: str, port: int, *, headless: bool = True) -> list[str]:
    """The ``streamlit run`` command line of the viewer (no usage statistics, no file
    watcher, nothing fetched from the internet)."""
    from pathlib import Path

    import turnscope

    app = Path(turnscope.__file__).with_name("viewer") / "app.py"
    return [
        sys.executable,
        "-m",
        "turnscope.viewer.serve",  # streamlit, with the heavy imports warmed in the background
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true" if headless else "false",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--server.enableStaticServing",  # the timeline's plotly.js (viewer/static)
        "true",
        # turnscope prints where it listens; Streamlit's welcome lines would, on 0.0.0.0, ask
        # a public service for this machine's external IP
        "--logger.hideWelcomeMessage",
        "true",
    ]


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port between 1 and 65535, got {value!r}")
    return number
