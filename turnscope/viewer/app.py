"""Entry script of the viewer (``streamlit run turnscope/viewer/app.py``; ``turnscope view``
does this). Importing it has no effect; Streamlit runs it as ``__main__``."""

from __future__ import annotations

from pathlib import Path

VIEWS = Path(__file__).with_name("views")
RUNS_PAGE = "views/runs.py"
RUN_PAGE = "views/run.py"
FAILURES_PAGE = "views/failures.py"
COMPARE_PAGE = "views/compare.py"
CONVERSATION_PAGE = "views/conversation.py"


def main() -> None:
    """Set up the page, the navigation and the sidebar, then run the selected page."""
    import streamlit as st

    from turnscope import __version__
    from turnscope.store.engine import redact
    from turnscope.viewer.access import gate
    from turnscope.viewer.data import db_url, jaeger_url

    st.set_page_config(page_title="turnscope", page_icon="🔭", layout="wide")
    gate()  # before anything reads the database: a visitor not let in gets a login prompt only
    pages = [
        st.Page(RUNS_PAGE, title="Runs", icon=":material/list:", url_path="runs", default=True),
        st.Page(FAILURES_PAGE, title="Failures", icon=":material/error:", url_path="failures"),
        # /compare?a=TRACE&b=TRACE: two runs aligned turn by turn
        st.Page(
            COMPARE_PAGE, title="Compare", icon=":material/compare_arrows:", url_path="compare"
        ),
        # reached by selecting a run or by a deep link: /run?trace_id=...&span_id=...
        st.Page(
            RUN_PAGE, title="Run", icon=":material/timeline:", url_path="run", visibility="hidden"
        ),
        # reached from a run page or the runs list: /conversation?id=...
        st.Page(
            CONVERSATION_PAGE,
            title="Conversation",
            icon=":material/forum:",
            url_path="conversation",
            visibility="hidden",
        ),
    ]
    page = st.navigation(pages, position="top")
    with st.sidebar:
        st.markdown("### :material/troubleshoot: turnscope")
        st.caption(f"Database: `{redact(db_url())}` (read-only)")
        jaeger = jaeger_url()
        if jaeger:
            st.caption(f"Jaeger: {jaeger}")
        st.caption(f"turnscope {__version__}")
    page.run()


if __name__ == "__main__":
    main()
