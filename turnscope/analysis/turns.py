"""Rebuild runs and turns from span records (pure functions, no I/O).

A trace holds one or more *scopes*: one per ``Runner.run`` call (a task span on new SDKs; on
old SDKs, a chain of agent spans linked by handoffs, or an agent run as a tool). Inside a
scope the SDK's turn counter runs across handoffs. Turn spans give turn numbers directly
(openai-agents >= 0.14); otherwise turns are derived: each model call opens a turn, retries of
a failed model call stay in the same turn (docs/design/viewer-anchors.md Appendix B).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from turnscope.records import MODEL_KINDS, SpanRecord


@dataclass(slots=True)
class Turn:
    """One iteration of the agent loop."""

    scope: int
    number: int
    agent: str | None
    span_id: str | None  # the SDK turn span, when there is one
    started_at: datetime | None = None
    ended_at: datetime | None = None
    span_ids: list[str] = field(default_factory=list)
    model_calls: int = 0
    tool_calls: int = 0
    handoffs: int = 0
    guardrails: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def to_dict(self) -> dict[str, object]:
        """Plain-dict form for JSON output."""
        return {
            "scope": self.scope,
            "turn": self.number,
            "agent": self.agent,
            "span_id": self.span_id,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "model_calls": self.model_calls,
            "tool_calls": self.tool_calls,
            "handoffs": self.handoffs,
            "guardrails": self.guardrails,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(slots=True)
class Scope:
    """One ``Runner.run`` call inside a trace."""

    index: int
    root_id: str | None  # task span id, or first agent span id
    top_level: bool  # False for an agent run as a tool (nested inside a function span)
    agent_ids: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)


@dataclass(slots=True)
class Structure:
    """Everything the verdict and the viewer need about a trace's shape."""

    spans: list[SpanRecord]  # in start order
    by_id: dict[str, SpanRecord]
    children: dict[str | None, list[SpanRecord]]
    scopes: list[Scope]
    turns: list[Turn]
    scope_of: dict[str, int]  # span_id -> scope index
    agent_turns: dict[str, list[Turn]] = field(default_factory=dict)  # agent span id -> turns

    def parent(self, span: SpanRecord) -> SpanRecord | None:
        """The span's parent record, if present."""
        return self.by_id.get(span.parent_id) if span.parent_id else None

    def ancestors(self, span: SpanRecord) -> list[SpanRecord]:
        """Parents from nearest to the root (guards against cycles in bad data)."""
        out: list[SpanRecord] = []
        seen = {span.span_id}
        current = self.parent(span)
        while current is not None and current.span_id not in seen:
            out.append(current)
            seen.add(current.span_id)
            current = self.parent(current)
        return out

    def descendants(self, span: SpanRecord) -> list[SpanRecord]:
        """All spans below ``span`` (iterative, cycle-safe)."""
        out: list[SpanRecord] = []
        seen = {span.span_id}
        stack = list(self.children.get(span.span_id, ()))
        while stack:
            item = stack.pop()
            if item.span_id in seen:
                continue
            seen.add(item.span_id)
            out.append(item)
            stack.extend(self.children.get(item.span_id, ()))
        return out

    def turn_of(self, span: SpanRecord) -> Turn | None:
        """The Turn a span belongs to; for an agent or task span, its last turn."""
        if span.kind == "agent":
            turns = self.agent_turns.get(span.span_id)
            return turns[-1] if turns else None
        if span.kind == "task" and span.span_id in self.scope_of:
            turns = self.scopes[self.scope_of[span.span_id]].turns
            return turns[-1] if turns else None
        if span.turn is None:
            return None
        scope_index = self.scope_of.get(span.span_id)
        if scope_index is None:
            return None
        for turn in self.scopes[scope_index].turns:
            if turn.number == span.turn:
                return turn
        return None


def _order_key(span: SpanRecord) -> tuple[float, int]:
    started = span.started_at.timestamp() if span.started_at else float("inf")
    return (started, span.seq)


