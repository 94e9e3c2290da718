"""Turn any value into JSON-safe data within a byte budget, never raising.

Span data is user data: 10 MB strings, bytes, NaN, lone surrogates, reference cycles, deep
nesting, objects whose ``__repr__`` raises. Everything comes out as JSON-compatible values;
whatever had to be cut or described carries a marker, and the caller learns the original size.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from turnscope import jsontext

MARKER = "_turnscope"  # key of the dict that describes a value we could not keep as is
TRUNCATION_SUFFIX = "…[turnscope: truncated, {size} bytes]"
DEFAULT_MAX_FIELD_BYTES = 64 * 1024
MAX_DEPTH = 24
MAX_ITEMS = 2000


class Budget:
    """Byte budget for one field: ``per_string`` caps each string, ``limit`` the whole value.
    Records whether anything was cut and the original size."""

    __slots__ = ("left", "limit", "original", "per_string", "truncated")

    def __init__(self, per_string: int, limit: int | None = None) -> None:
        self.per_string = per_string
        self.limit = limit if limit is not None else per_string * 8
        self.left = self.limit
        self.truncated = False
        self.original = 0  # bytes seen, including what was cut (an estimate for containers)


_dumps = jsontext.dumps
_scan = json.JSONDecoder().scan_once  # our own encoder's text: no whitespace to skip


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def clean_text(text: str) -> str:
    """Replace lone surrogates so the text encodes as UTF-8 (they cannot be stored)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def truncate_text(text: str, limit: int) -> tuple[str, int, bool]:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes plus a marker; returns (text, size, cut)."""
    text = clean_text(text)
    if text.isascii():
        size = len(text)
        if size <= limit:
            return text, size, False
        return text[:limit] + TRUNCATION_SUFFIX.format(size=size), size, True
    if len(text) * 4 <= limit:  # cannot exceed the limit even at 4 bytes per character
        return text, len(text.encode("utf-8")), False
    raw = text.encode("utf-8")
    size = len(raw)
    if size <= limit:
        return text, size, False
    head = raw[:limit].decode("utf-8", "ignore")
    return head + TRUNCATION_SUFFIX.format(size=size), size, True


def describe(value: Any, reason: str) -> dict[str, Any]:
    """A marker dict standing in for a value that cannot be stored as is."""
    out: dict[str, Any] = {MARKER: reason, "type": _type_name(value)}
    if reason == "repr":
        try:
            text = repr(value)
        except Exception:
            out[MARKER] = "unrepresentable"
            return out
        out["repr"], _, _ = truncate_text(text, 2048)
    return out


def _type_name(value: Any) -> str:
    try:
        cls = type(value)
        return f"{cls.__module__}.{cls.__qualname__}"
    except Exception:
        return "?"


def plain_json_text(value: Any, max_bytes: int) -> str | None:
    """Fast path in C for plain JSON data (dicts, lists, str, finite numbers, bools, None)
    whose text fits ``max_bytes``: its JSON text, else None."""
    try:
        text = _dumps(value)
    except (TypeError, ValueError, RuntimeError):
        # not plain JSON (objects, NaN, cycles, too deep to encode), or changed size while
        # encoded (another thread's RuntimeError): the caller converts it item by item
        return None
    if len(text) > max_bytes or not (text.isascii() or _encodes(text)):
        return None  # must be cut, or carries lone surrogates
    return text


def plain_json(value: Any, max_bytes: int) -> tuple[Any, str] | None:
    """``plain_json_text`` and a copy decoded from it. The copy matters: the SDK or the user
    may still mutate the live object after the span ended."""
    text = plain_json_text(value, max_bytes)
    return None if text is None else (_scan(text, 0)[0], text)


def jsonable(
    value: Any, max_bytes: int = DEFAULT_MAX_FIELD_BYTES, total: int | None = None
) -> tuple[Any, Budget]:
    """Convert ``value`` to JSON-safe data: strings cut at ``max_bytes``, the whole value at
    ``total`` (default 8 x ``max_bytes``); returns (data, budget)."""
    budget = Budget(max_bytes, total)
    if (
        value is None
        or type(value) in (bool, int)
        or (type(value) is str and len(value) <= max_bytes and value.isascii())
    ):  # fast path: most span fields are small plain values
        size = len(value) if type(value) is str else 8
        budget.original = size
        budget.left -= size
        return value if type(value) is not int or -(2**63) <= value < 2**63 else str(value), budget
    if type(value) in (dict, list):
        small = plain_json(value, max_bytes)
        if small is not None:
            budget.original = len(small[1])
            budget.left -= len(small[1])
            return small[0], budget
    try:
        return _convert(value, budget, 0, set()), budget
    except RecursionError:
        budget.truncated = True
        return describe(value, "too_deep"), budget
    except Exception:
        budget.truncated = True
        return describe(value, "unconvertible"), budget


def _text(value: str, budget: Budget) -> str:
    limit = max(min(budget.left, budget.per_string), 0)
    text, size, cut = truncate_text(value, limit)
    budget.original += size
    budget.left -= min(size, limit) + 2
    if cut:
        budget.truncated = True
    return text


def _convert(value: Any, budget: Budget, depth: int, seen: set[int]) -> Any:
    if value is None or value is True or value is False:
        return value
    cls = type(value)
    if cls is str:
        return _text(value, budget)
    if cls is int:
        budget.left -= 8
        budget.original += 8
        return value if -(2**63) <= value < 2**63 else str(value)
    if cls is float:
        budget.left -= 8
        budget.original += 8
        if math.isfinite(value):
            return value
        budget.truncated = True
        return {MARKER: "non_finite_float", "value": repr(value)}
    if budget.left <= 0:
        budget.truncated = True
        return {MARKER: "omitted", "type": _type_name(value)}
    if depth >= MAX_DEPTH:
        budget.truncated = True
        return {MARKER: "too_deep", "type": _type_name(value)}
    if isinstance(value, str):  # str subclasses
        return _text(str.__str__(value), budget)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _convert(int(value), budget, depth, seen)
    if isinstance(value, float):
        return _convert(float(value), budget, depth, seen)
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        budget.truncated = True
        budget.original += len(raw)
        budget.left -= 64
        return {MARKER: "bytes", "size": len(raw), "head_hex": raw[:32].hex()}
    oid = id(value)
    if oid in seen:
        budget.truncated = True
        return {MARKER: "cycle", "type": _type_name(value)}
    seen.add(oid)
    try:
        if isinstance(value, Mapping):
            return _mapping(value, budget, depth, seen)
        if isinstance(value, (list, tuple, set, frozenset)):
            return _sequence(value, budget, depth, seen)
        dump = _model_dump(value)
        if dump is not None:
            return _convert(dump, budget, depth + 1, seen)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return _mapping(fields, budget, depth, seen)
        budget.truncated = True
        return describe(value, "repr")
    finally:
        seen.discard(oid)


def _mapping(value: Mapping[Any, Any], budget: Budget, depth: int, seen: set[int]) -> Any:
    out: dict[str, Any] = {}
    for index, (key, item) in enumerate(list(value.items())):
        if index >= MAX_ITEMS or budget.left <= 0:
            budget.truncated = True
            out[MARKER] = {"omitted_items": len(value) - index}
            break
        skey = key if type(key) is str else _key(key)
        out[clean_text(skey)] = _convert(item, budget, depth + 1, seen)
    return out


def _key(key: Any) -> str:
    try:
        return str(key)
    except Exception:
        return f"<{_type_name(key)}>"


def _sequence(value: Any, budget: Budget, depth: int, seen: set[int]) -> list[Any]:
    items = list(value)
    out: list[Any] = []
    for index, item in enumerate(items):
        if index >= MAX_ITEMS or budget.left <= 0:
            budget.truncated = True
            out.append({MARKER: "omitted", "omitted_items": len(items) - index})
            break
        out.append(_convert(item, budget, depth + 1, seen))
    return out


def _model_dump(value: Any) -> Any:
    """Pydantic models (openai types) dump to plain data; anything else returns None."""
    dump = getattr(type(value), "model_dump", None)
    if dump is None or not callable(dump):
        return None
    try:
        return value.model_dump(mode="json", exclude_none=True, warnings=False)
    except Exception:
        try:
            return value.model_dump()
        except Exception:
            return None
