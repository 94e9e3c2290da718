"""The hot path's JSON encoders say exactly what ``json`` says, failures included."""

from __future__ import annotations

import enum
import json
import math
import threading
from typing import Any

import pytest

from turnscope import jsontext


class Level(enum.IntEnum):
    HIGH = 3


class Colour(str, enum.Enum):
    RED = "red"


def _cycle() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


def _deep(levels: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(levels):
        node.append([])
        node = node[0]
    return root


VALUES = [
    {"a": 1, "b": [1, 2.5, None, True, "é\u2028"], "c": {"z": 0, "y": -1}},
    "plain",
    1e300,
    Level.HIGH,
    {"colour": Colour.RED},
    {1: "int key", None: "none key", 2.5: "float key"},
    {"nan": math.nan},
    {"inf": [math.inf]},
    _cycle(),
    _deep(5000),
    {"object": object()},
    {(1, 2): "tuple key"},
    "\ud800 lone surrogate",
]

PAIRS = [
    (jsontext.dumps, json.JSONEncoder(ensure_ascii=False, allow_nan=False)),
    (jsontext.dumps_sorted, json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True)),
    (
        jsontext.dumps_compact,
        json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")),
    ),
]


def _outcome(encode: Any, value: Any) -> tuple[str, str]:
    try:
        return "text", encode(value)
    except Exception as exc:
        return "error", type(exc).__name__


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
@pytest.mark.parametrize("pair", PAIRS, ids=["dumps", "sorted", "compact"])
def test_same_text_and_same_errors_as_json(pair: Any, value: Any) -> None:
    ours, reference = pair
    assert _outcome(ours, value) == _outcome(reference.encode, value)


def test_a_failed_encoding_leaves_nothing_behind() -> None:
    """An object that held a cycle encodes once the cycle is gone: a cycle-marker dict shared
    between calls would keep its id after the failure and call it circular forever."""
    holder: dict[str, Any] = {"x": 1}
    holder["self"] = holder
    assert _outcome(jsontext.dumps, holder) == ("error", "ValueError")
    del holder["self"]
    assert _outcome(jsontext.dumps, holder) == ("text", '{"x": 1}')


def test_cycles_and_plain_data_on_many_threads_at_once() -> None:
    results: list[tuple[str, str]] = []
    shared = {"a": [1, 2, 3]}

    def work() -> None:
        for _ in range(200):
            results.append(_outcome(jsontext.dumps, _cycle()))
            results.append(_outcome(jsontext.dumps, shared))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {("error", "ValueError"), ("text", '{"a": [1, 2, 3]}')}
