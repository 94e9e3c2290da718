"""Settings: keyword arguments first, then environment variables, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from turnscope.store.engine import StoreError, parse_url, redact, resolve_url

ENV_CAPTURE = "TURNSCOPE_CAPTURE_CONTENT"
ENV_MAX_FIELD = "TURNSCOPE_MAX_FIELD_BYTES"
ENV_QUEUE = "TURNSCOPE_MAX_QUEUE_SIZE"
ENV_FLUSH = "TURNSCOPE_FLUSH_INTERVAL"
ENV_REDACT = "TURNSCOPE_REDACT_SECRETS"
OFF_VALUES = ("", "0", "false", "no", "off", "none")


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
class Settings:
    """Resolved configuration of a TurnscopeProcessor."""

    db_url: str | None
    capture_content: bool = True
    max_field_bytes: int = 64 * 1024
    max_queue_size: int = 65536
    flush_interval: float = 0.5
    redact_secrets: bool = False
    redactor: Any = None  # a custom Callable[[str], str], applied after the built-in patterns
    otlp: dict[str, Any] = field(default_factory=dict)

    @property
    def db_label(self) -> str | None:
        """The database URL with any password hidden."""
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
        **otlp: Any,
    ) -> Settings:
        """Merge arguments, ``TURNSCOPE_*`` variables and defaults; validate the DB URL."""
        env_off = os.environ.get("TURNSCOPE_DB", "x").strip().lower() in OFF_VALUES
        arg_off = isinstance(db, str) and db.strip().lower() in OFF_VALUES[1:]
        if db is False or arg_off or (db is None and env_off):
            db_url = None
        else:
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
            otlp={k: v for k, v in otlp.items() if v is not None},
        )
        if redactor is not None and not callable(redactor):
            raise ConfigError("redactor must be a function taking and returning a string")
        if settings.max_field_bytes < 256:
            raise ConfigError("max_field_bytes must be at least 256")
        if settings.max_queue_size < 1:
            raise ConfigError("max_queue_size must be at least 1")
        if settings.otlp:
            raise ConfigError(f"unknown settings: {', '.join(sorted(settings.otlp))}")
        return settings

    def build_sinks(self, identity: dict[str, Any]) -> list[Any]:
        """The sinks these settings ask for (database and/or OTLP)."""
        from turnscope import __version__

        sinks: list[Any] = []
        if self.db_url:
            from turnscope.store.writer import DbSink, ProcessInfo

            sinks.append(
                DbSink(
                    self.db_url,
                    ProcessInfo(
                        id=identity["process_id"],
                        pid=identity["pid"],
                        host=identity["host"],
                        sdk_version=identity.get("sdk_version"),
                        turnscope_version=__version__,
                    ),
                )
            )
        return sinks
