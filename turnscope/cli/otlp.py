"""OTLP from the command line: ``turnscope export-otlp`` (backfill, turnscope/otlp/backfill.py)
and ``turnscope demo``'s --otlp-* options.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from turnscope.cli.options import DB_HELP, ENV_JAEGER, CliError, open_store

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
