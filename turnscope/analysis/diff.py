"""Compare two runs turn by turn and name the first turn where they part (pure, no I/O).

Each top-level turn is reduced to what it did: its agent, model calls, tool calls (name,
canonical arguments, output, error), handoff target, guardrail results, errors and the text
the model said. The two runs' turns are aligned with a sequence alignment
(``difflib.SequenceMatcher``) on a coarse key (agent, tools called, handoff, guardrails
tripped, how the turn ended), so a run that looped twice more lines up with the one that did
not, and a turn whose call changed only its arguments still pairs with its counterpart. The
first row that differs is the divergence; its *kind* comes from a closed vocabulary
(``KINDS``, docs/debug-loop.md), tried in the order a turn happens: who ran it, its input
guardrails, the model call, what the model asked for, what the tools returned, the answer.

The sentences and the text form are in ``analysis.diff_words``. A nested run (an agent
used as a tool) is compared through the tool call that ran it (its arguments and output).
Without captured content (``capture_content=False``) only the structure is compared:
agents, tool names, handoffs, guardrails and errors.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from turnscope.analysis.diff_words import divergence_sentence, quote, same_sentence
from turnscope.analysis.summary import top_scopes
from turnscope.content import canonical_args, clip, output_text
from turnscope.records import MODEL_KINDS, SpanRecord, is_captured

if TYPE_CHECKING:
    from turnscope.analysis.turns import Structure, Turn
    from turnscope.analysis.verdict import Analysis

# The kinds of divergence, in the order they are tried within a pair of turns (the first that
# applies names the pair); ``extra_turns`` is a turn only one run made, ``verdict`` two runs
# whose turns are all alike but whose verdicts differ.
KINDS = (
    "agent",
    "guardrail",
    "error",
    "model",
    "handoff",
    "tool",
    "arguments",
    "tool_error",
    "tool_output",
    "output",
)
EXTRA_TURNS = "extra_turns"
VERDICT = "verdict"
ALL_KINDS = (*KINDS, EXTRA_TURNS, VERDICT)

CLIP = 80  # characters of an argument, output or answer quoted in the sentence


class DifferentWorkflows(ValueError):
    """The two runs belong to different workflows (compare them anyway with ``force``)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call of a turn: name, canonical arguments, output and error (None: unknown)."""

    name: str
    arguments: str | None
    output: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the ``--json`` shape)."""
        return {
            "name": self.name,
            "arguments": self.arguments,
            "output": self.output,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Guardrail:
    """A guardrail that ran in a turn: its name, side (input/output) and result."""

    name: str
    side: str
    triggered: bool
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the ``--json`` shape)."""
        return {
            "name": self.name,
            "side": self.side,
            "triggered": self.triggered,
            "error": self.error,
        }


@dataclass(slots=True)
class TurnFacts:
    """What one turn did, reduced to what two runs are compared on."""

    index: int  # 1-based position among the run's top-level turns
    number: int  # the SDK's own turn counter
    agent: str | None
    span_id: str | None
    models: tuple[str, ...] = ()
    tools: tuple[ToolCall, ...] = ()
    handoff: str | None = None
    guardrails: tuple[Guardrail, ...] = ()
    errors: tuple[str, ...] = ()  # errors of model calls and other spans (not tools, guardrails)
    output: str | None = None  # what the model said (text), when captured
    started_at: datetime | None = None
    ended_at: datetime | None = None
    span_ids: list[str] = field(default_factory=list)

    def key(self) -> tuple[Any, ...]:
        """The coarse key the alignment matches on: what kind of step this was."""
        tripped = tuple(sorted(g.name for g in self.guardrails if g.triggered or g.error))
        return (self.agent, tuple(t.name for t in self.tools), self.handoff, tripped, self.ending)

    @property
    def ending(self) -> str:
        """How the turn ended: guardrail, error, handoff, tools, answer or stopped."""
        if any(g.triggered or g.error for g in self.guardrails):
            return "guardrail"
        if self.errors and not self.tools and self.handoff is None:
            return "error"
        if self.handoff is not None:
            return "handoff"
        if self.tools:
            return "tools"
        return "answer" if self.output is not None or self.models else "stopped"

    def action(self) -> str:
        """What the turn did, in a few words (``called `lookup` ``, ``answered``)."""
        ending = self.ending
        if ending == "guardrail":
            guard = next(g for g in self.guardrails if g.triggered or g.error)
            verb = "raised" if guard.error and not guard.triggered else "tripped"
            return f"{guard.side} guardrail `{guard.name}` {verb}"
        if ending == "error":
            return f"failed ({clip(self.errors[0], CLIP)})"
        if ending == "handoff":
            return f"handed off to {self.handoff}"
        if ending == "tools":
            return "called " + ", ".join(f"`{name}`" for name in _names(self.tools))
        return "answered" if ending == "answer" else "stopped"

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the ``--json`` shape)."""
        return {
            "turn": self.number,
            "index": self.index,
            "agent": self.agent,
            "span_id": self.span_id,
            "action": self.action(),
            "models": list(self.models),
            "tool_calls": [t.to_dict() for t in self.tools],
            "handoff": self.handoff,
            "guardrails": [g.to_dict() for g in self.guardrails],
            "errors": list(self.errors),
            "output": self.output,
        }


