"""Page scripts Streamlit runs (one line each: the code lives in turnscope.viewer)."""
