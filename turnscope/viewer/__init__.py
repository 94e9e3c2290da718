"""The Streamlit viewer: browse runs, follow a run turn by turn, see why runs fail.

Start it with ``turnscope view``. The entry script is ``turnscope/viewer/app.py``; the pages
live in ``turnscope/viewer/pages/`` and call into the modules here. Only this package imports
streamlit, pandas and plotly (the ``turnscope[viewer]`` extra); the exporter never does.
"""
