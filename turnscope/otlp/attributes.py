"""Span attributes within a byte budget (``OtlpSettings.max_span_bytes``).

Identity and structure go in first, content last, each content attribute with a fair share
of what is left; JSON values are cut per string so that they stay valid JSON. Bounded spans
are what lets the sink size export requests under the 4 MiB a gRPC receiver accepts.
"""

from __future__ import annotations

import json
from typing import Any

from turnscope import jsontext
from turnscope.exporter.safe import MARKER, jsonable, truncate_text
from turnscope.records import is_captured

SMALL_TEXT = 1024  # longest non-content string attribute (names, messages, ids)

_dumps = jsontext.dumps_compact


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes (cheap for ASCII)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def bounded_json(value: Any, limit: int) -> tuple[str, bool]:
    """``value`` as JSON text of at most ``limit`` bytes that still parses: long strings are
    cut (with a marker) before anything else; returns (text, truncated)."""
    try:
        text = _dumps(value)
    except (TypeError, ValueError, RecursionError):
        converted, _ = jsonable(value, limit, limit)
        value, text = converted, _dumps(converted)
    if utf8_len(text) <= limit:
        return text, False
    # shorter strings first (the shape survives), then fewer items (marked as omitted)
    per_string, total = max(limit // 2, 16), limit
    for _ in range(40):
        cut, _budget = jsonable(value, per_string, total)
        text = _dumps(cut)
        if utf8_len(text) <= limit:
            return text, True
        if per_string > 256:
            per_string //= 2
        elif total > 64:
            total = int(total * 0.6)
            per_string = max(min(per_string, total // 2), 16)
        else:
            break
    return _dumps({MARKER: "omitted", "bytes": utf8_len(_dumps(value))}), True


def json_value(text: str) -> Any:
    """A tool's arguments or result as data: parsed when it is a JSON document, else the text
    itself (exported as a JSON string, so every content attribute is valid JSON, even when
    the text was cut before it got here)."""
    stripped = text.strip()
    if stripped[:1] in ("{", "[", '"') or stripped in ("true", "false", "null"):
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):
            return text
    return text


def small_text(value: str, limit: int = SMALL_TEXT) -> str:
    """``value`` cut to at most ``limit`` UTF-8 bytes (with a marker when cut)."""
    text, _size, _cut = truncate_text(value, limit)
    return text


class Attributes:
    """Span attributes within a byte budget: identity and structure first, content last."""

    def __init__(self) -> None:
        self.items: dict[str, Any] = {}
        self.size = 0
        self.truncated = False
        self._content: list[tuple[str, Any]] = []

    def put(self, key: str, value: Any, limit: int = SMALL_TEXT) -> None:
        """A small attribute: strings cut at ``limit`` bytes, lists of strings kept short."""
        if value is None:
            return
        if isinstance(value, bool):
            self.items[key] = value
            self.size += len(key) + 4
        elif isinstance(value, int):
            if -(2**63) <= value < 2**63:
                self.items[key] = value
                self.size += len(key) + 10
        elif isinstance(value, float):
            if value == value and value not in (float("inf"), float("-inf")):
                self.items[key] = value
                self.size += len(key) + 10
        elif isinstance(value, str):
            text = small_text(value, limit)
            self.items[key] = text
            self.size += len(key) + utf8_len(text) + 4
        elif isinstance(value, (list, tuple)):
            texts = [small_text(str(v), 256) for v in value if v is not None][:64]
            self.items[key] = texts
            self.size += len(key) + sum(utf8_len(t) + 4 for t in texts)
        else:
            text, cut = bounded_json(value, limit)
            self.truncated |= cut
            self.items[key] = text
            self.size += len(key) + utf8_len(text) + 4

    def content(self, key: str, value: Any) -> None:
        """A large attribute (messages, tool arguments): JSON, with a share of what is left."""
        if is_captured(value):
            self._content.append((key, value))

    def finish(self, budget: int) -> dict[str, Any]:
        """Fit the content attributes into ``budget`` bytes (fair shares, smallest first)."""
        if not self._content:
            return self.items
        left = budget - self.size
        pending = []
        for key, value in self._content:
            try:
                natural = utf8_len(_dumps(value))
            except (TypeError, ValueError, RecursionError):
                natural = budget
            pending.append((natural + len(key) + 4, key, value))
        pending.sort(key=lambda item: item[0])
        for index, (natural, key, value) in enumerate(pending):
            share = left // (len(pending) - index)
            if share < 64:
                self.truncated = True
                self.items["turnscope.content.omitted"] = True
                break
            text, cut = bounded_json(value, min(natural, share) - len(key) - 4)
            self.truncated |= cut
            self.items[key] = text
            used = len(key) + utf8_len(text) + 4
            left -= used
            self.size += used
        if self.truncated:
            self.items["turnscope.truncated"] = True
        return self.items
