"""The turn timeline drawn on the server as HTML and CSS: stacked panels of rows (turns) over
one shared time axis, a bar per span that links to it on the run page, tooltips in ``title``.

Made for ``st.html``. That sanitises with DOMPurify's HTML profile, which drops every SVG
element (tried: nothing of an inline ``<svg>`` reaches the page), so the bars are absolutely
placed links, positioned in percent of the axis: the figure scales with its container and
needs no JavaScript. Pure: analyses in, a string out (no Streamlit, no Plotly)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from turnscope.viewer.format import repeated_spans
from turnscope.viewer.timeline import (
    COLORS,
    SERIES_ORDER,
    Row,
    extent,
    failure_states,
    hover_lines,
    ms,
    origin_of,
    repeat_text,
    rows,
    run_level_errors,
    series_of,
)

if TYPE_CHECKING:
    from turnscope.analysis.verdict import Analysis
    from turnscope.records import SpanRecord

AXIS_TITLE = "ms since the run started"
TICKS = 5  # about this many labelled ticks
RUN_PATH = "run"  # relative, so the link keeps the server's baseUrlPath
# Classes rather than inline styles: one <style> block keeps the fragment small. Greys are
# translucent and text inherits, so the light and dark themes both read.
CSS = """
.tlh{font-size:.75rem;line-height:1.3;color:inherit}
.tlh a{color:inherit}
.tlh-legend{display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin-bottom:.4rem}
.tlh-key{display:inline-flex;align-items:center;gap:.35rem}
.tlh-sw{display:inline-block;width:.9rem;height:.6rem;border-radius:2px}
.tlh-ring{width:.7rem;height:.7rem;border:2px solid currentColor;border-radius:50%;
box-sizing:border-box}
.tlh-grid{display:grid;grid-template-columns:fit-content(40%) 1fr;margin-right:1.5rem}
.tlh-title{grid-column:1/-1;font-weight:600;font-size:.85rem;padding:.5rem 0 .15rem}
.tlh-label{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;text-align:right;
padding-right:.5rem;line-height:22px}
.tlh-track{position:relative;height:22px;border-left:1px solid rgba(128,128,128,.5);
border-right:1px solid rgba(128,128,128,.2);background-image:repeating-linear-gradient(
to right,rgba(128,128,128,.2) 0 1px,transparent 1px var(--tlh-step))}
.tlh-shade{background-color:rgba(242,169,0,.18)}
.tlh-bar{position:absolute;top:5px;height:12px;min-width:2px;border-radius:2px}
.tlh-bar:hover,.tlh-bar:focus-visible{outline:2px solid currentColor;z-index:1}
.tlh-rep{position:absolute;top:50%;width:12px;height:12px;margin:-6px 0 0 -6px;
border:2px solid currentColor;border-radius:50%;box-sizing:border-box;z-index:2}
.tlh-x{position:absolute;top:50%;transform:translate(-50%,-50%);font-weight:700;
font-size:.95rem;line-height:1;text-decoration:none;z-index:2}
.tlh-ticks{position:relative;height:1.3rem;border-top:1px solid rgba(128,128,128,.5)}
.tlh-ticks span{position:absolute;top:2px;transform:translateX(-50%);white-space:nowrap}
.tlh-axis{grid-column:2;text-align:center}
.tlh-muted{opacity:.7;font-style:italic;line-height:22px}
"""


@dataclass(frozen=True, slots=True)
class Panel:
    """One run's rows [start, end) under a title; ``shaded``: a row (index among all the
    run's rows) drawn with a tinted background."""

    title: str
    analysis: Analysis
    start: int = 0
    end: int | None = None
    shaded: int | None = None


@dataclass(frozen=True, slots=True)
class Mark:
    """One thing drawn on a row: a bar from ``start`` to ``end`` ms, or a marker at ``start``."""

    shape: str  # "bar", "repeat" (an open circle) or "error" (a cross)
    row: int  # among the panel's rows shown
    start: float
    end: float
    color: str
    series: str
    tip: list[str]
    href: str


def timeline_html(panels: Sequence[Panel]) -> str:
    """The panels stacked over one time axis, with a legend of what is drawn: one fragment."""
    laid = [(panel, *marks(panel)) for panel in panels]
    every = [m for _, _, found in laid for m in found]
    lo, hi, step = axis([v for m in every for v in (m.start, m.end)])
    parts = [_panel(p, shown, found, lo, hi) for p, shown, found in laid]
    return (
        f"<style>{CSS}</style>"
        f'<div class="tlh">{_legend({m.series for m in every})}'
        f'<div class="tlh-grid" style="--tlh-step:{100 * step / (hi - lo):.4f}%">'
        f"{''.join(parts)}{_ticks(lo, hi, step)}"
        f'<div class="tlh-axis">{escape(AXIS_TITLE)}</div></div></div>'
    )


