"""The turn timeline: one row per turn, a bar per model call, tool call, handoff and
guardrail, errors in red (fatal) or amber (recovered), repeated identical tool calls marked,
and the max-turns budget drawn when the run knows it. Pure: analysis in, Plotly figure out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from turnscope.records import MODEL_KINDS, SpanRecord
from turnscope.viewer.format import clip, duration, repeated_spans

if TYPE_CHECKING:
    from turnscope.analysis.turns import Turn
    from turnscope.analysis.verdict import Analysis

COLORS = {
    "model": "#4C78A8",
    "tool": "#54A24B",
    "handoff": "#B279A2",
    "guardrail": "#9D9D9D",
    "other": "#BAB0AC",
    "fatal": "#D62728",
    "recovered": "#F2A900",
    "running": "#72B7E6",
}
BAR_KINDS = {
    "generation": "model",
    "response": "model",
    "function": "tool",
    "handoff": "handoff",
    "guardrail": "guardrail",
    "mcp_tools": "other",
    "custom": "other",
    "transcription": "other",
    "speech": "other",
    "speech_group": "other",
}
MAX_ROWS = 60  # turns drawn at once; bigger runs are shown a window at a time
SERIES_ORDER = [
    "model",
    "tool",
    "handoff",
    "guardrail",
    "other",
    "recovered error",
    "fatal error",
    "running / never ended",
    "repeated identical call",
    "run-level error",
]


@dataclass(slots=True)
class Row:
    """One timeline row (a turn of one scope)."""

    key: tuple[int, int]
    label: str
    turn: Turn
    spans: list[SpanRecord] = field(default_factory=list)


def rows(analysis: Analysis) -> list[Row]:
    """Timeline rows in run order, one per turn (nested agent-as-tool runs marked)."""
    st = analysis.structure
    max_turns = analysis.verdict.max_turns
    out = []
    for turn in st.turns:
        scope = st.scopes[turn.scope]
        number = f"{turn.number}/{max_turns}" if max_turns and scope.top_level else turn.number
        nested = "" if scope.top_level else " (as tool)"
        label = f"T{number} · {turn.agent or '?'}{nested}"
        members = [st.by_id[s] for s in turn.span_ids if st.by_id[s].kind in BAR_KINDS]
        out.append(Row((turn.scope, turn.number), label, turn, members))
    return out


def failure_states(analysis: Analysis) -> dict[str, str]:
    """span id -> ``fatal`` or ``recovered`` for every span that carries an error."""
    out: dict[str, str] = {}
    for failure in analysis.failures:
        state = "recovered" if failure.recovered else "fatal"
        if out.get(failure.span.span_id) != "fatal":
            out[failure.span.span_id] = state
    verdict = analysis.verdict
    if verdict.status in ("failed", "incomplete") and verdict.span_id in analysis.structure.by_id:
        # the span the verdict blames, even without a SpanError (an exception ended it, or it
        # never ended)
        out[verdict.span_id] = "fatal"
    return out


def window(total: int, focus: int | None, size: int = MAX_ROWS) -> tuple[int, int]:
    """Row range [start, end) of at most ``size`` rows, containing ``focus`` near its end."""
    if total <= size:
        return 0, total
    if focus is None:
        return total - size, total
    start = max(0, min(focus - size + 10, total - size))
    return start, start + size


def figure(
    analysis: Analysis,
    *,
    start_row: int = 0,
    end_row: int | None = None,
    focus_span: str | None = None,
) -> Any:
    """The Plotly figure for rows [start_row, end_row)."""
    import plotly.graph_objects as go

    st = analysis.structure
    all_rows = rows(analysis)
    shown = all_rows[start_row:end_row]
    origin = origin_of(st.spans)
    states = failure_states(analysis)
    repeats = repeated_spans(analysis)
    labels = [r.label for r in shown]
    traces: dict[str, dict[str, list[Any]]] = {}

    def add(series: str, span: SpanRecord, row: Row, color: str, line: str) -> None:
        bucket = traces.setdefault(
            series,
            {"y": [], "base": [], "x": [], "text": [], "color": [], "line": [], "ids": []},
        )
        start, end = extent(span, origin, st.spans)
        bucket["y"].append(row.label)
        bucket["base"].append(start)
        bucket["x"].append(max(end - start, 0.5))
        bucket["text"].append(_hover(span, states.get(span.span_id), repeats.get(span.span_id)))
        bucket["color"].append(color)
        bucket["line"].append(line)
        bucket["ids"].append(span.span_id)

    for row in shown:
        for span in row.spans:
            series, color = series_of(span, states)
            line = "#000000" if span.span_id == focus_span else color
            add(series, span, row, color, line)

    fig = go.Figure()
    for series in sorted(traces, key=SERIES_ORDER.index):
        data = traces[series]
        fig.add_trace(
            go.Bar(
                name=series,
                orientation="h",
                y=data["y"],
                x=data["x"],
                base=data["base"],
                customdata=data["ids"],
                hovertext=data["text"],
                hoverinfo="text",
                marker={"color": data["color"], "line": {"color": data["line"], "width": 2}},
            )
        )
    _repeat_markers(fig, shown, repeats, origin, st.spans)
    _run_level_errors(fig, analysis, states, origin, labels)
    budget = analysis.verdict.max_turns
    height = 120 + 26 * max(len(shown), 1)
    fig.update_layout(
        barmode="overlay",
        height=min(height, 1700),
        margin={"l": 10, "r": 10, "t": 30, "b": 40},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        xaxis={"title": "ms since the run started", "zeroline": False},
        yaxis={
            "categoryorder": "array",
            "categoryarray": list(reversed(labels)),
            "automargin": True,
        },
        bargap=0.35,
    )
    if budget and shown and end_row in (None, len(all_rows)):
        fig.add_annotation(
            xref="paper",
            x=1.0,
            y=labels[-1],
            text=f"max_turns = {budget}: budget used up",
            showarrow=False,
            xanchor="right",
            yshift=-16,
            font={"color": COLORS["fatal"]},
        )
    return fig


def series_of(span: SpanRecord, states: dict[str, str]) -> tuple[str, str]:
    """The legend series of a bar and its colour: its error state, else never ended, else its
    kind."""
    state = states.get(span.span_id)
    if state is not None:
        return f"{state} error", COLORS[state]
    if span.ended_at is None:
        return "running / never ended", COLORS["running"]
    kind = BAR_KINDS[span.kind]
    return kind, COLORS[kind]


def repeat_text(span: SpanRecord, count: int) -> str:
    """The tooltip of a repeated identical call's marker."""
    return f"same call ×{count}: {span.name}"


