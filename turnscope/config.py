"""Settings: keyword arguments first, then environment variables, then defaults."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

ENV_CAPTURE = "TURNSCOPE_CAPTURE_CONTENT"
ENV_MAX_FIELD = "TURNSCOPE_MAX_FIELD_BYTES"
ENV_QUEUE = "TURNSCOPE_MAX_QUEUE_SIZE"
ENV_FLUSH = "TURNSCOPE_FLUSH_INTERVAL"
ENV_REDACT = "TURNSCOPE_REDACT_SECRETS"
OFF_VALUES = ("", "0", "false", "no", "off", "none")

# OTLP: the standard OpenTelemetry variables, read the way the OTel SDKs read them
ENV_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_OTLP_TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
ENV_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
ENV_OTLP_TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
ENV_OTLP_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
ENV_OTLP_TRACES_HEADERS = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
ENV_TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
ENV_SDK_DISABLED = "OTEL_SDK_DISABLED"
ENV_GENAI_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_OTLP_MAX_SPAN = "TURNSCOPE_OTLP_MAX_SPAN_BYTES"
PROTOCOLS = ("grpc", "http/protobuf")
HTTP_TRACES_PATH = "/v1/traces"
DEFAULT_MAX_SPAN_BYTES = 32 * 1024
# OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: boolean (older GenAI instrumentations)
# or a mode (opentelemetry-util-genai); turnscope puts content on spans, never in events
_CONTENT_ON = ("true", "1", "yes", "on", "span_only", "span_and_event")
_CONTENT_OFF = ("false", "0", "no", "off", "no_content", "event_only", "")

log = logging.getLogger("turnscope")


class ConfigError(ValueError):
    """A setting that cannot work, explained in one line."""


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable (1/true/yes/on and 0/false/no/off)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected true or false")


def _env_number(name: str, kind: type, default: Any, minimum: float) -> Any:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be at least {minimum}")
    return value


@dataclass(slots=True)
class OtlpSettings:
    """Where and how the OTLP sink exports (resolved; see ``resolve_otlp``)."""

    endpoint: str  # full URL; for http/protobuf it includes the /v1/traces path
    protocol: str = "grpc"  # "grpc" or "http/protobuf"
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # may hold API keys
    service_name: str | None = None  # None: OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    capture_content: bool = False
    timeout: float | None = None  # None: OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT, else 10 s
    max_span_bytes: int = DEFAULT_MAX_SPAN_BYTES

    @property
    def label(self) -> str:
        """The endpoint without credentials or query, for messages."""
        parts = urlsplit(self.endpoint)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", "")) or self.endpoint


def parse_headers(value: Any, source: str = "otlp_headers") -> dict[str, str]:
    """``{"k": "v"}`` or ``"k=v,k2=v2"`` (values URL-decoded, as in OTEL_EXPORTER_OTLP_HEADERS)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k).strip().lower(): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        raise ConfigError(f"{source}: expected a dict or a 'key=value,...' string")
    headers: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{source}: {item.strip()!r} is not key=value")
        headers[unquote(key.strip()).lower()] = unquote(val.strip())
    return headers


def _content_env() -> bool | None:
    raw = os.environ.get(ENV_GENAI_CONTENT)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _CONTENT_ON:
        return True
    if value not in _CONTENT_OFF:
        log.warning(
            "turnscope: %s=%r is not understood; not exporting content", ENV_GENAI_CONTENT, raw
        )
    return False


def _with_scheme(endpoint: str) -> str:
    # "localhost:4317" would otherwise parse as scheme "localhost" (and gRPC would use TLS)
    return endpoint if "://" in endpoint else f"http://{endpoint}"