def marks(panel: Panel) -> tuple[list[Row], list[Mark]]:
    """A panel's rows shown and everything drawn on them, in ms since its run started."""
    analysis = panel.analysis
    spans = analysis.structure.spans
    shown = rows(analysis)[panel.start : panel.end]
    origin = origin_of(spans)
    states = failure_states(analysis)
    repeats = repeated_spans(analysis)
    out = []
    for index, row in enumerate(shown):
        for span in row.spans:
            start, end = extent(span, origin, spans)
            series, color = series_of(span, states)
            lines = hover_lines(span, states.get(span.span_id), repeats.get(span.span_id))
            out.append(Mark("bar", index, start, end, color, series, lines, link(span)))
            if span.span_id in repeats:
                tip = [repeat_text(span, repeats[span.span_id])]
                series = "repeated identical call"
                out.append(Mark("repeat", index, end, end, "", series, tip, link(span)))
    if shown:  # run-level errors belong to no turn: on the last row shown, as Plotly had them
        for span, text in run_level_errors(analysis):
            at = ms(span.ended_at or span.started_at, origin)
            color = COLORS[states.get(span.span_id, "fatal")]
            last = len(shown) - 1
            out.append(Mark("error", last, at, at, color, "run-level error", [text], link(span)))
    return shown, out


def link(span: SpanRecord) -> str:
    """The run page with this span focused, relative to the current page."""
    return f"{RUN_PATH}?{urlencode({'trace_id': span.trace_id, 'span_id': span.span_id})}"


def axis(values: list[float]) -> tuple[float, float, float]:
    """The x range [lo, hi] and tick step: about TICKS round steps covering ``values``."""
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    raw = (high - low) / TICKS or 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if raw <= m * magnitude)
    lo = math.floor(low / step) * step
    hi = max(math.ceil(high / step) * step, lo + step)
    return lo, hi, step


def _panel(panel: Panel, shown: list[Row], found: list[Mark], lo: float, hi: float) -> str:
    out = [f'<div class="tlh-title">{escape(panel.title)}</div>']
    if not shown:
        out.append('<div></div><div class="tlh-muted">no turns recorded</div>')
    for index, row in enumerate(shown):
        shade = " tlh-shade" if panel.shaded == panel.start + index else ""
        label = escape(row.label)
        drawn = "".join(_mark(m, lo, hi) for m in found if m.row == index)
        out.append(
            f'<div class="tlh-label{shade}" title="{label}">{label}</div>'
            f'<div class="tlh-track{shade}">{drawn}</div>'
        )
    return "".join(out)


def _mark(mark: Mark, lo: float, hi: float) -> str:
    tip = "&#10;".join(escape(line) for line in mark.tip)  # a newline inside the attribute
    left = _pct(mark.start, lo, hi)
    head = f'<a href="{escape(mark.href)}" title="{tip}"'  # title: also its accessible name
    if mark.shape == "bar":
        width = _pct(lo + max(mark.end - mark.start, 0.0), lo, hi)
        style = f"left:{left}%;width:{width}%;background:{mark.color}"
        return f'{head} class="tlh-bar" style="{style}"></a>'
    if mark.shape == "repeat":
        return f'{head} class="tlh-rep" style="left:{left}%"></a>'
    return f'{head} class="tlh-x" style="left:{left}%;color:{mark.color}">✕</a>'


def _legend(series: set[str]) -> str:
    keys = []
    for name in sorted(series, key=SERIES_ORDER.index):
        if name == "repeated identical call":
            sample = '<span class="tlh-sw tlh-ring"></span>'
        elif name == "run-level error":
            sample = f'<span style="color:{COLORS["fatal"]};font-weight:700">✕</span>'
        else:
            sample = f'<span class="tlh-sw" style="background:{_series_color(name)}"></span>'
        keys.append(f'<span class="tlh-key">{sample}{escape(name)}</span>')
    return f'<div class="tlh-legend">{"".join(keys)}</div>'


def _series_color(series: str) -> str:
    # "fatal error" -> fatal, "running / never ended" -> running, "model" -> model
    return COLORS[series.split()[0]]


def _ticks(lo: float, hi: float, step: float) -> str:
    count = round((hi - lo) / step)
    digits = max(0, -math.floor(math.log10(step)))
    labels = []
    for k in range(count + 1):
        value = lo + k * step
        labels.append(f'<span style="left:{_pct(value, lo, hi)}%">{value:,.{digits}f}</span>')
    return f'<div></div><div class="tlh-ticks">{"".join(labels)}</div>'


def _pct(value: float, lo: float, hi: float) -> str:
    return f"{100 * (value - lo) / (hi - lo):.3f}"
