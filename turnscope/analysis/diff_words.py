"""The words of a run diff: the first divergence in one sentence, and the diff as text.

Pure functions over ``analysis.diff``'s rows (which import them); no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from turnscope.content import clip

if TYPE_CHECKING:
    from turnscope.analysis.diff import Guardrail, Row, RunDiff, TurnFacts

CLIP = 80  # characters of an argument, output or answer quoted in the sentence


def quote(value: Any, limit: int = CLIP) -> str:
    """A value in backticks, clipped to one line ("(none)" for None)."""
    if value is None:
        return "(none)"
    return f"`{clip(value, limit)}`"


def _prefix(rows: list[Row], first: int) -> str:
    n = rows[first].index - 1
    if n <= 0:
        return ""
    return "Identical for turn 1. " if n == 1 else f"Identical for turns 1–{n}. "


def same_sentence(count: int, verdicts_differ: bool, a: dict[str, Any], b: dict[str, Any]) -> str:
    """The sentence for runs whose turns are all alike (their verdicts may still differ)."""
    if not verdicts_differ:
        return (
            f"No divergence: both runs made the same {count} turn(s)."
            if count
            else ("No divergence: neither run made a turn.")
        )
    return (
        f"Every turn alike ({count}), but the verdicts differ: A {_verdict_words(a)}, "
        f"B {_verdict_words(b)}."
    )


def _verdict_words(facts: dict[str, Any]) -> str:
    words = str(facts["status"]).replace("_", " ")
    if facts.get("category"):
        words += f" ({facts['category']}" + (
            f", {facts['reason']})" if facts.get("reason") else ")"
        )
    return words


def divergence_sentence(rows: list[Row], first: int) -> str:
    """The first divergence in one sentence."""
    row = rows[first]
    prefix = _prefix(rows, first)
    if row.a is None or row.b is None:
        return prefix + _extra_sentence(rows, first)
    a, b, change = row.a, row.b, row.changes[0]
    head = f"Turn {row.index}: "
    kind = change.kind
    if kind == "agent":
        text = f"A's turn was taken by {a.agent}, B's by {b.agent}"
    elif kind == "guardrail":
        text = _guardrail_sentence(a, b)
    elif kind == "error":
        text = _error_sentence(a, b)
    elif kind == "model":
        text = _model_sentence(a, b)
    elif kind == "tool" and a.action() == b.action():  # the same tools, not as many calls
        text = f"A made {len(a.tools)} tool call(s), B {len(b.tools)} ({a.action()})"
    elif kind in ("handoff", "tool"):
        text = f"A {a.action()}, B {b.action()}"
    elif kind == "arguments":
        text = (
            f"both called `{change.a['name']}`; arguments differ: "
            f"{quote(change.a['arguments'])} vs {quote(change.b['arguments'])}"
        )
    elif kind == "tool_error":
        name = change.a["name"]
        if change.a["error"] and change.b["error"]:
            text = (
                f"both called `{name}` alike; it raised {quote(change.a['error'])} in A, "
                f"{quote(change.b['error'])} in B"
            )
        else:
            side, error = (
                ("A", change.a["error"]) if change.a["error"] else ("B", change.b["error"])
            )
            text = f"both called `{name}` alike; in {side} it raised: {clip(error, CLIP)}"
    elif kind == "tool_output":
        text = (
            f"same call `{change.a['name']}` with the same arguments, different tool output: "
            f"{quote(change.a['output'])} vs {quote(change.b['output'])}"
        )
    else:  # output
        text = f"both answered; the answers differ: {quote(a.output)} vs {quote(b.output)}"
    return f"{prefix}{head}{text}."


def _guardrail_sentence(a: TurnFacts, b: TurnFacts) -> str:
    def fired(turn: TurnFacts) -> list[Guardrail]:
        return [g for g in turn.guardrails if g.triggered or g.error]

    fa, fb = fired(a), fired(b)
    if fb and not fa:
        return _guard_words("B", fb[0])
    if fa and not fb:
        return _guard_words("A", fa[0])
    if fa and fb:
        return f"{_guard_words('A', fa[0])}; {_guard_words('B', fb[0])}"
    names_a = sorted(g.name for g in a.guardrails)
    names_b = sorted(g.name for g in b.guardrails)
    return f"the guardrails that ran differ: {names_a or 'none'} vs {names_b or 'none'}"


def _guard_words(side: str, guard: Guardrail) -> str:
    if guard.error and not guard.triggered:
        return f"{side}'s {guard.side} guardrail `{guard.name}` raised: {clip(guard.error, CLIP)}"
    return f"{side}'s {guard.side} guardrail `{guard.name}` tripped"


def _error_sentence(a: TurnFacts, b: TurnFacts) -> str:
    if b.errors and not a.errors:
        return f"B failed: {clip(b.errors[0], CLIP)} (A {a.action()})"
    if a.errors and not b.errors:
        return f"A failed: {clip(a.errors[0], CLIP)} (B {b.action()})"
    return f"both failed, differently: {quote(a.errors[0])} vs {quote(b.errors[0])}"


def _model_sentence(a: TurnFacts, b: TurnFacts) -> str:
    if len(a.models) != len(b.models):
        return f"A made {len(a.models)} model call(s), B {len(b.models)}"
    names_a = ", ".join(dict.fromkeys(a.models)) or "?"
    names_b = ", ".join(dict.fromkeys(b.models)) or "?"
    return f"A used model `{names_a}`, B `{names_b}`"


def _extra_sentence(rows: list[Row], first: int) -> str:
    """Turns only one run made: how many, and whether they repeat the same calls."""
    row = rows[first]
    side = "A" if row.b is None else "B"
    run: list[TurnFacts] = []
    for other in rows[first:]:
        turn = other.a if side == "A" else other.b
        if (other.a is None) == (other.b is None) or turn is None:
            break
        run.append(turn)
    count = len(run)
    turns = "turn" if count == 1 else "turns"
    later = any(r.a is not None and r.b is not None for r in rows[first + count :])
    # turns in the middle (the runs meet again afterwards), or at the end
    where = f"From turn {row.index}, " if row.index > 1 else ""
    where = f"Turn {row.index}: " if later else where
    calls = {tuple((t.name, t.arguments) for t in turn.tools) for turn in run}
    before = None
    if first > 0:
        before = rows[first - 1].a if side == "A" else rows[first - 1].b
    calls_before = tuple((t.name, t.arguments) for t in before.tools) if before else None
    if len(calls) == 1 and run[0].tools and (count > 1 or calls_before in calls):
        tool = run[0].tools[0]
        shown = f"`{tool.name}`" + (f" {quote(tool.arguments)}" if tool.arguments else "")
        text = f"{side} made {count} more {turns} with identical calls ({shown})"
    else:
        what = "; ".join(f"{t.agent or '?'} {t.action()}" for t in run[:3])
        text = f"{side} made {count} more {turns} ({what}{'; …' if count > 3 else ''})"
    return f"{where}{text}" + (", then the runs meet again." if later else ".")


def verdict_line(facts: dict[str, Any]) -> str:
    """``failed · max_turns_exceeded — the explanation`` for one side."""
    label = str(facts["status"])
    if facts.get("category"):
        label += f" · {facts['category']}" + (
            f" ({facts['reason']})" if facts.get("reason") else ""
        )
    explanation = facts.get("explanation") or ""
    return f"{label} — {explanation}" if explanation else label


# --- text ---------------------------------------------------------------------------------


def render_text(diff: RunDiff, width: int = 48) -> str:
    """The diff as text: the two runs, the first divergence, the verdicts, the aligned turns."""
    lines = []
    for side, facts in (("A", diff.a), ("B", diff.b)):
        lines.append(
            f"{side}  {facts['trace_id']}  {facts['workflow'] or ''}  "
            f"{facts['turns']} turn(s)".replace("    ", "  ")
        )
    lines += ["", diff.summary]
    for note in diff.notes:
        lines.append(f"Note: {note}")
    lines += ["", "Verdicts:"]
    lines.append(f"  A  {verdict_line(diff.a)}")
    lines.append(f"  B  {verdict_line(diff.b)}")
    if diff.rows:
        lines += ["", "Turns (= alike, ≠ differs, + only in one run):"]
        lines.append(f"        A    B  {'A did':<{width}}  B did")
        for row in diff.rows:
            mark = "=" if row.same else "+" if row.a is None or row.b is None else "≠"
            if diff.first is not None and row is diff.rows[diff.first]:
                mark = "▶" + mark
            left = _turn_words(row.a)
            right = "(same)" if row.same else _turn_words(row.b)
            kind = f"   [{row.kind}]" if row.kind else ""
            lines.append(
                f"  {mark:<3}{_num(row.a):>3}  {_num(row.b):>3}  "
                f"{clip(left, width):<{width}}  {clip(right, width)}{kind}"
            )
    return "\n".join(lines)


def _num(turn: TurnFacts | None) -> str:
    return str(turn.index) if turn is not None else "-"


def _turn_words(turn: TurnFacts | None) -> str:
    """A turn in a table cell: ``Billing: lookup_order({"order_id": "A-1009"})``."""
    if turn is None:
        return "—"
    who = turn.agent or "?"
    if turn.ending == "tools" and turn.tools:
        first = turn.tools[0]
        more = f" +{len(turn.tools) - 1}" if len(turn.tools) > 1 else ""
        return f"{who}: {first.name}({first.arguments or ''}){more}"
    return f"{who}: {turn.action().replace('`', '')}"