def build(spans: list[SpanRecord]) -> Structure:
    """Order spans, find scopes, assign every span its agent and turn, and list the turns."""
    ordered = sorted(spans, key=_order_key)
    by_id = {s.span_id: s for s in ordered}
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    for span in ordered:
        parent = (
            span.parent_id if span.parent_id in by_id and span.parent_id != span.span_id else None
        )
        children[parent].append(span)
    structure = Structure(ordered, by_id, children, [], [], {})
    for span in ordered:
        span.agent = None
        span.turn = None
    _find_scopes(structure)
    for scope in structure.scopes:
        _assign_turns(structure, scope)
        structure.turns.extend(scope.turns)
    _fill_turn_stats(structure)
    return structure


def _find_scopes(st: Structure) -> None:
    """In start order: each task span opens a scope; so does an agent span that is not the
    target of the previous sibling agent's handoff (old SDKs have no task spans)."""
    last: dict[str | None, tuple[Scope, str | None]] = {}
    for span in st.spans:
        if span.kind == "task":
            scope = _new_scope(st, span)
            st.scope_of[span.span_id] = scope.index
        elif span.kind == "agent":
            parent = st.parent(span)
            if parent is not None and parent.kind == "task" and parent.span_id in st.scope_of:
                st.scopes[st.scope_of[parent.span_id]].agent_ids.append(span.span_id)
                continue
            key = parent.span_id if parent is not None else None
            previous = last.get(key)
            if previous is not None and previous[1] is not None and previous[1] in ("", span.name):
                scope = previous[0]
            else:
                scope = _new_scope(st, span)
            scope.agent_ids.append(span.span_id)
            last[key] = (scope, _handoff_target(st, span))


def _new_scope(st: Structure, root: SpanRecord) -> Scope:
    inside_tool = any(a.kind == "function" for a in st.ancestors(root))
    scope = Scope(len(st.scopes), root.span_id, not inside_tool)
    st.scopes.append(scope)
    return scope


def _handoff_target(st: Structure, agent: SpanRecord) -> str | None:
    """Agent this agent span handed off to ("" if the target is unknown), or None."""
    target: str | None = None
    for child in st.children.get(agent.span_id, ()):
        candidates = [child]
        if child.kind == "turn":
            candidates = list(st.children.get(child.span_id, ()))
        for span in candidates:
            if span.kind == "handoff":
                to_agent = span.data.get("to_agent")
                if isinstance(to_agent, str) and to_agent:
                    target = to_agent
                elif target is None:
                    target = ""
    return target


def _assign_turns(st: Structure, scope: Scope) -> None:
    counter = 0
    for agent_id in scope.agent_ids:
        agent = st.by_id[agent_id]
        agent.agent = agent.name
        st.scope_of[agent.span_id] = scope.index
        kids = st.children.get(agent.span_id, [])
        turn_spans = [k for k in kids if k.kind == "turn"]
        first = len(scope.turns)
        if turn_spans:
            counter = _explicit_turns(st, scope, agent, kids, turn_spans, counter)
        else:
            counter = _derived_turns(st, scope, agent, kids, counter)
        st.agent_turns[agent.span_id] = scope.turns[first:]
    root = st.by_id.get(scope.root_id) if scope.root_id else None
    if root is not None and root.kind == "task":
        st.scope_of[root.span_id] = scope.index
        root.agent = scope.turns[0].agent if scope.turns else None


def _new_turn(scope: Scope, number: int, agent: str | None, span_id: str | None) -> Turn:
    turn = Turn(scope.index, number, agent, span_id)
    scope.turns.append(turn)
    return turn


