"""The conversation page's exchanges as one HTML block (no Streamlit: the CLI-side tests and
the benchmark build it too). Every user string is escaped."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import quote

from turnscope.records import FAILED, INCOMPLETE, is_captured
from turnscope.viewer.format import (
    STATUS_HEX,
    badge,
    category_text,
    clip,
    cost_cell,
    duration,
    local_time,
    tokens,
)

MESSAGE_CHARS = 400  # what a row shows of a message (the run page has all of it)
NOT_CAPTURED_TEXT = "not captured"
BAD = (FAILED, INCOMPLETE)


_STYLE = """<style>
.ts-conv{display:flex;flex-direction:column;gap:.6rem;font-size:.92rem}
.ts-ex{border:1px solid rgba(128,128,128,.35);border-left:4px solid var(--c);border-radius:.4rem;
padding:.5rem .8rem;content-visibility:auto;contain-intrinsic-size:auto 6rem}
.ts-ex.ts-bad{background:rgba(214,39,40,.08);border-color:#D62728;border-left-width:6px}
.ts-head{opacity:.9}
.ts-head b{font-size:1rem}.ts-status{color:var(--c);font-weight:600}
.ts-msg{margin:.3rem 0 0 0;white-space:pre-wrap;word-break:break-word}
.ts-who{font-weight:600;margin-right:.4rem}.ts-none{opacity:.6;font-style:italic}
</style>"""


def _text(value: Any) -> str:
    """A message for the page, escaped; "not captured" where the run kept no content."""
    if not is_captured(value):
        return f'<span class="ts-none">{NOT_CAPTURED_TEXT}</span>'
    return html.escape(clip(value, MESSAGE_CHARS))


def exchange_html(index: int, run: dict[str, Any], offset: int | None) -> str:
    """One exchange: header (number, verdict, turns, tokens, duration, cost, link), the
    user's message and the answer or the failure."""
    status = run["status"]
    bad = status in BAD
    color = STATUS_HEX.get(status, "#888")
    verdict = html.escape(badge(status))
    if run.get("category"):
        verdict += " · " + html.escape(category_text(run["category"], run.get("reason")))
    link = f"run?trace_id={quote(run['trace_id'])}"
    facts = " · ".join(
        [
            f"{run['turns']} turn{'s' if run['turns'] != 1 else ''}",
            f"{tokens((run['input_tokens'] or 0) + (run['output_tokens'] or 0))} tokens",
            duration(run["duration_ms"]),
            f"cost {html.escape(cost_cell(run))}",
            html.escape(local_time(run["started_at"], offset)),
        ]
    )
    # few elements per exchange, and those off screen not laid out (content-visibility):
    # the browser's share of a long chat's page is its DOM
    head = (
        f'<b>Exchange {index}</b> <span class="ts-status">{verdict}</span> · {facts} · '
        f'<a href="{html.escape(link)}" target="_self">open run ↗</a>'
    )
    if bad:
        answer_who, answer = "Failure", _text(run.get("explanation") or run.get("first_error"))
    elif status == "running":
        answer_who, answer = "Answer", '<span class="ts-none">still running</span>'
    else:
        answer_who, answer = "Answer", _text(run.get("final_output"))
    return (
        f'<div class="ts-ex{" ts-bad" if bad else ""}" style="--c:{color}" '
        f'data-exchange="{index}" data-status="{html.escape(status)}" '
        f'data-trace-id="{html.escape(run["trace_id"])}">'
        f'<div class="ts-head">{head}</div>'
        f'<p class="ts-msg"><span class="ts-who">User</span>{_text(run.get("first_input"))}</p>'
        f'<p class="ts-msg"><span class="ts-who">{answer_who}</span>{answer}</p></div>'
    )


def exchanges_html(rows: list[dict[str, Any]], offset: int | None = None) -> str:
    """All exchanges, in order, as one HTML block (one element: fast for long chats)."""
    parts = [exchange_html(i, run, offset) for i, run in enumerate(rows, 1)]
    return _STYLE + '<div class="ts-conv">' + "".join(parts) + "</div>"


def position_html(where: Any) -> str:
    """A run page's place in its conversation (a ``store.conversations.Position``): "Exchange
    k of n in conversation X" and links to the previous and next exchange. Plain links: a
    Streamlit page link to the page it is on would show the other run under this URL."""
    key = where.conversation_id
    links = [
        f'<a href="conversation?id={quote(key)}" target="_self">Exchange {where.index} of '
        f"{where.count} in conversation {html.escape(clip(key, 60))}</a>"
    ]
    for label, trace_id in (
        ("↑ previous exchange", where.previous),
        ("↓ next exchange", where.next),
    ):
        if trace_id:
            href = html.escape(f"run?trace_id={quote(trace_id)}")
            links.append(f'<a href="{href}" target="_self">{label}</a>')
    return '<div class="ts-position">💬 ' + " · ".join(links) + "</div>"
