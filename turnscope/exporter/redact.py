"""Mask secrets (API keys, bearer tokens, passwords in URLs, ...) before anything is stored
or exported. Off by default (``redact_secrets=True`` or ``TURNSCOPE_REDACT_SECRETS=1``);
a custom ``redactor(text) -> text`` can be given too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Redactor = Callable[[str], str]

# (name, pattern, replacement): ordered so that specific token formats win over key=value
PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
        "[redacted:private_key]",
    ),
    (
        "url_password",
        re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]+):[^\s@/]+@"),
        r"\1:[redacted]@",
    ),
    (
        "bearer",
        re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]{8,}=*"),
        r"\1 [redacted]",
    ),
    (
        "openai_key",
        re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_\-]{16,}"),
        "[redacted:api_key]",
    ),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "[redacted:aws_key]"),
    ("github_token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "[redacted:github_token]"),
    ("slack_token", re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), "[redacted:slack_token]"),
    (
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
        "[redacted:jwt]",
    ),
    (
        "assignment",
        re.compile(
            r"(?i)\b((?:api[_-]?key|secret|client[_-]?secret|password|passwd|pwd|"
            r"access[_-]?token|auth[_-]?token|token)[\"']?\s*[:=]\s*[\"']?)"
            r"([^\s\"',;&}]{4,})"
        ),
        r"\1[redacted]",
    ),
]
# a cheap pre-check: most strings contain none of these and skip the patterns entirely
_HINT = re.compile(
    r"(?i)PRIVATE KEY|://[^\s/]*:[^\s]*@|bearer|basic |sk-|AKIA|ASIA|gh[pousr]_|xox|eyJ|"
    r"key|secret|passw|pwd|token"
)


def redact_secrets(text: str) -> str:
    """``text`` with every secret-looking substring replaced by a ``[redacted...]`` marker."""
    if not _HINT.search(text):
        return text
    for _name, pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_data(value: Any, redactor: Redactor) -> Any:
    """Apply ``redactor`` to every string (and dict key) of JSON-safe data."""
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, list):
        return [redact_data(item, redactor) for item in value]
    if isinstance(value, dict):
        return {redactor(k): redact_data(v, redactor) for k, v in value.items()}
    return value


def combine(builtin: bool, custom: Redactor | None) -> Redactor | None:
    """The redactor a processor uses: the built-in patterns, a custom one, both, or none."""
    if builtin and custom is not None:
        return lambda text: custom(redact_secrets(text))
    if builtin:
        return redact_secrets
    return custom