@dataclass(slots=True)
class Change:
    """One field that differs between two aligned turns."""

    kind: str  # one of KINDS
    a: Any
    b: Any

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the ``--json`` shape)."""
        return {"field": self.kind, "a": self.a, "b": self.b}


@dataclass(slots=True)
class Row:
    """One line of the alignment: a turn of A, of B, or of both, and how they differ."""

    index: int  # 1-based row number
    a: TurnFacts | None
    b: TurnFacts | None
    changes: list[Change] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """Both runs made this turn, and it did the same thing."""
        return self.a is not None and self.b is not None and not self.changes

    @property
    def kind(self) -> str | None:
        """How this row differs (None: it does not)."""
        if self.a is None or self.b is None:
            return EXTRA_TURNS
        return self.changes[0].kind if self.changes else None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (the ``--json`` shape)."""
        return {
            "row": self.index,
            "same": self.same,
            "kind": self.kind,
            "a": self.a.to_dict() if self.a else None,
            "b": self.b.to_dict() if self.b else None,
            "changes": [c.to_dict() for c in self.changes],
        }


@dataclass(slots=True)
class RunDiff:
    """Two runs aligned turn by turn, with the first divergence named."""

    a: dict[str, Any]  # each run's facts and verdict (``run_facts``)
    b: dict[str, Any]
    rows: list[Row]
    first: int | None  # index into rows of the first divergent row
    kind: str | None
    summary: str
    content_compared: bool
    notes: list[str] = field(default_factory=list)

    @property
    def first_divergent_turn(self) -> int | None:
        """The turn where the runs part (the same number in both: every turn before it is
        alike), None when every turn is alike."""
        return self.rows[self.first].index if self.first is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The ``turnscope diff --json`` object."""
        return {
            "first_divergent_turn": self.first_divergent_turn,
            "kind": self.kind,
            "summary": self.summary,
            "content_compared": self.content_compared,
            "notes": list(self.notes),
            "a": self.a,
            "b": self.b,
            "aligned": [r.to_dict() for r in self.rows],
        }


# --- reading a run ------------------------------------------------------------------------------


def compared_turns(st: Structure) -> list[Turn]:
    """The turns two runs are aligned on: those of the top-level runs, in order."""
    turns = [t for s in top_scopes(st) for t in s.turns]
    return turns or list(st.turns)


def content_captured(st: Structure) -> bool:
    """False when the run was recorded without content (``capture_content=False``)."""
    for span in st.spans:
        if span.kind == "function" or span.kind in MODEL_KINDS:
            for key in ("input", "output"):
                value = span.data.get(key)
                if value is not None and not is_captured(value):
                    return False
    return True


def turn_facts(analysis: Analysis, turn: Turn, index: int, content: bool = True) -> TurnFacts:
    """What one turn did (``content=False``: names and results only, no arguments or text)."""
    st = analysis.structure
    members = [st.by_id[i] for i in turn.span_ids]
    members.sort(key=lambda s: (s.started_at is None, s.started_at, s.seq))
    models: list[str] = []
    tools: list[ToolCall] = []
    handoffs: list[tuple[str, bool]] = []
    guards: list[Guardrail] = []
    errors: list[str] = []
    said: list[str] = []
    for span in members:
        if span.kind in MODEL_KINDS:
            models.append(span.model or span.data.get("model") or "")
            if span.error_message is not None:
                errors.append(_error_text(span, content))
            elif content:
                text = output_text(span.data.get("output"))
                if text is not None:
                    said.append(text)
        elif span.kind == "function":
            tools.append(_tool_call(span, content))
        elif span.kind == "handoff":
            target = span.data.get("to_agent")
            handoffs.append((str(target) if target else "?", span.error_message is None))
        elif span.kind == "guardrail":
            error = _error_text(span, content) if span.error_message is not None else None
            guards.append(
                Guardrail(span.name, _side(st, span), bool(span.data.get("triggered")), error)
            )
        elif span.error_message is not None and span.kind not in ("turn", "task", "agent"):
            errors.append(_error_text(span, content))
    missing = _missing_tool(analysis, turn, tools)
    if missing is not None:
        tools.append(missing)
    accepted = [target for target, ok in handoffs if ok] or [target for target, _ in handoffs]
    return TurnFacts(
        index=index,
        number=turn.number,
        agent=turn.agent,
        span_id=turn.span_id,
        models=tuple(models),
        tools=tuple(tools),
        handoff=accepted[0] if accepted else None,
        guardrails=tuple(guards),
        errors=tuple(errors),
        output="\n".join(said) if said else None,
        started_at=turn.started_at,
        ended_at=turn.ended_at,
        span_ids=list(turn.span_ids),
    )


def _tool_call(span: SpanRecord, content: bool) -> ToolCall:
    name = span.tool_name or span.name
    error = _error_text(span, content) if span.error_message is not None else None
    if not content:
        return ToolCall(name, None, None, error)
    args = span.data.get("input")
    output = span.data.get("output")
    return ToolCall(
        name,
        canonical_args(args) if args is not None else None,
        _output_text(output),
        error,
    )


def _output_text(value: Any) -> str | None:
    """A tool's output as comparable text (JSON text canonicalised)."""
    if value is None:
        return None
    return canonical_args(value)


