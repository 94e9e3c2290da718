"""The failures page (Streamlit runs this file; the code is in turnscope.viewer.failures_page)."""

from turnscope.viewer.failures_page import render

render()
