"""The viewer's SQL (turnscope.store.queries): aggregates, time buckets, failure groups,
search, paging and the filter logic of the runs page, on the demo's real runs. Needs no
streamlit: it also runs on the old-SDK suite."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from support.viewer import demo_database

from turnscope.records import CATEGORIES
from turnscope.store.queries import (
    MESSAGE_RULES,
    RunFilter,
    Store,
    bucket_size,
    message_key,
)
from turnscope.viewer.filters import (
    DEFAULT_SORT,
    Filters,
    filter_key,
    group_params,
    run_filter_from_key,
)

FAILED = ["failed", "incomplete"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database."""
    return demo_database(tmp_path_factory)


@pytest.fixture(scope="module")
def store(db: Path) -> Store:
    """A read-only store on it."""
    return Store(str(db))


def _rows(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def test_summary_counts_match_the_rows(store: Store, db: Path) -> None:
    figures = store.summary()
    listed = store.list_runs(limit=1000)
    assert figures["runs"] == len(listed) == store.count_runs()
    by_status = {s: sum(1 for r in listed if r["status"] == s) for s in ("failed", "succeeded")}
    assert figures["failed"] == by_status["failed"]
    assert figures["succeeded"] == by_status["succeeded"]
    tokens = sum(r["input_tokens"] + r["output_tokens"] for r in listed)
    assert figures["tokens"] == tokens
    durations = sorted(r["duration_ms"] for r in listed if r["duration_ms"] is not None)
    # nearest rank, truncated: the same element Python picks
    assert figures["p50_ms"] == pytest.approx(durations[int(0.5 * (len(durations) - 1))])
    assert figures["p95_ms"] == pytest.approx(durations[int(0.95 * (len(durations) - 1))])
    # with a filter the percentiles come from a window query: same nearest rank
    failed = store.list_runs(RunFilter(status="failed"), limit=1000)
    durations = sorted(r["duration_ms"] for r in failed if r["duration_ms"] is not None)
    filtered = store.summary(RunFilter(status="failed"))
    assert filtered["p50_ms"] == pytest.approx(durations[int(0.5 * (len(durations) - 1))])
    assert filtered["p95_ms"] == pytest.approx(durations[int(0.95 * (len(durations) - 1))])
    ended = figures["runs"] - figures["running"]
    rate = (figures["failed"] + figures["incomplete"]) / ended
    assert figures["failure_rate"] == pytest.approx(rate)


def test_summary_of_nothing(store: Store) -> None:
    figures = store.summary(RunFilter(workflow="no such workflow"))
    assert figures["runs"] == 0
    assert figures["p50_ms"] is None and figures["failure_rate"] is None


def test_time_buckets_add_up_and_name_failures_by_category(store: Store) -> None:
    result = store.time_buckets()
    points = result["points"]
    assert sum(p["runs"] for p in points) == store.count_runs()
    size = result["bucket_seconds"]
    starts = {datetime.fromisoformat(p["start"]) for p in points}
    assert all(s.timestamp() % size == 0 for s in starts)  # whole buckets
    assert len(starts) <= 61
    assert len({(p["start"], p["series"]) for p in points}) == len(points)
    series = {p["series"] for p in points}
    assert "max_turns_exceeded" in series and "succeeded" in series
    assert "failed" not in series  # a failure is shown as its category
    hourly = store.time_buckets(bucket_seconds=3600)
    assert hourly["bucket_seconds"] == 3600
    assert sum(p["runs"] for p in hourly["points"]) == store.count_runs()


def test_a_killed_writer_reads_incomplete_at_once(db: Path, tmp_path: Path) -> None:
    """The demo's killed worker (os._exit mid-tool) with a heartbeat that is still fresh:
    lists and counts read its run ``incomplete`` from the pid at once, as the run page does,
    rather than ``running`` until the heartbeat goes stale (and they agree with each other)."""
    copy = tmp_path / "fresh.db"
    with sqlite3.connect(db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(" ", "microseconds")
    with sqlite3.connect(copy) as conn:
        changed = conn.execute(
            "update processes set heartbeat_at = ? where stopped_at is null", (now,)
        ).rowcount
    assert changed >= 1  # the killed child never marked itself stopped
    store = Store(str(copy))
    try:
        assert store.count_runs(RunFilter(status=["running"])) == 0
        runs = store.list_runs(RunFilter(workflow="Reporting"))
        assert [r["status"] for r in runs if r["category"] == "incomplete"] == ["incomplete"]
        groups = store.failure_groups()
        assert groups["total"] == store.count_runs(RunFilter(status=FAILED))
        assert any(g["category"] == "incomplete" for g in groups["groups"])
    finally:
        store.close()


def test_failure_groups_cover_every_failed_run(store: Store) -> None:
    result = store.failure_groups()
    groups = result["groups"]
    failed = store.count_runs(RunFilter(status=FAILED))
    assert result["total"] == failed
    assert sum(g["runs"] for g in groups) == failed
    assert sum(g["share"] for g in groups) == pytest.approx(1.0)
    assert {g["category"] for g in groups} <= set(CATEGORIES)
    counts = [g["runs"] for g in groups]
    assert counts == sorted(counts, reverse=True)
    assert 1 <= len(groups[0]["trend"]) <= 61
    for group in groups:
        assert sum(group["trend"]) == group["runs"]
        assert group["examples"] and group["first_seen"] <= group["last_seen"]
        # the runs page filter of a group lists exactly the group's runs
        flt = Filters.from_params(group_params(group)).to_run_filter()
        listed = store.list_runs(flt, limit=100)
        assert len(listed) == group["runs"], group
        assert set(group["examples"]) <= {r["trace_id"] for r in listed}


def test_failure_group_messages_mask_ids_and_numbers(store: Store) -> None:
    messages = {g["message"] for g in store.failure_groups()["groups"]}
    assert "Error running tool: card declined by issuer for # cents (code #)" in messages
    assert "Error getting response: Rate limit reached for gpt-4o: retry after #s" in messages


MESSAGE_KEY_CASES = [
    (
        "card declined by issuer for 8410 cents (code 51)",
        "card declined by issuer for # cents (code #)",
    ),
    (
        "Rate limit reached for gpt-4o: retry after 20s",
        "Rate limit reached for gpt-4o: retry after #s",
    ),
    ("Max turns (3) exceeded", "Max turns (#) exceeded"),
    ("timed out after 0.25 seconds", "timed out after # seconds"),
    ("span_3f868d6e29a441e485fb67d9 failed", "span_<id> failed"),
    ("  two\n lines \t", "two lines"),
    (None, ""),
]


@pytest.mark.parametrize(("text", "key"), MESSAGE_KEY_CASES)
def test_message_key(text: str | None, key: str) -> None:
    assert message_key(text) == key


@pytest.mark.postgres
def test_postgres_stores_the_same_message_key(pg_url: str) -> None:
    """Migration 0008's generated column spells the key as message_key() does."""
    from sqlalchemy import text as sql

    from turnscope.store.engine import make_writer_engine, upgrade

    engine = make_writer_engine(pg_url)
    upgrade(engine)
    texts = [t for t, _key in MESSAGE_KEY_CASES] + ["x" * 200, "id 0123abcd-1234-5678 ok"]
    with engine.begin() as conn:
        for n, text in enumerate(texts):
            conn.execute(
                sql(
                    "INSERT INTO runs (trace_id, status, turns, span_count, error_count, "
                    "fatal_error_count, recovered_error_count, tool_calls, model_calls, "
                    "input_tokens, output_tokens, trace_ended, truncated, dropped_spans, "
                    "first_error) VALUES (:id, 'failed', 0, 0, 0, 0, 0, 0, 0, 0, 0, true, false, "
                    "0, :text)"
                ),
                {"id": f"trace_{n}", "text": text},
            )
        stored = dict(conn.execute(sql("SELECT trace_id, message_key FROM runs")).all())
    engine.dispose()
    assert [stored[f"trace_{n}"] for n in range(len(texts))] == [message_key(t) for t in texts]
    flt = RunFilter(message=message_key(texts[0]))
    store = Store(pg_url)
    try:
        assert store.count_runs(flt) == 1
    finally:
        store.close()


def test_message_rules_are_plain_posix_regexes() -> None:
    # the same rules run as PostgreSQL regexp_replace: no Python-only syntax
    for pattern, _ in MESSAGE_RULES:
        assert "\\b" not in pattern and "(?" not in pattern and "\\d" not in pattern


def test_statuses_and_categories_take_several_values(store: Store) -> None:
    both = store.count_runs(RunFilter(status=["failed", "succeeded"]))
    assert both == store.count_runs(RunFilter(status="failed")) + store.count_runs(
        RunFilter(status="succeeded")
    )
    cats = ["tool_error", "model_error"]
    assert store.count_runs(RunFilter(category=cats)) == sum(
        store.count_runs(RunFilter(category=c)) for c in cats
    )


def test_killed_run_reads_as_incomplete_in_category_filters(store: Store, db: Path) -> None:
    killed = _rows(db, "select trace_id from runs where status = 'running'")
    assert killed, "the demo records a killed process"
    # the writer is gone: once its heartbeat is stale the run is incomplete everywhere
    later = datetime.now(timezone.utc) + timedelta(minutes=5)
    status = store._effective_status(later)
    from turnscope.store.models import Run

    query = store._where(store._from_runs(Run.trace_id), status, RunFilter(category="incomplete"))
    with store.engine.connect() as conn:
        found = {r[0] for r in conn.execute(query)}
    assert {k[0] for k in killed} <= found


def test_orders(store: Store) -> None:
    failures_first = store.list_runs(order="failures", limit=100)
    ranks = [0 if r["status"] == "failed" else 1 for r in failures_first]
    assert ranks == sorted(ranks)
    slowest = [r["duration_ms"] for r in store.list_runs(order="slowest", limit=100)]
    known = [d for d in slowest if d is not None]
    assert known == sorted(known, reverse=True)
    newest = [r["started_at"] for r in store.list_runs(order="newest", limit=100)]
    assert newest == sorted(newest, reverse=True)
    with pytest.raises(ValueError, match="unknown order"):
        store.list_runs(order="random()")


def test_paging_is_disjoint_and_complete(store: Store) -> None:
    total = store.count_runs()
    seen: list[str] = []
    for offset in range(0, total, 6):
        seen += [r["trace_id"] for r in store.list_runs(limit=6, offset=offset, order="failures")]
    assert len(seen) == len(set(seen)) == total


def test_snapshot_hides_later_runs_and_counts_them(store: Store) -> None:
    runs = store.list_runs(order="oldest", limit=100)
    middle = datetime.fromisoformat(runs[len(runs) // 2]["started_at"])
    shown = store.count_runs(RunFilter(as_of=middle))
    later = store.count_newer(RunFilter(as_of=middle), middle)
    assert shown + later == len(runs)
    assert later == sum(1 for r in runs if datetime.fromisoformat(r["started_at"]) > middle)
    assert store.latest_start() == max(datetime.fromisoformat(r["started_at"]) for r in runs)


def test_search_finds_tool_arguments_outputs_and_model_text(store: Store, db: Path) -> None:
    # a tool argument and a tool output, each in exactly one span of the demo
    for text in ("refund policy EU", "Related: 'Refund policy'"):
        ids, complete = store.search_trace_ids(text)
        expected = _rows(
            db,
            "select distinct trace_id from spans where instr(data, ?) > 0",
            text,
        )
        assert complete and set(ids) == {r[0] for r in expected} and ids, text
        assert store.count_runs(RunFilter(search=text)) == len(ids)
    # model text (what a model said), case-insensitively
    ids, _ = store.search_trace_ids("VOICI")
    assert len(ids) == 1
    assert store.get_run(ids[0])["workflow"] == "Translation"
    # an error message
    ids, _ = store.search_trace_ids("card declined")
    assert [store.get_run(i)["category"] for i in ids] == ["tool_error"]


def test_search_limit_reports_more(store: Store) -> None:
    ids, complete = store.search_trace_ids("trace_", limit=3)
    assert len(ids) == 3 and not complete


def test_search_quotes_and_backslashes_match_only_themselves(store: Store) -> None:
    # tool arguments are stored JSON-escaped ({\"query\": ...}); a search for a quote finds
    # values with a quote, a backslash finds nothing (no value contains one)
    assert store.search_trace_ids('"query": "refund policy EU"')[0]
    assert store.search_trace_ids("\\")[0] == []
    assert store.search_trace_ids("%")[0] == []


def test_agent_and_tool_filters(store: Store, db: Path) -> None:
    expected = _rows(
        db, "select distinct trace_id from spans where kind = 'agent' and name = 'Billing'"
    )
    billing = store.list_runs(RunFilter(agent="Billing"), limit=100)
    assert {r["trace_id"] for r in billing} >= {r[0] for r in expected}
    called = _rows(db, "select distinct trace_id from spans where tool_name = 'search_docs'")
    assert {r["trace_id"] for r in store.list_runs(RunFilter(tool="search_docs"))} == {
        r[0] for r in called
    }
    assert "Billing" in store.agent_names() and "search_docs" in store.tool_names()


def test_data_versions_change_only_with_writes(store: Store, db: Path) -> None:
    version = store.data_version()
    assert version == store.data_version()
    assert version[1] == store.count_runs()
    trace_id = store.list_runs(limit=1)[0]["trace_id"]
    assert store.run_version(trace_id)[2] is not None
    assert store.run_version("trace_nope") == (None, 0, None)


def test_viewer_never_writes(db: Path) -> None:
    before = db.stat().st_mtime_ns
    store = Store(str(db))
    with pytest.raises(Exception, match=r"readonly"), store.engine.begin() as conn:
        conn.exec_driver_sql("delete from runs")
    store.close()
    assert db.stat().st_mtime_ns == before
    assert _rows(db, "select count(*) from runs")[0][0] > 0


INJECTIONS = ["' OR '1'='1", "'; DROP TABLE runs; --", "1) UNION SELECT 1 --", "%", "\\"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_through_the_new_filters(store: Store, value: str, db: Path) -> None:
    for field in ("failing_agent", "failing_tool", "failing_reason", "message"):
        assert store.count_runs(RunFilter(**{field: value})) == 0, field
    assert store.count_runs(RunFilter(trace_ids=[value])) == 0
    assert store.count_runs(RunFilter(status=[value, "x"], category=[value])) == 0
    assert store.count_runs(RunFilter(reason=[value])) == 0
    assert store.summary(RunFilter(agent=value))["runs"] == 0
    assert store.failure_groups(RunFilter(tool=value))["groups"] == []
    assert store.time_buckets(RunFilter(workflow=value))["points"] == []
    assert store.search_trace_ids(value)[0] == []
    assert _rows(db, "select count(*) from runs")[0][0] == store.count_runs()


# --- the runs page's URL <-> filter logic ----------------------------------------------------


def test_filters_round_trip_through_the_url() -> None:
    filters = Filters(
        status=["failed", "incomplete"],
        category=["tool_error"],
        reason=["rate_limited", "connect"],
        warnings=True,
        workflow="Checkout",
        agent="Billing",
        tool="charge_card",
        q="declined",
        range="custom",
        since="2h",
        until="2026-11-24T10:00",
        group_id="conv_1",
        sort="slowest",
        failing_agent="",
        failing_tool="charge_card",
        failing_reason="",
        msg="card declined (code #)",
    )
    assert Filters.from_params(filters.to_params()) == filters
    assert filters.to_params()["warnings"] == "true"  # what a checkbox bound to the URL writes
    flt = filters.to_run_filter()
    assert (flt.reason, flt.with_warnings, flt.failing_reason) == (
        ["rate_limited", "connect"],
        True,
        "",
    )
    assert Filters().to_params() == {}  # defaults stay out of the URL
    assert Filters.from_params({}).sort == DEFAULT_SORT


def test_filters_drop_unknown_values() -> None:
    filters = Filters.from_params(
        {"status": ["failed", "bogus"], "category": "nope", "range": "99y", "sort": "x"}
        | {"reason": ["timeout", "tool_error"], "warnings": "maybe"}
    )
    assert filters.status == ["failed"] and filters.category == []
    assert filters.reason == ["timeout"] and filters.warnings is False
    assert filters.range == "all" and filters.sort == DEFAULT_SORT


def test_time_windows() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
    assert Filters(range="24h").time_window(now) == (now - timedelta(hours=24), None)
    assert Filters(range="all").time_window(now) == (None, None)
    since, until = Filters(range="custom", since="30m", until="2026-11-24T11:45").time_window(now)
    assert since == now - timedelta(minutes=30)
    assert until == datetime(2026, 11, 24, 11, 45, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="cannot read time"):
        Filters(range="custom", since="yesterday-ish").time_window(now)
    # a custom range left empty means all time
    assert Filters(range="custom").time_window(now) == (None, None)


def test_search_ids_replace_the_text_search() -> None:
    filters = Filters(q="declined")
    assert filters.to_run_filter().search == "declined"
    flt = filters.to_run_filter(trace_ids=["trace_a"])
    assert flt.search is None and flt.trace_ids == ["trace_a"]


def test_filter_keys_are_stable_and_reversible() -> None:
    flt = Filters(status=["failed"], range="7d").to_run_filter(
        as_of=datetime(2026, 11, 24, tzinfo=timezone.utc)
    )
    key = filter_key(flt)
    assert hash(key) == hash(filter_key(flt))
    assert run_filter_from_key(key) == flt


def test_group_params_select_none_explicitly() -> None:
    params = group_params(
        {"category": "model_error", "agent": "Writer", "tool": None, "message": "x"}
    )
    assert params["failing_tool"] == "" and params["failing_agent"] == "Writer"
    assert params["status"] == FAILED and params["category"] == ["model_error"]
    assert params["failing_reason"] == ""  # a group without a reason: runs without one
    params = group_params({"category": "model_error", "reason": "rate_limited", "message": "x"})
    assert params["failing_reason"] == "rate_limited" and "reason" not in params


@pytest.mark.parametrize(
    ("hours", "size"), [(0, 60), (0.5, 60), (5, 300), (24, 1800), (24 * 7, 3 * 3600)]
)
def test_bucket_size(hours: float, size: int) -> None:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert bucket_size(start, start + timedelta(hours=hours)) == size


# --- PostgreSQL: the same SQL, the same answers --------------------------------------------------


@pytest.mark.postgres
def test_viewer_queries_on_postgres(pg_url: str, store: Store) -> None:
    from turnscope.demo.runner import run_demo

    assert run_demo(pg_url, progress=False).ok
    pg = Store(pg_url)
    figures, local = pg.summary(), store.summary()
    for key in ("runs", "failed", "succeeded", "succeeded_with_errors", "tokens"):
        assert figures[key] == local[key], key
    assert figures["p50_ms"] is not None and figures["p95_ms"] >= figures["p50_ms"]
    assert sum(p["runs"] for p in pg.time_buckets()["points"]) == figures["runs"]
    groups = pg.failure_groups()

    def keys(result: dict[str, Any]) -> list[tuple[Any, ...]]:
        # the killed run turns incomplete once its writer's heartbeat is 30 s stale: when
        # depends on the test's timing, so it is left out of the comparison
        found = [
            (g["category"], g["agent"], g["tool"], g["message"], g["runs"])
            for g in result["groups"]
            if g["category"] != "incomplete"
        ]
        return sorted(found, key=str)

    # the message key is computed by regexp_replace on PostgreSQL and by Python on SQLite
    assert keys(groups) == keys(store.failure_groups())
    for group in groups["groups"]:
        flt = Filters.from_params(group_params(group)).to_run_filter()
        assert pg.count_runs(flt) == group["runs"]
        assert sum(group["trend"]) == group["runs"]
    for text in ("refund policy EU", "VOICI", "card declined"):
        assert len(pg.search_trace_ids(text)[0]) == len(store.search_trace_ids(text)[0]), text
    assert pg.search_trace_ids("\\")[0] == []
    assert [r["status"] for r in pg.list_runs(order="failures", limit=3)] == ["failed"] * 3
    assert pg.agent_names() == store.agent_names()
    assert pg.data_version()[1] == figures["runs"]
