"""The runs page (Streamlit runs this file; the code is in turnscope.viewer.runs_page)."""

from turnscope.viewer.runs_page import render

render()
