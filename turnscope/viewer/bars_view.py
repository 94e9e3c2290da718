"""A stacked bar chart over time, drawn as plain SVG by a few lines of JavaScript.

Why not Altair (``st.altair_chart``): every runs page had to load and evaluate Vega-Lite's
JavaScript before its chart appeared, which made the page markedly slower to complete
(figures in benchmarks/README.md). The runs page needs stacked bars, axes, a legend, tooltips
and a click, which SVG gives directly. A click on a bar (or Enter or Space on a bar reached
with Tab) sends its bucket and series back to Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

_JS = """
const SVG = "http://www.w3.org/2000/svg";
const STEPS = [60e3, 300e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3,
               86400e3, 2 * 86400e3, 7 * 86400e3, 14 * 86400e3, 30 * 86400e3];

function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function niceStep(max, count, least) {
  const raw = Math.max(max, least) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return Math.max(least, step);
}

function timeLabel(ms, step) {
  // days as "Nov 24"; within a day the clock, and the date again at midnight
  const when = new Date(ms);
  const midnight = when.getHours() === 0 && when.getMinutes() === 0;
  if (step >= 86400e3 || midnight) {
    return when.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }
  const clock = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
  return when.toLocaleTimeString(undefined, clock);
}

function draw(box, data, setTriggerValue) {
  const width = Math.max(box.clientWidth || 0, 320);
  const height = data.height;
  const left = 48, right = 8, top = 8, bottom = 24;
  const plotW = width - left - right, plotH = height - top - bottom;
  const bars = data.bars;
  const x0 = Math.min(...bars.map((b) => b.start)), x1 = Math.max(...bars.map((b) => b.end));
  const totals = new Map();
  for (const b of bars) totals.set(b.start, (totals.get(b.start) || 0) + b.runs);
  const least = data.min_step || 1;  // counts step by whole runs; money by fractions
  const yStep = niceStep(Math.max(...totals.values()), 4, least);
  const yMax = Math.max(yStep, Math.ceil(Math.max(...totals.values()) / yStep) * yStep);
  const x = (t) => left + ((t - x0) / Math.max(x1 - x0, 1)) * plotW;
  const y = (v) => top + plotH - (v / yMax) * plotH;

  const svg = el("svg", { width, height, role: "img", "aria-label": data.title });
  const axes = el("g", { class: "axis" }, svg);
  for (let i = 0; i * yStep <= yMax * (1 + 1e-9); i += 1) {
    const v = i * yStep;
    el("line", { x1: left, x2: width - right, y1: y(v), y2: y(v) }, axes);
    el("text", { x: left - 6, y: y(v), "text-anchor": "end", dy: "0.32em" }, axes).textContent =
      (data.prefix || "") + (least < 1 ? String(parseFloat(v.toPrecision(3))) : v.toLocaleString());
  }
  const xStep = STEPS.find((s) => (x1 - x0) / s <= Math.max(2, Math.floor(plotW / 110))) ||
    STEPS[STEPS.length - 1];
  const offset = new Date(x0).getTimezoneOffset() * 60e3;  // ticks on local boundaries
  for (let t = Math.ceil((x0 - offset) / xStep) * xStep + offset; t <= x1; t += xStep) {
    // labels near an edge are anchored inside the chart, not cut off
    const anchor = x(t) < left + 30 ? "start" : x(t) > width - right - 30 ? "end" : "middle";
    el("text", { x: x(t), y: height - 6, "text-anchor": anchor }, axes).textContent =
      timeLabel(t, xStep);
  }
  const marks = el("g", { class: "marks" }, svg);
  const stacked = new Map();
  for (const b of bars) {  // bars arrive in stacking order within each bucket
    const below = stacked.get(b.start) || 0;
    stacked.set(b.start, below + b.runs);
    const rect = el("rect", {
      x: x(b.start),
      width: Math.max(1, x(b.end) - x(b.start) - 1),
      y: y(below + b.runs),
      height: Math.max(0.5, y(below) - y(below + b.runs)),
      fill: data.colors[b.series],
      "data-bucket": b.bucket,
      "data-series": b.series,
      tabindex: 0,  // reachable with Tab, chosen with Enter or Space, as a click would
      role: "button",
      "aria-label": b.tip,
    }, marks);
    el("title", {}, rect).textContent = b.tip;
    const choose = () => setTriggerValue("bar", { bucket: b.bucket, series: b.series });
    rect.addEventListener("click", choose);
    rect.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose();
      }
    });
  }
  box.replaceChildren(svg);
  const legend = document.createElement("div");
  legend.className = "legend";
  for (const [name, label] of data.legend) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = data.colors[name];
    item.append(swatch, label);
    legend.appendChild(item);
  }
  box.appendChild(legend);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let box = parentElement.querySelector(".turnscope-bars");
  if (!box) {
    box = document.createElement("div");
    box.className = "turnscope-bars";
    parentElement.appendChild(box);
  }
  let width = -1;
  const redraw = () => {
    if (box.clientWidth === width) return;
    width = box.clientWidth;
    draw(box, data, setTriggerValue);
  };
  draw(box, data, setTriggerValue);
  width = box.clientWidth;
  const observer = new ResizeObserver(redraw);
  observer.observe(box);
  return () => observer.disconnect();
}
"""

_CSS = """
.turnscope-bars { width: 100%; font-size: 12px; color: var(--st-text-color); }
.turnscope-bars svg { display: block; font-family: inherit; }
.turnscope-bars .axis line { stroke: var(--st-border-color, #ddd); stroke-width: 1; }
.turnscope-bars .axis text { fill: currentColor; opacity: 0.8; }
.turnscope-bars .marks rect { cursor: pointer; }
.turnscope-bars .marks rect:hover { opacity: 0.7; }
.turnscope-bars .marks rect:focus { outline: none; }
.turnscope-bars .marks rect:focus-visible { stroke: currentColor; stroke-width: 2; }
.turnscope-bars .legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 4px 0 0 48px; }
.turnscope-bars .legend i {
  display: inline-block; width: 10px; height: 10px; margin-right: 5px; border-radius: 2px;
}
"""

_component: Any = None


def _renderer() -> Any:
    global _component
    if _component is None:  # registered once per process, on first use
        _component = st.components.v2.component("turnscope.bars", js=_JS, css=_CSS)
    return _component


def bars_view(
    bars: list[dict[str, Any]],
    *,
    colors: dict[str, str],
    legend: list[tuple[str, str]],
    title: str,
    key: str,
    on_click: Callable[[str, str], None],
    height: int = 240,
    min_step: float = 1,
    prefix: str = "",
) -> None:
    """Stacked bars: each of ``bars`` has ``start`` and ``end`` (epoch ms), ``bucket`` (an id
    sent back on click), ``series``, ``runs`` and ``tip`` (the tooltip), in stacking order
    within a bucket. ``legend`` lists (series, label); clicking a bar calls
    ``on_click(bucket, series)``. ``runs`` may be another amount: ``min_step`` is the
    smallest axis step (fractions for money) and ``prefix`` goes before axis labels ("$")."""

    def clicked() -> None:
        value = getattr(st.session_state.get(key), "bar", None)
        if isinstance(value, dict) and value.get("bucket") and value.get("series"):
            on_click(str(value["bucket"]), str(value["series"]))

    _renderer()(
        key=key,
        data={
            "bars": bars,
            "colors": colors,
            "legend": [list(item) for item in legend],
            "title": title,
            "height": height,
            "min_step": min_step,
            "prefix": prefix,
        },
        on_bar_change=clicked,
    )