def _explicit_turns(
    st: Structure,
    scope: Scope,
    agent: SpanRecord,
    kids: list[SpanRecord],
    turn_spans: list[SpanRecord],
    counter: int,
) -> int:
    turns: list[tuple[SpanRecord, Turn]] = []
    for span in turn_spans:
        number = span.data.get("turn")
        if not isinstance(number, int):
            number = counter + 1
        counter = max(counter, number)
        turn_agent = span.data.get("agent_name") or agent.name
        turn = _new_turn(scope, number, turn_agent, span.span_id)
        turns.append((span, turn))
        _mark(st, scope, span, turn, turn_agent)
    for span in kids:
        if span.kind == "turn":
            continue
        # output guardrails, streamed input guardrails, resumed tool calls: nearest turn
        target = turns[0][1]
        for turn_span, turn in turns:
            if _order_key(turn_span) <= _order_key(span):
                target = turn
        _mark(st, scope, span, target, agent.name)
    return counter


def _derived_turns(
    st: Structure, scope: Scope, agent: SpanRecord, kids: list[SpanRecord], counter: int
) -> int:
    current: Turn | None = None
    pending: list[SpanRecord] = []  # spans before the first model call (input guardrails)
    last_model_failed = False
    since_model = 0
    for span in kids:
        if span.kind in MODEL_KINDS:
            retry = current is not None and last_model_failed and since_model == 0
            if not retry:
                counter += 1
                current = _new_turn(scope, counter, agent.name, None)
                for early in pending:
                    _mark(st, scope, early, current, agent.name)
                pending.clear()
            last_model_failed = span.error_message is not None
            since_model = 0
        elif current is not None:
            since_model += 1
        if current is None:
            pending.append(span)
        else:
            _mark(st, scope, span, current, agent.name)
    if pending:  # e.g. a guardrail tripped before the first model call started
        counter += 1
        current = _new_turn(scope, counter, agent.name, None)
        for early in pending:
            _mark(st, scope, early, current, agent.name)
    return counter


def _mark(st: Structure, scope: Scope, span: SpanRecord, turn: Turn, agent: str | None) -> None:
    """Give a span and its subtree (stopping at nested scopes) the turn and agent."""
    stack = [(span, agent)]
    while stack:
        item, owner = stack.pop()
        if item is not span and item.kind in ("task", "agent"):
            continue  # a nested run (agent as tool) is numbered on its own
        st.scope_of[item.span_id] = scope.index
        item.turn = turn.number
        item.agent = owner
        turn.span_ids.append(item.span_id)
        for child in st.children.get(item.span_id, ()):
            stack.append((child, owner))


def _fill_turn_stats(st: Structure) -> None:
    for turn in st.turns:
        starts: list[datetime] = []
        ends: list[datetime] = []
        for span_id in turn.span_ids:
            span = st.by_id[span_id]
            if span.started_at:
                starts.append(span.started_at)
            if span.ended_at:
                ends.append(span.ended_at)
            if span.kind in MODEL_KINDS:
                turn.model_calls += 1
                turn.input_tokens += span.input_tokens or 0
                turn.output_tokens += span.output_tokens or 0
            elif span.kind == "function":
                turn.tool_calls += 1
            elif span.kind == "handoff":
                turn.handoffs += 1
            elif span.kind == "guardrail":
                turn.guardrails += 1
            if span.error_message is not None:
                turn.errors += 1
        own = st.by_id.get(turn.span_id) if turn.span_id else None
        if own is not None:
            if turn.model_calls == 0 or not (turn.input_tokens or turn.output_tokens):
                turn.input_tokens = own.input_tokens or 0
                turn.output_tokens = own.output_tokens or 0
            turn.started_at, turn.ended_at = own.started_at, own.ended_at
        else:
            turn.started_at = min(starts) if starts else None
            turn.ended_at = max(ends) if ends and len(ends) == len(turn.span_ids) else None


def agent_path(st: Structure) -> list[str]:
    """Agents of the top-level scopes in the order they ran, consecutive repeats merged."""
    path: list[str] = []
    for scope in st.scopes:
        if not scope.top_level:
            continue
        for agent_id in scope.agent_ids:
            name = st.by_id[agent_id].name
            if not path or path[-1] != name:
                path.append(name)
    return path