def _error_text(span: SpanRecord, content: bool) -> str:
    """A span's error: its message, and its detail when content was captured."""
    message = span.error_message or "error"
    detail = (span.error_data or {}).get("error") if content else None
    if isinstance(detail, str) and detail and detail not in message and is_captured(detail):
        return f"{message}: {detail}"
    return message


def _missing_tool(analysis: Analysis, turn: Turn, tools: list[ToolCall]) -> ToolCall | None:
    """The tool the model asked for that the agent does not have (the verdict found it: the
    SDK records no tool span for it)."""
    verdict = analysis.verdict
    if verdict.category != "tool_not_found" or not verdict.tool:
        return None
    if verdict.turn != turn.number or verdict.agent not in (None, turn.agent):
        return None
    if any(t.name == verdict.tool for t in tools):
        return None
    return ToolCall(verdict.tool, None, None, "no such tool")


def _side(st: Structure, guard: SpanRecord) -> str:
    """Input or output guardrail: an output guardrail starts after the turn's model calls
    ended; an input guardrail runs beside (or before) the first one."""
    turn = st.turn_of(guard)
    if turn is None or guard.started_at is None:
        return "input"
    models = [st.by_id[i] for i in turn.span_ids if st.by_id[i].kind in MODEL_KINDS]
    ended = [m.ended_at for m in models if m.ended_at is not None]
    if models and len(ended) == len(models) and max(ended) <= guard.started_at:
        return "output"
    return "input"


