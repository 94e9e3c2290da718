"""Which conversation a run belongs to: the key shared by the exchanges of one chat.

A chat app calls the runner once per user message; each call is an *exchange* (one run, one
trace), the group of them a *conversation*. The key, first found wins:

1. the Responses API ``conversation_id`` the runner was given (a server-side conversation);
2. the id of the runner's ``session`` (``SQLiteSession("user-42")`` and the like);
3. the trace's ``group_id`` (``RunConfig(group_id=...)`` or ``trace(..., group_id=...)``);
4. a ``previous_response_id`` chain: the run continuing a recorded response takes the
   conversation of the run that produced it (resolved by the store writer, which can see
   the other runs);
5. a run that could start such a chain (it has a Responses API response id) keys itself by
   its own trace id, so that the runs continuing it find a conversation to join.

1-3 are the SDK's own order (``agents.run_internal.run_grouping``: server conversation, SDK
session, trace group), the one it groups prompt caches and sandbox memory by; the chain
comes after them because it is inferred and they are stated.
"""

from __future__ import annotations

from collections.abc import Iterable

from turnscope.records import (
    FAILED,
    INCOMPLETE,
    RUNNING,
    SUCCEEDED,
    SUCCEEDED_WITH_ERRORS,
    SpanRecord,
    TraceInfo,
)

# the statuses from worst to best: a conversation shows its worst exchange's
WORST_FIRST = (FAILED, INCOMPLETE, SUCCEEDED_WITH_ERRORS, RUNNING, SUCCEEDED)


def stated_key(info: TraceInfo) -> str | None:
    """The key the run was given (keys 1-3 of the module docstring), or None."""
    for value in (info.conversation_id, info.session_id, info.group_id):
        if value and value.strip():
            return value.strip()
    return None


def conversation_key(info: TraceInfo, last_response_id: str | None) -> str | None:
    """The run's conversation key before the writer resolves a ``previous_response_id``
    chain: the stated key, else the run's own trace id when it takes part in a chain."""
    key = stated_key(info)
    if key is None and (info.previous_response_id or last_response_id):
        return info.trace_id
    return key


def last_response_id(models: Iterable[SpanRecord]) -> str | None:
    """The id of the last Responses API response of a run (what a caller passes as the next
    exchange's ``previous_response_id``); None for Chat Completions models."""
    found = None
    for span in models:
        if span.kind != "response" or span.error_message is not None:
            continue
        value = span.data.get("response_id")
        if isinstance(value, str) and value:
            found = value
    return found


def worst_status(statuses: Iterable[str]) -> str | None:
    """The worst of some exchanges' statuses (None for none)."""
    seen = set(statuses)
    for status in WORST_FIRST:
        if status in seen:
            return status
    return next(iter(seen), None)