def run_level_errors(analysis: Analysis) -> list[tuple[SpanRecord, str]]:
    """Errors on spans outside every turn (max turns on the agent span, a task span's
    exception), each with its tooltip text."""
    out = []
    for failure in analysis.failures:
        span = failure.span
        if span.kind in ("agent", "task") and not failure.echo:
            out.append((span, f"{span.kind} {span.name}: {clip(failure.message, 120)}"))
    return out


def _repeat_markers(
    fig: Any, shown: list[Row], repeats: dict[str, int], origin: datetime, spans: list[SpanRecord]
) -> None:
    import plotly.graph_objects as go

    xs, ys, texts, ids = [], [], [], []
    for row in shown:
        for span in row.spans:
            if span.span_id in repeats:
                xs.append(extent(span, origin, spans)[1])
                ys.append(row.label)
                texts.append(repeat_text(span, repeats[span.span_id]))
                ids.append(span.span_id)
    if xs:
        fig.add_trace(
            go.Scatter(
                name="repeated identical call",
                x=xs,
                y=ys,
                mode="markers",
                customdata=ids,
                hovertext=texts,
                hoverinfo="text",
                marker={"symbol": "circle-open", "size": 12, "color": "#000", "line": {"width": 2}},
            )
        )


def _run_level_errors(
    fig: Any, analysis: Analysis, states: dict[str, str], origin: datetime, labels: list[str]
) -> None:
    """Errors on spans outside every turn (max turns on the agent span, a task span's
    exception) drawn as markers on the last row shown."""
    import plotly.graph_objects as go

    if not labels:
        return
    xs, texts, ids, colors = [], [], [], []
    for span, text in run_level_errors(analysis):
        xs.append(ms(span.ended_at or span.started_at, origin))
        texts.append(text)
        ids.append(span.span_id)
        colors.append(COLORS[states.get(span.span_id, "fatal")])
    if xs:
        fig.add_trace(
            go.Scatter(
                name="run-level error",
                x=xs,
                y=[labels[-1]] * len(xs),
                mode="markers",
                customdata=ids,
                hovertext=texts,
                hoverinfo="text",
                marker={"symbol": "x", "size": 14, "color": colors},
            )
        )


def origin_of(spans: list[SpanRecord]) -> datetime:
    """When the run started: its earliest span start (the x axis' zero)."""
    starts = [s.started_at for s in spans if s.started_at is not None]
    return min(starts) if starts else datetime.fromtimestamp(0).astimezone()


def ms(value: datetime | None, origin: datetime) -> float:
    """Milliseconds from ``origin`` to ``value`` (0 for no value)."""
    if value is None:
        return 0.0
    return (value - origin).total_seconds() * 1000.0


def last_ms(spans: list[SpanRecord], origin: datetime) -> float:
    """The run's last recorded moment, in ms since ``origin`` (where never-ended bars stop)."""
    ends = [s.ended_at or s.started_at for s in spans if (s.ended_at or s.started_at)]
    return ms(max(ends), origin) if ends else 0.0


def extent(span: SpanRecord, origin: datetime, spans: list[SpanRecord]) -> tuple[float, float]:
    """A bar's start and end in ms since ``origin``; a span that never ended runs to the run's
    last moment."""
    end = ms(span.ended_at, origin) if span.ended_at else last_ms(spans, origin)
    return ms(span.started_at, origin), end


def hover_lines(span: SpanRecord, state: str | None, repeat: int | None) -> list[str]:
    """A bar's tooltip as plain lines, the first naming the span (joined with ``<br>`` for
    Plotly, with newlines for a ``title`` attribute)."""
    lines = [f"{span.kind} {span.name} ({duration(span.duration_ms)})"]
    if span.kind in MODEL_KINDS and (span.input_tokens or span.output_tokens):
        lines.append(f"tokens: {span.input_tokens or 0} in / {span.output_tokens or 0} out")
    if span.kind == "function":
        lines.append(f"args: {clip(span.data.get('input'), 80)}")
    if span.kind == "handoff":
        lines.append(f"{span.data.get('from_agent')} → {span.data.get('to_agent')}")
    if span.kind == "guardrail":
        lines.append(f"triggered: {span.data.get('triggered')}")
    if state:
        lines.append(f"{state} error: {clip(span.error_message, 100)}")
    if span.ended_at is None:
        lines.append("never ended")
    if repeat:
        lines.append(f"identical call made {repeat} times")
    return lines


def _hover(span: SpanRecord, state: str | None, repeat: int | None) -> str:
    """Plotly's hover text: the tooltip lines, the first in bold."""
    first, *rest = hover_lines(span, state, repeat)
    return "<br>".join([f"<b>{first}</b>", *rest])