def _guess_protocol(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port == 4318 or parts.path.rstrip("/").endswith(HTTP_TRACES_PATH):
        return "http/protobuf"
    return "grpc"


def resolve_otlp(
    endpoint: str | bool | None = None,
    protocol: str | None = None,
    headers: Any = None,
    service_name: str | None = None,
    capture_content: bool | None = None,
    timeout: float | None = None,
    max_span_bytes: int | None = None,
    *,
    default_endpoint: str | None = None,
) -> OtlpSettings | None:
    """OTLP settings from arguments, then ``OTEL_*`` variables; None when export is off.

    Export is on when ``endpoint`` is given, or when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
    / ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (unless ``OTEL_TRACES_EXPORTER=none`` or
    ``OTEL_SDK_DISABLED=true``); ``endpoint=False`` turns it off whatever the environment.
    For http/protobuf an endpoint without a path gets ``/v1/traces``, as the base
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` does; ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is used as is.
    Without a protocol, port 4318 or a ``/v1/traces`` path means http/protobuf, else grpc.
    """
    if endpoint is False:
        return None
    if endpoint is True:
        endpoint = None
    if endpoint is not None and not isinstance(endpoint, str):
        raise ConfigError("otlp_endpoint must be a URL such as http://localhost:4317")
    env_off = os.environ.get(ENV_TRACES_EXPORTER, "").strip().lower() == "none" or (
        os.environ.get(ENV_SDK_DISABLED, "").strip().lower() == "true"
    )
    traces_env = os.environ.get(ENV_OTLP_TRACES_ENDPOINT, "").strip()
    base_env = os.environ.get(ENV_OTLP_ENDPOINT, "").strip()
    verbatim = False  # the signal-specific variable is a full URL: no path added
    if endpoint is not None and endpoint.strip():
        url = endpoint.strip()
    elif not env_off and traces_env:
        url, verbatim = traces_env, True
    elif not env_off and base_env:
        url = base_env
    elif default_endpoint:
        url = default_endpoint
    else:
        return None
    url = _with_scheme(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"OTLP endpoint {url!r}: expected http(s)://host:port")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ConfigError(f"OTLP endpoint {url!r}: invalid port") from None

    chosen = (
        protocol
        or os.environ.get(ENV_OTLP_TRACES_PROTOCOL, "").strip()
        or os.environ.get(ENV_OTLP_PROTOCOL, "").strip()
        or _guess_protocol(url)
    ).lower()
    if chosen == "http":
        chosen = "http/protobuf"
    if chosen not in PROTOCOLS:
        raise ConfigError(f"OTLP protocol {chosen!r} is not supported: use grpc or http/protobuf")
    if chosen == "http/protobuf" and not verbatim and parts.path in ("", "/"):
        url = url.rstrip("/") + HTTP_TRACES_PATH

    if headers is not None:
        resolved_headers = parse_headers(headers)
    elif os.environ.get(ENV_OTLP_TRACES_HEADERS):
        resolved_headers = parse_headers(
            os.environ[ENV_OTLP_TRACES_HEADERS], ENV_OTLP_TRACES_HEADERS
        )
    else:
        resolved_headers = parse_headers(os.environ.get(ENV_OTLP_HEADERS), ENV_OTLP_HEADERS)

    content = capture_content if capture_content is not None else _content_env()
    span_bytes = (
        max_span_bytes
        if max_span_bytes is not None
        else _env_number(ENV_OTLP_MAX_SPAN, int, DEFAULT_MAX_SPAN_BYTES, 4096)
    )
    if span_bytes < 4096:
        raise ConfigError("otlp_max_span_bytes must be at least 4096")
    if timeout is not None and timeout <= 0:
        raise ConfigError("otlp_timeout must be positive")
    if service_name is not None and not str(service_name).strip():
        raise ConfigError("service_name must not be empty")
    return OtlpSettings(
        endpoint=url,
        protocol=chosen,
        headers=resolved_headers,
        service_name=service_name.strip() if service_name else None,
        capture_content=bool(content),
        timeout=timeout,
        max_span_bytes=span_bytes,
    )


@dataclass(slots=True)
class Settings:
    """Resolved configuration of a TurnscopeProcessor."""

    db_url: str | None
    capture_content: bool = True
    max_field_bytes: int = 64 * 1024
    max_queue_size: int = 65536
    flush_interval: float = 0.5
    redact_secrets: bool = False
    redactor: Any = None  # a custom Callable[[str], str], applied after the built-in patterns
    otlp: OtlpSettings | None = None  # None: no OTLP export

    @property
    def db_label(self) -> str | None:
        """The database URL with any password hidden."""
        from turnscope.store.engine import redact

        return redact(self.db_url) if self.db_url else None

    @classmethod
    def resolve(
        cls,
        db: Any = None,
        *,
        capture_content: bool | None = None,
        max_field_bytes: int | None = None,
        max_queue_size: int | None = None,
        flush_interval: float | None = None,
        redact_secrets: bool | None = None,
        redactor: Any = None,
        otlp_endpoint: str | bool | None = None,
        otlp_protocol: str | None = None,
        otlp_headers: Any = None,
        service_name: str | None = None,
        otlp_capture_content: bool | None = None,
        otlp_timeout: float | None = None,
        otlp_max_span_bytes: int | None = None,
        **unknown: Any,
    ) -> Settings:
        """Merge arguments, ``TURNSCOPE_*``/``OTEL_*`` variables and defaults; validate."""
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        env_off = os.environ.get("TURNSCOPE_DB", "x").strip().lower() in OFF_VALUES
        arg_off = isinstance(db, str) and db.strip().lower() in OFF_VALUES[1:]
        if db is False or arg_off or (db is None and env_off):
            db_url = None
        else:
            # here, not at the top: a processor without a database never loads SQLAlchemy
            from turnscope.store.engine import StoreError, parse_url, resolve_url

            db_url = resolve_url(None if db is True else db)
            try:
                parse_url(db_url)
            except StoreError as exc:
                raise ConfigError(str(exc)) from None
        settings = cls(
            db_url=db_url,
            capture_content=(
                capture_content if capture_content is not None else env_bool(ENV_CAPTURE, True)
            ),
            max_field_bytes=(
                max_field_bytes
                if max_field_bytes is not None
                else _env_number(ENV_MAX_FIELD, int, 64 * 1024, 256)
            ),
            max_queue_size=(
                max_queue_size
                if max_queue_size is not None
                else _env_number(ENV_QUEUE, int, 65536, 1)
            ),
            flush_interval=(
                flush_interval
                if flush_interval is not None
                else _env_number(ENV_FLUSH, float, 0.5, 0.01)
            ),
            redact_secrets=(
                redact_secrets if redact_secrets is not None else env_bool(ENV_REDACT, False)
            ),
            redactor=redactor,
            otlp=resolve_otlp(
                otlp_endpoint,
                otlp_protocol,
                otlp_headers,
                service_name,
                otlp_capture_content,
                otlp_timeout,
                otlp_max_span_bytes,
            ),
        )
        if redactor is not None and not callable(redactor):
            raise ConfigError("redactor must be a function taking and returning a string")
        if settings.max_field_bytes < 256:
            raise ConfigError("max_field_bytes must be at least 256")
        if settings.max_queue_size < 1:
            raise ConfigError("max_queue_size must be at least 1")
        return settings
