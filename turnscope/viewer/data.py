"""The viewer's access to the store: one read-only Store per database, cached queries keyed by
a cheap data version so new writes are seen on the next rerun and nothing is queried twice."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from turnscope.store.engine import ENV_DB, StoreError, resolve_url
from turnscope.store.queries import RunFilter, Store
from turnscope.viewer.filters import filter_key, run_filter_from_key

ENV_JAEGER = "TURNSCOPE_JAEGER_URL"
SEARCH_LIMIT = 5000  # matches kept as ids; beyond that the search runs inside each query


def db_url() -> str:
    """The database the viewer was started on (``turnscope view`` passes it in the
    environment, never on a command line a shell would read)."""
    return resolve_url(os.environ.get(ENV_DB) or None)


def jaeger_url() -> str | None:
    """Base URL of a Jaeger UI holding the same traces, if configured."""
    value = (os.environ.get(ENV_JAEGER) or "").strip()
    return value or None


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    # one Store (engine + pool) per database for all sessions; it is thread-safe because every
    # query opens its own short-lived connection (SQLite connections allow other threads)
    return Store(url)


def open_store() -> Store:
    """The store, or a clear message on the page (missing or foreign database) and stop."""
    url = db_url()
    try:
        return _store(url)
    except StoreError as exc:
        st.error(f"**Cannot open the database.** {exc}", icon=":material/error:")
        st.caption(
            "Start the viewer on a turnscope database: `turnscope view --db PATH` "
            "(record runs with `turnscope.instrument()`, or try `turnscope demo`)."
        )
        st.stop()
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        st.error(f"**Cannot read the database.** {reason}", icon=":material/error:")
        st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def fail(exc: Exception) -> None:
    """Report a database error that happened while drawing a page, then stop."""
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    st.error(f"**Cannot read the database.** {reason}", icon=":material/error:")
    st.stop()


def version(store: Store) -> tuple[str | None, int]:
    """The data version the cached queries below are keyed by."""
    return store.data_version()


# --- cached queries (arguments are hashable keys; the store is looked up by URL) ---------------


@st.cache_data(show_spinner=False, max_entries=64)
def list_runs(
    url: str, ver: Any, key: tuple[Any, ...], limit: int, offset: int, order: str
) -> list[dict[str, Any]]:
    """One page of runs."""
    return _store(url).list_runs(run_filter_from_key(key), limit=limit, offset=offset, order=order)


@st.cache_data(show_spinner=False, max_entries=64)
def summary(url: str, ver: Any, key: tuple[Any, ...]) -> dict[str, Any]:
    """Headline figures."""
    return _store(url).summary(run_filter_from_key(key))


@st.cache_data(show_spinner=False, max_entries=64)
def time_buckets(url: str, ver: Any, key: tuple[Any, ...]) -> dict[str, Any]:
    """Runs over time by outcome."""
    return _store(url).time_buckets(run_filter_from_key(key))


@st.cache_data(show_spinner=False, max_entries=32)
def failure_groups(url: str, ver: Any, key: tuple[Any, ...], limit: int) -> dict[str, Any]:
    """Failure groups."""
    return _store(url).failure_groups(run_filter_from_key(key), limit=limit)


@st.cache_data(show_spinner=False, max_entries=32)
def search_ids(url: str, ver: Any, text: str) -> tuple[list[str], bool]:
    """Trace ids matching a text search (one pass over the spans per search and version)."""
    return _store(url).search_trace_ids(text, limit=SEARCH_LIMIT)


@st.cache_data(show_spinner=False, ttl=60, max_entries=8)
def menus(url: str) -> dict[str, list[str]]:
    """Values for the filter menus (refreshed every minute)."""
    store = _store(url)
    return {
        "workflow": store.distinct("workflow"),
        "agent": store.agent_names(),
        "tool": store.tool_names(),
    }


@st.cache_data(show_spinner=False, max_entries=16)
def run_detail(url: str, trace_id: str, ver: Any) -> tuple[dict[str, Any] | None, Any]:
    """A run's row and its recomputed analysis (turns, verdict, failures, loops)."""
    store = _store(url)
    run = store.get_run(trace_id)
    if run is None:
        return None, None
    return run, store.analysis(trace_id)


def keyed(flt: RunFilter) -> tuple[Any, ...]:
    """Cache key of a filter."""
    return filter_key(flt)
