"""turnscope command line: record demo runs, list runs, explain why a run failed.

Every command reads the database read-only except ``demo`` and ``prune``. Errors a user can fix (no
database, unknown trace id, bad URL) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from turnscope import __version__
from turnscope.cli.conversations import (
    CONVERSATION_HELP,
    add_conversations_command,
    resolve_conversation_id,
)
from turnscope.cli.options import (
    CHECK_COLOR,
    DB_HELP,
    ENV_JAEGER,
    PRICES_HELP,
    STATUS_COLORS,
    CliError,
    open_store,
    paint,
    positive,
    token_count,
    use_color,
)
from turnscope.records import ALL_REASONS, CATEGORIES, STATUSES
from turnscope.repro.command import add_repro_command
from turnscope.viewer.format import category_text, check_text, duration  # no Streamlit

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``turnscope`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"turnscope: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # StoreError, ConfigError and bad option values
        print(f"turnscope: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("turnscope: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its --help texts are the manual)."""
    parser = argparse.ArgumentParser(
        prog="turnscope",
        description=(
            "See and debug OpenAI Agents SDK runs: every run recorded with its turns and a "
            "verdict that says why it failed. Record runs with turnscope.instrument() in your "
            "app, or try `turnscope demo`."
        ),
        epilog="Run `turnscope COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"turnscope {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser(
        "demo",
        help="record scripted agent runs (no API key, no network)",
        description=(
            "Run scripted workflows through the real Agents SDK Runner with a fake model and "
            "record them: successes, successes with recovered errors, a run paused for a "
            "human's approval (new SDKs), and every failure category the installed SDK can "
            "produce."
        ),
    )
    p.add_argument("--db", help="database to write (default: $TURNSCOPE_DB, else ./turnscope.db)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    add_demo_otlp_options(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "runs",
        help="list recorded runs, newest first",
        description=(
            "List recorded runs, newest first, with status, failure category and its reason "
            "(e.g. model_error (rate_limited)); CHECK marks runs with warnings, things to look "
            "at in a run that looks fine (`turnscope why` lists them). COST is what the "
            "run's model calls cost (genai-prices' bundled prices, or --prices): ≥ when some "
            "model's price is unknown, ? when no call's is known (`why` names the models). "
            "--json rows carry reason and warning_count, and "
            "cost_usd (null when no call is priced) and cost_partial."
        ),
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--status", choices=STATUSES, help="only runs with this status")
    p.add_argument("--category", choices=CATEGORIES, help="only failures of this category")
    p.add_argument(
        "--reason",
        choices=ALL_REASONS,
        metavar="REASON",
        help="only failures with this finer cause: " + ", ".join(ALL_REASONS),
    )
    p.add_argument(
        "--warnings",
        action="store_true",
        help="only runs with warnings (e.g. a tool reported an error, a refusal)",
    )
    p.add_argument("--workflow", help="only runs of this workflow name")
    p.add_argument("--agent", help="only runs in which this agent ran")
    p.add_argument("--tool", help="only runs that called this tool")
    p.add_argument("--search", help="text to find in error messages and explanations")
    p.add_argument("--since", help="only runs started since: 30m, 2h, 7d or an ISO date/time")
    p.add_argument("--conversation", metavar="ID", help=CONVERSATION_HELP)
    p.add_argument("--limit", type=positive, default=20, help="how many runs (default 20)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--prices", metavar="FILE", help=PRICES_HELP)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser(
        "why",
        help="explain a run: status, failure category and reason, failing agent and turn, evidence",
        description=(
            "Explain one run: its verdict in one sentence, the category and its reason (e.g. "
            "rate_limited), the exception, the failing agent, turn and span, the evidence, "
            "recovered errors, warnings (things to look at even in a run that looks fine), "
            "the cost per agent and turn (and, for a failed run, what was spent after it went "
            "wrong) and the turns. TRACE_ID may be a unique prefix."
        ),
    )
    p.add_argument("trace_id", metavar="TRACE_ID")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    p.add_argument("--prices", metavar="FILE", help=PRICES_HELP)
    p.set_defaults(func=cmd_why)

    add_diff_command(sub)
    add_conversations_command(sub)
    add_view_command(sub)
    add_export_otlp_command(sub)
    add_repro_command(sub)
    add_prune_command(sub)
    return parser


# --- view (the Streamlit viewer; owned by turnscope/viewer) ----------------------------------


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


# --- OTLP (turnscope/otlp: sink.py and backfill.py) -------------------------------------------


OTLP_PROTOCOLS = ("grpc", "http/protobuf")
ENDPOINT_HELP = (
    "OTLP endpoint, e.g. http://localhost:4317 (gRPC) or http://localhost:4318 (HTTP; "
    "/v1/traces is added). Default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "
    "$OTEL_EXPORTER_OTLP_ENDPOINT"
)
PROTOCOL_HELP = (
    "grpc or http/protobuf (default: $OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "
    "$OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf for port 4318 and grpc otherwise)"
)


def add_demo_otlp_options(p: argparse.ArgumentParser) -> None:
    """OTLP options of ``turnscope demo``."""
    p.add_argument(
        "--otlp-endpoint", metavar="URL", help="also send the runs over OTLP: " + ENDPOINT_HELP
    )
    p.add_argument("--otlp-protocol", choices=OTLP_PROTOCOLS, help=PROTOCOL_HELP)


def add_export_otlp_command(sub: Any) -> None:
    """Register ``turnscope export-otlp``."""
    p = sub.add_parser(
        "export-otlp",
        help="send stored runs to Jaeger or any OTLP backend (backfill)",
        description=(
            "Replay stored runs as OpenTelemetry spans over OTLP, with the same trace and span "
            "ids as live export: replaying twice creates no new traces. Runs still in "
            "progress are skipped. Standard OTEL_EXPORTER_OTLP_* variables (headers, "
            "timeout, TLS), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES apply; message "
            "content is sent only with --content or "
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true."
        ),
        epilog="Example: turnscope export-otlp --db runs.db --endpoint http://localhost:4317",
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument("--endpoint", metavar="URL", help=ENDPOINT_HELP + ", else http://localhost:4317")
    p.add_argument("--protocol", choices=OTLP_PROTOCOLS, help=PROTOCOL_HELP)
    p.add_argument("--since", help="only runs started since: 30m, 2h, 7d or an ISO date/time")
    p.add_argument(
        "--trace-id",
        action="append",
        metavar="TRACE_ID",
        help="only this run (a unique prefix is enough; repeat for several)",
    )
    p.add_argument(
        "--service-name", help="service.name (default: $OTEL_SERVICE_NAME, else openai-agents)"
    )
    p.add_argument(
        "--headers", help="k=v,k2=v2 request headers (default: $OTEL_EXPORTER_OTLP_HEADERS)"
    )
    p.add_argument("--content", action="store_true", default=None, help="include message content")
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the backend to take the last spans (default 30)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export_otlp)


def cmd_export_otlp(args: argparse.Namespace) -> int:
    """Backfill stored runs into an OTLP backend."""
    from turnscope.config import resolve_otlp
    from turnscope.otlp.backfill import ProgressBar, backfill, render_summary
    from turnscope.store.queries import parse_since

    since = parse_since(args.since)
    http = (args.protocol or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or "").startswith(
        "http"
    ) or (os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").startswith("http")
    settings = resolve_otlp(
        args.endpoint,
        args.protocol,
        args.headers,
        args.service_name,
        args.content,
        default_endpoint="http://localhost:4318" if http else "http://localhost:4317",
    )
    assert settings is not None
    # a missing or foreign database is a one-line error, before any export
    open_store(args.db).close()
    progress = None if args.quiet else ProgressBar(sys.stderr)
    if not args.quiet:
        print(f"Exporting runs to {settings.label} ({settings.protocol})...", file=sys.stderr)
    result = backfill(
        args.db,
        settings,
        since=since,
        trace_ids=args.trace_id,
        progress=progress,
        timeout=args.timeout,
    )
    print(render_summary(result, os.environ.get(ENV_JAEGER)))
    if result.missing and not result.runs:
        raise CliError(f"no run with trace id {', '.join(result.missing)}")
    return 0 if result.ok else 1


# --- prune (retention; the code is in store/prune.py) ---------------------------------------


def add_prune_command(sub: Any) -> None:
    """Register ``turnscope prune``."""
    p = sub.add_parser(
        "prune",
        help="delete old runs and their spans (writes: the only command besides demo)",
        description=(
            "Delete runs that started before a cutoff and were not written since, with their "
            "spans, in small batches (one transaction each): safe while agent processes "
            "write and the viewer is open. A run still running under a live writer is never "
            "deleted. This command WRITES to the database: every other command but demo only "
            "reads it. Prints what it deleted, or with --dry-run what it would delete."
        ),
        epilog=(
            "Examples: turnscope prune --older-than 30d --dry-run; "
            "turnscope prune --db postgresql+psycopg://... --older-than 2026-11-01 --keep-failed"
        ),
    )
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "--older-than",
        required=True,
        metavar="AGE",
        help="delete runs started before now minus AGE (90s, 15m, 2h, 30d, 2w) or before an "
        "ISO date/time (2026-11-01, 2026-11-01T12:00+01:00; UTC if no zone)",
    )
    p.add_argument(
        "--keep-failed",
        action="store_true",
        help="keep failed and incomplete runs, whatever their age",
    )
    p.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    p.add_argument(
        "--vacuum",
        action="store_true",
        help="then give the space back: SQLite VACUUM (the file shrinks; writers wait while it "
        "runs, so choose a quiet moment), PostgreSQL VACUUM (ANALYZE) (no exclusive lock)",
    )
    p.set_defaults(func=cmd_prune)


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete (or count) old runs; print what went."""
    from turnscope.store.prune import prune, vacuum
    from turnscope.store.queries import parse_since

    cutoff = parse_since(args.older_than)
    if cutoff is None:
        raise CliError("--older-than needs an age (30d) or an ISO date/time")
    result = prune(args.db, cutoff, keep_failed=args.keep_failed, dry_run=args.dry_run)
    statuses = ", ".join(f"{n:,} {status}" for status, n in result.runs.most_common())
    what = f"{result.run_count:,} runs" + (f" ({statuses})" if statuses else "")
    when = cutoff.strftime("%Y-%m-%d %H:%M:%S UTC")
    if result.dry_run:
        print(
            f"would delete {what} and {result.spans:,} spans, started before {when}, "
            f"from {result.database} (dry run: nothing deleted)"
        )
        return 0
    print(
        f"deleted {what} and {result.spans:,} spans, started before {when}, "
        f"from {result.database} in {result.batches:,} "
        + ("batch" if result.batches == 1 else "batches")
    )
    if result.processes:
        print(f"deleted {result.processes:,} rows of writer processes gone since before then")
    if args.vacuum:
        sizes = vacuum(args.db)
        if sizes.before is not None and sizes.after is not None:
            print(f"vacuumed: {_mb(sizes.before)} -> {_mb(sizes.after)}")
        else:
            print("vacuumed")
    return 0


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


# --- demo ------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Record the scripted demo workflows."""
    from turnscope.demo.runner import run_demo

    summary = run_demo(db=args.db, progress=not args.quiet, **demo_otlp_settings(args))
    return 0 if summary.ok else 1


def demo_otlp_settings(args: argparse.Namespace) -> dict[str, Any]:
    """TurnscopeProcessor keyword arguments for the demo's OTLP options."""
    options: dict[str, Any] = {}
    if getattr(args, "otlp_endpoint", None):
        options["otlp_endpoint"] = args.otlp_endpoint
    if getattr(args, "otlp_protocol", None):
        options["otlp_protocol"] = args.otlp_protocol
    from turnscope.config import resolve_otlp

    settings = resolve_otlp(options.get("otlp_endpoint"), options.get("otlp_protocol"))
    if settings is not None and not args.quiet:
        print(
            f"Sending the runs over OTLP to {settings.label} ({settings.protocol})", file=sys.stderr
        )
    return options


# --- runs ------------------------------------------------------------------------------------


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs as a table or JSON."""
    from turnscope.prices import load_book
    from turnscope.store.costs import add_costs
    from turnscope.store.queries import RunFilter, parse_since

    store = open_store(args.db)
    conversation = args.conversation and resolve_conversation_id(store, args.conversation)
    flt = RunFilter(
        conversation_id=conversation or None,
        status=args.status,
        category=args.category,
        reason=args.reason,
        with_warnings=args.warnings,
        workflow=args.workflow,
        agent=args.agent,
        tool=args.tool,
        search=args.search,
        since=parse_since(args.since),
    )
    runs = store.list_runs(flt, limit=args.limit, order="oldest" if conversation else "newest")
    add_costs(store, runs, load_book(args.prices))
    if args.json:
        print(json.dumps(runs, indent=2, ensure_ascii=False, default=str))
        return 0
    total = store.count_runs(flt)
    print(render_runs_table(runs, color=use_color()))
    shown = f"{len(runs)} of {total} runs" if total > len(runs) else f"{total} runs"
    print(f"\n{shown} in {store.label}. Explain one: turnscope why TRACE_ID")
    return 0


def render_runs_table(runs: list[dict[str, Any]], color: bool = False) -> str:
    """Runs as an aligned text table."""
    headers = ["STARTED", "STATUS", "CHECK", "CATEGORY", "WORKFLOW", "AGENTS", "TURNS", "ERR"]
    headers += ["TOKENS", "COST", "DURATION", "TRACE ID"]
    rows = []
    for run in runs:
        started = (run["started_at"] or "")[:19].replace("T", " ")
        turns = str(run["turns"])
        if run.get("max_turns"):
            turns = f"{run['failing_turn']}/{run['max_turns']}"
        rows.append(
            [
                started,
                run["status"],
                check_text(run.get("warning_count")),
                category_text(run["category"], run.get("reason")),
                _cut(run["workflow"] or "", 28),
                _cut(run["agent_path"] or "", 30),
                turns,
                str(run["error_count"]),
                token_count(run["input_tokens"] + run["output_tokens"]),
                cost_text(run),
                duration(run["duration_ms"]),
                run["trace_id"],
            ]
        )
    if not rows:
        return "No runs match."
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        cells = []
        for i, (cell, width) in enumerate(zip(row, widths, strict=True)):
            padded = cell.ljust(width)
            if i == 1:
                padded = paint(padded, STATUS_COLORS.get(cell), color)
            elif i == 2 and cell:
                padded = paint(padded, CHECK_COLOR, color)
            cells.append(padded)
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def cost_text(run: dict[str, Any]) -> str:
    """A runs row's cost: ``$0.042``, ``≥ $0.042`` (partial), ``?`` (no price known)."""
    from turnscope.prices import money

    if run.get("cost_usd") is None:
        return "?" if run.get("cost_partial") else "—"
    return money(run["cost_usd"], bool(run.get("cost_partial")))


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# --- why -------------------------------------------------------------------------------------


def cmd_why(args: argparse.Namespace) -> int:
    """Explain one run."""
    from turnscope.analysis.cost import run_cost
    from turnscope.prices import load_book

    book = load_book(args.prices)
    store = open_store(args.db)
    trace_id = store.resolve_trace_id(args.trace_id)
    run = store.get_run(trace_id)
    analysis = store.analysis(trace_id)
    report = why_report(run, analysis)
    cost = run_cost(analysis, book)
    report["cost"] = cost.to_dict()
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    else:
        print(render_why(report, analysis, color=use_color(), cost=cost))
    return 0


def why_report(run: dict[str, Any], analysis: Any) -> dict[str, Any]:
    """The ``turnscope why --json`` object (its fields: docs/verdict.md)."""
    verdict = analysis.verdict
    report: dict[str, Any] = {
        "trace_id": run["trace_id"],
        "workflow": run["workflow"],
        **verdict.to_dict(),
    }
    order = ["trace_id", "workflow", "status", "category", "reason", "message", "exception"]
    order += ["agent", "turn", "max_turns", "span_id", "tool", "explanation", "recovered_errors"]
    order += ["evidence", "warnings"]
    report = {k: report[k] for k in order}
    report["started_at"] = run["started_at"]
    report["duration_ms"] = run["duration_ms"]
    report["turns"] = [t.to_dict() for t in analysis.structure.turns]
    jaeger = os.environ.get(ENV_JAEGER)
    if jaeger:
        from turnscope.ids import otel_trace_id_hex

        report["jaeger_url"] = f"{jaeger.rstrip('/')}/trace/{otel_trace_id_hex(run['trace_id'])}"
    return report


def render_why(report: dict[str, Any], analysis: Any, color: bool = False, cost: Any = None) -> str:
    """The verdict in words, then evidence, recovered errors, warnings and turns."""
    status = report["status"]
    head = f"{report['trace_id']}  {report['workflow'] or ''}".rstrip()
    category = category_text(report["category"], report.get("reason"))
    label = status + (f" · {category}" if category else "")
    lines = [head, paint(label, STATUS_COLORS.get(status), color), "", report["explanation"], ""]
    facts = [
        ("exception", report["exception"]),
        ("message", report["message"]),
        ("agent", report["agent"]),
        ("turn", _turn_text(report)),
        ("tool", report["tool"]),
        ("span", report["span_id"]),
        ("jaeger", report.get("jaeger_url")),
    ]
    if cost is not None:
        facts += cost_facts(cost)
    for key, value in facts:
        if value not in (None, ""):
            lines.append(f"  {key:<10} {value}")
    if report["evidence"]:
        lines += ["", "Evidence:"]
        for item in report["evidence"]:
            where = f"{item['kind']} {item['span_id']}" if item["span_id"] else item["kind"]
            lines.append(f"  - [{where}] {item['message']}")
    if report["recovered_errors"]:
        lines += ["", "Recovered errors (the run went on):"]
        for group in report["recovered_errors"]:
            tool = f" {group['tool']}" if group.get("tool") else ""
            lines.append(f"  - {group['category']}{tool} ×{group['count']}: {group['message']}")
    if report.get("warnings"):
        lines += ["", paint("Warnings (worth a look):", CHECK_COLOR, color)]
        for warning in report["warnings"]:
            lines.append(f"  - {warning['kind']}{_where(warning)}: {warning['message']}")
    turns = analysis.structure.turns
    if turns:
        lines += ["", "Turns:"]
        for turn in turns:
            nested = "" if analysis.structure.scopes[turn.scope].top_level else " (agent as tool)"
            took = "—"
            if turn.started_at and turn.ended_at:
                took = duration((turn.ended_at - turn.started_at).total_seconds() * 1000)
            tokens = turn.input_tokens + turn.output_tokens
            errors = f" · {turn.errors} error(s)" if turn.errors else ""
            lines.append(
                f"  {turn.number:>3}  {turn.agent or '?'}{nested}: {turn.model_calls} model call(s)"
                f", {turn.tool_calls} tool call(s), {token_count(tokens)} tokens, {took}{errors}"
            )
    return "\n".join(lines)


def cost_facts(cost: Any) -> list[tuple[str, str | None]]:
    """The ``why`` lines about money: total, per agent, and the spend after the failure."""
    facts: list[tuple[str, str | None]] = [("cost", cost.total.text())]
    if len(cost.by_agent) > 1:
        facts.append(("by agent", ", ".join(f"{a} {t.text()}" for a, t in cost.by_agent.items())))
    facts.append(("after fail", cost.after_failure_text()))
    return facts


def _where(warning: dict[str, Any]) -> str:
    """`` [agent Helper, turn 2, span span_1]`` for what a warning names, else empty."""
    parts = []
    if warning.get("agent"):
        parts.append(f"agent {warning['agent']}")
    if warning.get("turn") is not None:
        parts.append(f"turn {warning['turn']}")
    if warning.get("span_id"):
        parts.append(f"span {warning['span_id']}")
    return f" [{', '.join(parts)}]" if parts else ""


def _turn_text(report: dict[str, Any]) -> str | None:
    if report["turn"] is None:
        return None
    if report["max_turns"]:
        return f"{report['turn']} of {report['max_turns']} (max_turns)"
    return str(report["turn"])


# --- diff (the alignment and its sentences: turnscope/analysis/diff.py) ----------------------


def add_diff_command(sub: Any) -> None:
    """Register ``turnscope diff``."""
    p = sub.add_parser(
        "diff",
        help="compare two runs: the first turn where they part, and both verdicts",
        description=(
            "Compare two runs of the same workflow turn by turn and name the first turn where "
            "they part, in one sentence, with its kind: agent, guardrail, error, model, "
            "handoff, tool, arguments, tool_error, tool_output, output, extra_turns (one run "
            "made turns the other did not, e.g. it looped twice more) or verdict (every turn "
            "alike, the verdicts differ). Turns are aligned on what they did (agent, model "
            "calls, tool names and canonical arguments, tool outputs, handoff, guardrail "
            "results, answer), so inserted or missing turns line up. Then the two verdicts "
            "and the aligned turns. A run recorded with capture_content=False is compared "
            "on its structure only, and the output says so. TRACE_IDs may be unique "
            "prefixes. The viewer's Compare page shows the same: /compare?a=A&b=B."
        ),
        epilog=(
            "Exit status 2 when a trace id is unknown or the runs belong to different "
            "workflows (unless --force). Kinds and the JSON fields: docs/debug-loop.md. "
            "Example: turnscope diff trace_1a2b trace_9f8e --json"
        ),
    )
    p.add_argument("a", metavar="A", help="trace id of the run to compare from (the baseline)")
    p.add_argument("b", metavar="B", help="trace id of the run to compare with it")
    p.add_argument("--db", help=DB_HELP)
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: first_divergent_turn, kind, summary, a, b, aligned",
    )
    p.add_argument(
        "--force", action="store_true", help="compare runs of different workflows anyway"
    )
    p.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    """Compare two runs."""
    from turnscope.analysis.diff import check_workflows, diff_runs
    from turnscope.analysis.diff_words import render_text

    store = open_store(args.db)
    sides = []
    for given in (args.a, args.b):
        trace_id = store.resolve_trace_id(given)
        sides.append((store.get_run(trace_id), store.analysis(trace_id)))
    (run_a, analysis_a), (run_b, analysis_b) = sides
    if not args.force:
        check_workflows(run_a, run_b)
    diff = diff_runs(run_a, analysis_a, run_b, analysis_b)
    if args.json:
        print(json.dumps(diff.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        print(render_text(diff))
    return 0
