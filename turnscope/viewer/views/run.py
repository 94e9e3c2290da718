"""The run page (Streamlit runs this file; the code is in turnscope.viewer.run_page)."""

from turnscope.viewer.run_page import render

render()
