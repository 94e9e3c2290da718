"""The conversation page (Streamlit runs this file; the code is in
turnscope.viewer.conversation_page)."""

from turnscope.viewer.conversation_page import render

render()
