"""The compare page (Streamlit runs this file; the code is in turnscope.viewer.compare_page)."""

from turnscope.viewer.compare_page import render

render()
