"""A Plotly figure drawn by plotly.js's *basic* bundle, which the viewer serves itself.

Why not ``st.plotly_chart``: it loads a 4.7 MB chunk holding all of plotly.js, and Chromium
spends about a second evaluating it before the first chart of a tab appears — most of the
time it took to open a run page by deep link. The turn timeline needs bars and markers
only, which the basic bundle (1.2 MB, ~0.15 s to evaluate) draws identically. It is
``plotly.js-basic-dist-min`` 4.1.1 (MIT, see ``static/PLOTLY-LICENSE``), the plotly.js
version plotly.py 6 generates figures for; ``turnscope view`` serves it from ``static/``
(``server.enableStaticServing``); without it the figure goes through ``st.plotly_chart``.

A click on a bar or marker sends its ``customdata`` (a span id) back to Python.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import streamlit as st

PLOTLY_JS = "plotly-basic.min.js"

# Loads the bundle once per page: every chart (and the preload) waits for the same promise.
_LOADER = """
function loadPlotly(src) {
  if (!window.__turnscopePlotly) {
    window.__turnscopePlotly = new Promise((resolve, reject) => {
      if (window.Plotly) { resolve(window.Plotly); return; }
      const script = document.createElement("script");
      script.src = src;
      script.async = true;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        window.__turnscopePlotly = undefined;
        reject(new Error("could not load " + src));
      };
      document.head.appendChild(script);
    });
  }
  return window.__turnscopePlotly;
}
"""

# Draws with Plotly.react (cheap redraws on reruns) in Streamlit's font and theme colours
# (light or dark).
_JS = (
    _LOADER
    + """
export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let box = parentElement.querySelector(".turnscope-plot");
  if (!box) {
    box = document.createElement("div");
    box.className = "turnscope-plot";
    parentElement.appendChild(box);
  }
  const figure = JSON.parse(data.figure);
  const style = getComputedStyle(box);
  const text = style.getPropertyValue("--st-text-color").trim() || undefined;
  const grid = style.getPropertyValue("--st-border-color").trim() || undefined;
  // black marks (repeat circles, the focused bar's outline) take the theme's text colour
  const ink = (c) => (text && (c === "#000" || c === "#000000") ? text : c);
  for (const trace of figure.data || []) {
    const marker = trace.marker;
    if (!marker) continue;
    if (typeof marker.color === "string") marker.color = ink(marker.color);
    const line = marker.line;
    if (line) line.color = Array.isArray(line.color) ? line.color.map(ink) : ink(line.color);
  }
  const layout = figure.layout || {};
  const axis = (a) => Object.assign({}, a, grid ? { gridcolor: grid, zerolinecolor: grid } : {});
  figure.layout = Object.assign({}, layout, {
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: Object.assign({}, layout.font, { family: style.fontFamily }, text ? { color: text } : {}),
    xaxis: axis(layout.xaxis),
    yaxis: axis(layout.yaxis),
  });
  let live = true;
  loadPlotly(data.src)
    .then((Plotly) => {
      if (!live) return;
      if (box.hasAttribute("data-error")) {  // drawn after an earlier failure: start clean
        box.removeAttribute("data-error");
        box.textContent = "";
      }
      return Plotly.react(box, figure.data, figure.layout, data.config).then(() => {
        if (box.removeAllListeners) box.removeAllListeners("plotly_click");
        box.on("plotly_click", (event) => {
          const point = event && event.points && event.points[0];
          if (point && point.customdata != null) setTriggerValue("click", String(point.customdata));
        });
      });
    })
    .catch((error) => {
      box.setAttribute("data-error", "true");
      box.textContent = "The chart could not be drawn (" + error.message + ").";
    });
  return () => { live = false; };
}
"""
)

_CSS = """
.turnscope-plot { width: 100%; }
.turnscope-plot[data-error] { color: var(--st-red-color, #d62728); padding: 0.5rem 0; }
"""

_component: Any = None


def static_url(name: str) -> str:
    """URL path of a file in the viewer's ``static/`` folder (honours server.baseUrlPath)."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/app/static/{name}" if base else f"/app/static/{name}"


def _renderer() -> Any:
    global _component
    if _component is None:  # registered once per process, on first use
        # not style-isolated: plotly.js styles its charts from a stylesheet in the page head
        _component = st.components.v2.component(
            "turnscope.plotly", js=_JS, css=_CSS, isolate_styles=False
        )
    return _component


def static_serving() -> bool:
    """Whether this server serves ``static/`` (``turnscope view`` turns it on)."""
    return bool(st.get_option("server.enableStaticServing"))


def plotly_view(
    figure_json: str,
    *,
    key: str,
    on_click: Callable[[str], None],
    config: dict[str, Any] | None = None,
) -> None:
    """Draw a Plotly figure (its ``to_json()``); clicking a point calls ``on_click`` with the
    point's ``customdata``. Falls back to ``st.plotly_chart`` (slower to load, same figure)
    when the app runs without static serving, e.g. under a bare ``streamlit run``."""
    if not static_serving():
        _plotly_chart(figure_json, key=key, on_click=on_click, config=config)
        return

    def clicked() -> None:
        value = getattr(st.session_state.get(key), "click", None)
        if isinstance(value, str) and value:
            on_click(value)

    _renderer()(
        key=key,
        data={"figure": figure_json, "src": static_url(PLOTLY_JS), "config": config or {}},
        on_click_change=clicked,
    )


def _plotly_chart(
    figure_json: str,
    *,
    key: str,
    on_click: Callable[[str], None],
    config: dict[str, Any] | None,
) -> None:
    figure = json.loads(figure_json)
    ids = [list(trace.get("customdata") or []) for trace in figure.get("data", [])]

    def selected() -> None:
        event = st.session_state.get(key) or {}
        points = (event.get("selection") or {}).get("points") or []
        if not points:
            return
        curve, index = points[0].get("curve_number"), points[0].get("point_index")
        if curve is not None and index is not None and curve < len(ids) and index < len(ids[curve]):
            on_click(str(ids[curve][index]))

    st.plotly_chart(
        figure, key=key, on_select=selected, selection_mode="points", config=config or {}
    )


def preload_plotly() -> None:
    """Start fetching and evaluating plotly.js early. Measured on a deep link: this script
    runs as the page's elements are drawn, ~0.4 s before the chart component's own code
    (which waits for Streamlit's component library), so plotly.js is ready when it mounts."""
    if not static_serving():
        return  # st.plotly_chart brings its own plotly.js
    src = json.dumps(static_url(PLOTLY_JS))
    st.html(
        f"<script>{_LOADER}loadPlotly({src}).catch(() => {{}});</script>",
        unsafe_allow_javascript=True,
    )