def run_facts(run: dict[str, Any], analysis: Analysis, content: bool) -> dict[str, Any]:
    """A run's side of the diff: ids, workflow, verdict and size."""
    verdict = analysis.verdict
    return {
        "trace_id": run.get("trace_id"),
        "workflow": run.get("workflow"),
        "status": verdict.status,
        "category": verdict.category,
        "reason": verdict.reason,
        "agent": verdict.agent,
        "turn": verdict.turn,
        "explanation": verdict.explanation,
        "turns": len(compared_turns(analysis.structure)),
        "started_at": run.get("started_at"),
        "duration_ms": run.get("duration_ms"),
        "first_input": run.get("first_input"),
        "final_output": run.get("final_output"),
        "content_captured": content,
    }


# --- comparing ----------------------------------------------------------------------------------


def check_workflows(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Raise DifferentWorkflows unless both runs belong to the same workflow."""
    if (a.get("workflow") or None) != (b.get("workflow") or None):
        raise DifferentWorkflows(
            f"the runs belong to different workflows ({a.get('workflow')!r} vs "
            f"{b.get('workflow')!r}): their turns do not line up; compare them anyway with --force"
        )


def diff_runs(
    run_a: dict[str, Any], analysis_a: Analysis, run_b: dict[str, Any], analysis_b: Analysis
) -> RunDiff:
    """Align two runs turn by turn and name the first divergence."""
    captured_a = content_captured(analysis_a.structure)
    captured_b = content_captured(analysis_b.structure)
    content = captured_a and captured_b
    turns_a = [
        turn_facts(analysis_a, t, i + 1, content)
        for i, t in enumerate(compared_turns(analysis_a.structure))
    ]
    turns_b = [
        turn_facts(analysis_b, t, i + 1, content)
        for i, t in enumerate(compared_turns(analysis_b.structure))
    ]
    rows = align(turns_a, turns_b)
    first = next((i for i, r in enumerate(rows) if not r.same), None)
    facts_a = run_facts(run_a, analysis_a, captured_a)
    facts_b = run_facts(run_b, analysis_b, captured_b)
    notes: list[str] = []
    if not content:
        which = " and ".join(side for side, ok in (("A", captured_a), ("B", captured_b)) if not ok)
        notes.append(
            f"{which} recorded without content (capture_content=False): compared structure only "
            "(agents, tool names, handoffs, guardrails, errors), not arguments, outputs or text."
        )
    if content and facts_a["first_input"] != facts_b["first_input"]:
        notes.append(
            f"The inputs differ: {quote(facts_a['first_input'])} vs "
            f"{quote(facts_b['first_input'])}."
        )
    for side, facts in (("A", facts_a), ("B", facts_b)):
        if facts["status"] == "running":
            notes.append(f"{side} is still running: compared as far as it got.")
    if first is None:
        verdicts_differ = (facts_a["status"], facts_a["category"], facts_a["reason"]) != (
            facts_b["status"],
            facts_b["category"],
            facts_b["reason"],
        )
        kind = VERDICT if verdicts_differ else None
        summary = same_sentence(len(rows), verdicts_differ, facts_a, facts_b)
    else:
        kind = rows[first].kind
        summary = divergence_sentence(rows, first)
    return RunDiff(facts_a, facts_b, rows, first, kind, summary, content, notes)


def align(turns_a: list[TurnFacts], turns_b: list[TurnFacts]) -> list[Row]:
    """Rows of the alignment: matched turns (alike or changed) and turns only one run made."""
    # the common start pairs first: of the alignments as long, the one where the runs part
    # latest reads right ("B looped once more" at the end of the loop, not at its start)
    start = 0
    while start < min(len(turns_a), len(turns_b)) and turns_a[start].key() == turns_b[start].key():
        start += 1
    pairs: list[tuple[TurnFacts | None, TurnFacts | None]] = list(
        zip(turns_a[:start], turns_b[:start], strict=True)
    )
    pairs += _pairs(turns_a[start:], turns_b[start:], (TurnFacts.key, _step_key, _agent_key))
    rows: list[Row] = []
    for a, b in pairs:
        rows.append(Row(len(rows) + 1, a, b, compare(a, b) if a and b else []))
    return rows


def _step_key(turn: TurnFacts) -> Any:
    """What the agent did, whatever guardrails and errors made of it."""
    return (turn.agent, tuple(t.name for t in turn.tools), turn.handoff)


def _agent_key(turn: TurnFacts) -> Any:
    return turn.agent


def _pairs(
    turns_a: list[TurnFacts], turns_b: list[TurnFacts], keys: tuple[Any, ...]
) -> list[tuple[TurnFacts | None, TurnFacts | None]]:
    """Align on the first key; a block that differs is aligned again on the next, coarser
    key (the agent), and what is left pairs in order: a changed turn is still that turn."""
    if not keys:
        paired = min(len(turns_a), len(turns_b))
        out: list[tuple[TurnFacts | None, TurnFacts | None]] = list(
            zip(turns_a[:paired], turns_b[:paired], strict=True)
        )
        out += [(a, None) for a in turns_a[paired:]]
        out += [(None, b) for b in turns_b[paired:]]
        return out
    key, rest = keys[0], keys[1:]
    matcher = difflib.SequenceMatcher(
        None, [key(t) for t in turns_a], [key(t) for t in turns_b], autojunk=False
    )
    out = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out += list(zip(turns_a[i1:i2], turns_b[j1:j2], strict=True))
        elif tag == "replace":
            out += _pairs(turns_a[i1:i2], turns_b[j1:j2], rest)
        else:
            out += [(a, None) for a in turns_a[i1:i2]] + [(None, b) for b in turns_b[j1:j2]]
    return out


def compare(a: TurnFacts, b: TurnFacts) -> list[Change]:
    """The fields two aligned turns differ in, in the order of KINDS."""
    changes: list[Change] = []
    if a.agent != b.agent:
        changes.append(Change("agent", a.agent, b.agent))
    if _guard_results(a) != _guard_results(b):
        changes.append(
            Change(
                "guardrail",
                [g.to_dict() for g in a.guardrails],
                [g.to_dict() for g in b.guardrails],
            )
        )
    if a.errors != b.errors:
        changes.append(Change("error", list(a.errors), list(b.errors)))
    if a.models != b.models:
        changes.append(Change("model", list(a.models), list(b.models)))
    if a.handoff != b.handoff:
        changes.append(Change("handoff", a.handoff, b.handoff))
    if _names(a.tools) != _names(b.tools) or len(a.tools) != len(b.tools):
        changes.append(Change("tool", [t.name for t in a.tools], [t.name for t in b.tools]))
    else:
        pairs = list(zip(a.tools, b.tools, strict=True))
        for kind, attr in (
            ("arguments", "arguments"),
            ("tool_error", "error"),
            ("tool_output", "output"),
        ):
            for ta, tb in pairs:
                if getattr(ta, attr) != getattr(tb, attr):
                    changes.append(Change(kind, ta.to_dict(), tb.to_dict()))
                    break
    if a.output != b.output:
        changes.append(Change("output", a.output, b.output))
    return changes


def _guard_results(turn: TurnFacts) -> list[tuple[str, bool, bool]]:
    return sorted((g.name, g.triggered, g.error is not None) for g in turn.guardrails)


def _names(tools: tuple[ToolCall, ...]) -> list[str]:
    return list(dict.fromkeys(t.name for t in tools))
