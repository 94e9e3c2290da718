"""JSON text for the worker's hot path: strict (no NaN), non-ASCII kept, cycles detected.

``json.JSONEncoder.encode`` builds a new C encoder (and two Python frames) on every call: for
a small span's data that set-up was a third of the encoding time. These call the C encoder
directly, with a fresh cycle-marker dict per call, so they stay safe across threads and after
a failed encoding; same text, same exceptions as ``JSONEncoder(ensure_ascii=False,
allow_nan=False, ...).encode``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

try:
    from _json import make_encoder as _make_encoder
except ImportError:  # a Python built without the C accelerator
    _make_encoder = None

_decode = json.JSONDecoder().decode


def _encoder(sort_keys: bool, separators: tuple[str, str]) -> Callable[[Any], str]:
    python = json.JSONEncoder(
        ensure_ascii=False, allow_nan=False, sort_keys=sort_keys, separators=separators
    )
    if _make_encoder is None:
        return python.encode
    default, make = python.default, _make_encoder
    item, key = separators

    def encode(value: Any) -> str:
        return "".join(
            make({}, default, encode_basestring, None, key, item, sort_keys, False, False)(value, 0)
        )

    return encode


dumps: Callable[[Any], str] = _encoder(False, (", ", ": "))
"""``value`` as JSON text (what ``json.dumps(value, ensure_ascii=False, allow_nan=False)``
returns); raises TypeError, ValueError or RecursionError for what JSON cannot say."""

dumps_sorted: Callable[[Any], str] = _encoder(True, (", ", ": "))
"""``dumps`` with keys sorted (a canonical form for comparing documents)."""

dumps_compact: Callable[[Any], str] = _encoder(False, (",", ":"))
"""``dumps`` without spaces after separators (OTLP attributes)."""


def loads(text: str) -> Any:
    """JSON text -> value (``json.loads`` without its per-call argument checks)."""
    return _decode(text)
