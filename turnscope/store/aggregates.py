"""The aggregate read model: headline figures, percentiles, time buckets and failure groups.

``Aggregates`` is a mixin of ``turnscope.store.queries.Store``: it groups and counts in SQL
over the same runs the Store lists, so it reuses the Store's effective status (liveness) and
its filter (``_where``) instead of restating them.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, case, cast, func, literal_column, select
from sqlalchemy.engine import Engine

from turnscope.records import INCOMPLETE, RUNNING, STATUSES
from turnscope.store.convert import from_db_time, iso_time
from turnscope.store.models import Run
from turnscope.store.runfilter import RunFilter, selected

if TYPE_CHECKING:
    from sqlalchemy import Select


class Aggregates:
    """Figures, charts and failure groups over the runs a ``RunFilter`` selects.

    Mixed into ``Store``, which provides the engine, the dialect, the effective status,
    category and reason of a run, ``_from_runs`` and ``_where``.
    """

    engine: Engine
    dialect: str

    if TYPE_CHECKING:  # provided by Store

        def _effective_status(self, now: datetime) -> Any: ...
        def _effective_category(self, status: Any) -> Any: ...
        def _effective_reason(self, status: Any) -> Any: ...
        def _from_runs(self, *columns: Any) -> Select[Any]: ...
        def _where(self, query: Select[Any], status: Any, flt: RunFilter) -> Select[Any]: ...

    # -- headline figures ---------------------------------------------------------------------

    def summary(self, flt: RunFilter | None = None) -> dict[str, Any]:
        """Headline figures of the matching runs, computed in SQL: counts by status, failure
        rate (failed and incomplete among runs that ended), tokens, p50/p95 duration and the
        first and last start time."""
        flt = flt or RunFilter()
        now = datetime.now(timezone.utc)
        status = self._effective_status(now)
        counts = [func.count()]
        counts += [func.sum(case((status == s, 1), else_=0)) for s in STATUSES]
        query = self._from_runs(
            *counts,
            func.coalesce(func.sum(Run.input_tokens), 0),
            func.coalesce(func.sum(Run.output_tokens), 0),
            func.min(Run.started_at),
            func.max(Run.started_at),
            func.count(Run.duration_ms),
        )
        with self.engine.connect() as conn:
            row = conn.execute(self._where(query, status, flt)).one()
            total = int(row[0])
            by_status = {s: int(row[1 + i] or 0) for i, s in enumerate(STATUSES)}
            timed = int(row[-1] or 0)
            p50, p95 = self._percentiles(conn, status, flt, (0.5, 0.95), timed)
        ended = total - by_status[RUNNING]
        failures = by_status["failed"] + by_status[INCOMPLETE]
        first, last = row[-3], row[-2]
        return {
            "runs": total,
            **by_status,
            "failure_rate": failures / ended if ended else None,
            "input_tokens": int(row[-5]),
            "output_tokens": int(row[-4]),
            "tokens": int(row[-5]) + int(row[-4]),
            "p50_ms": p50,
            "p95_ms": p95,
            "first_started": iso_time(first),
            "last_started": iso_time(last),
        }

    def _percentiles(
        self, conn: Any, status: Any, flt: RunFilter, points: tuple[float, ...], n: int
    ) -> list[float | None]:
        """Nearest-rank percentiles of duration_ms among the ``n`` matching runs that have
        one. Unfiltered, the k-th value is read through ix_runs_duration (no sort); with
        filters, one pass with window functions (SQLite 3.25+ and PostgreSQL alike)."""
        if n <= 0:
            return [None for _ in points]
        ranks = [int(p * (n - 1)) for p in points]
        if flt == RunFilter():
            values = []
            for rank in ranks:
                # from the nearer end of the index: an offset walks it (p95 of 1,000,000 runs
                # read 950,000 entries from the low end, 50,000 from the high end)
                high = rank > (n - 1) // 2
                query = (
                    select(Run.duration_ms)
                    .where(Run.duration_ms.is_not(None))
                    .order_by(Run.duration_ms.desc() if high else Run.duration_ms)
                    .limit(1)
                    .offset(n - 1 - rank if high else rank)
                )
                values.append(conn.execute(query).scalar())
            return [float(v) if v is not None else None for v in values]
        inner = self._where(
            self._from_runs(
                Run.duration_ms.label("d"),
                func.row_number().over(order_by=Run.duration_ms).label("rn"),
            ).where(Run.duration_ms.is_not(None)),
            status,
            flt,
        ).subquery()
        query = select(inner.c.rn, inner.c.d).where(inner.c.rn.in_([r + 1 for r in ranks]))
        found = {int(r.rn): float(r.d) for r in conn.execute(query)}
        return [found.get(rank + 1) for rank in ranks]

    # -- charts and failure groups ------------------------------------------------------------

    def _epoch(self, column: Any) -> Any:
        if self.dialect == "postgresql":
            return func.extract("epoch", column)
        return cast(func.strftime("%s", column), Integer)

    def _bucket(self, size: int) -> Any:
        # the size is one of BUCKET_SIZES (never user input), inlined so GROUP BY sees a plain
        # expression
        if self.dialect == "postgresql":
            return self._epoch(Run.started_at) // literal_column(str(int(size)))
        # SQLite: integer "/" is integer division; SQLAlchemy's "//" would need FLOOR(), which
        # SQLite builds without math functions lack
        return literal_column(
            f"CAST(strftime('%s', runs.started_at) AS INTEGER) / {int(size)}", Integer
        )

    def time_buckets(
        self, flt: RunFilter | None = None, *, bucket_seconds: int | None = None
    ) -> dict[str, Any]:
        """Runs per time bucket and outcome (a failure's category, else its status), for the
        runs-over-time chart. The bucket size is picked from the range unless given."""
        flt = flt or RunFilter()
        now = datetime.now(timezone.utc)
        status = self._effective_status(now)
        size = bucket_seconds or self._bucket_size(flt, status)
        series = case(
            (status.in_(("failed", INCOMPLETE)), self._effective_category(status)),
            else_=status,
        )
        inner = (
            self._where(
                self._from_runs(self._bucket(size).label("bucket"), series.label("series")),
                status,
                flt,
            )
            .where(Run.started_at.is_not(None))
            .subquery("b")
        )
        query = (
            select(inner.c.bucket, inner.c.series, func.count())
            .group_by(inner.c.bucket, inner.c.series)
            .order_by(inner.c.bucket)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        points = [
            {
                "start": datetime.fromtimestamp(int(b) * size, timezone.utc).isoformat(),
                "series": s or "unknown",
                "runs": int(n),
            }
            for b, s, n in rows
        ]
        return {"bucket_seconds": size, "points": points}

    def _bucket_size(self, flt: RunFilter, status: Any) -> int:
        first, last = flt.since, flt.until or flt.as_of
        if first is None or last is None:
            bounds = (func.min(Run.started_at), func.max(Run.started_at))
            if selected(flt.status) or selected(flt.category):
                query = self._where(self._from_runs(*bounds), status, flt)
            else:
                # no status: runs alone, so PostgreSQL reads both ends of ix_runs_started_at
                # (with the join to processes it scanned every run)
                query = self._where(select(*bounds).select_from(Run), status, flt)
            with self.engine.connect() as conn:
                lo, hi = conn.execute(query).one()
            first = first or from_db_time(lo)
            last = last or from_db_time(hi)
        return bucket_size(first, last)

    def _message_key(self) -> Any:
        """The failure-group message: the first error (or the verdict message), with ids and
        numbers masked, so "card declined (code 51)" and "... (code 05)" group together."""
        source = func.coalesce(Run.first_error, Run.message, Run.exception, "")
        if self.dialect == "sqlite":
            return func.turnscope_message_key(source)
        if self.dialect == "postgresql":
            # stored by the database when the run is written (migration 0008): the same
            # expression as below, which cost ~50 us a run at read time
            return literal_column("runs.message_key")
        expr = source
        for pattern, replacement in MESSAGE_RULES:
            expr = func.regexp_replace(expr, pattern, replacement, "g")
        return func.substr(func.btrim(expr, " "), 1, MESSAGE_KEY_CHARS)

    def failure_groups(
        self, flt: RunFilter | None = None, *, limit: int = 50, examples: int = 3
    ) -> dict[str, Any]:
        """Failed and incomplete runs grouped by (category, reason, failing agent, failing
        tool, normalised message), biggest first, with share, first/last seen, a trend over time
        buckets and the newest example runs. Grouped by (group, bucket) in SQL, summed here."""
        flt = flt or RunFilter()
        if not selected(flt.status):
            flt = replace(flt, status=["failed", INCOMPLETE])
        now = datetime.now(timezone.utc)
        status = self._effective_status(now)
        size = self._bucket_size(flt, status)
        # one derived table with the group keys; every query below groups its plain columns
        f = (
            self._where(
                self._from_runs(
                    self._effective_category(status).label("category"),
                    self._effective_reason(status).label("reason"),
                    Run.failing_agent.label("agent"),
                    Run.failing_tool.label("tool"),
                    self._message_key().label("message"),
                    self._bucket(size).label("bucket"),
                    Run.trace_id,
                    Run.started_at,
                ),
                status,
                flt,
            )
            .where(Run.started_at.is_not(None))
            .subquery("f")
        )
        keys = [f.c[k] for k in GROUP_KEYS]
        # one pass counts every (group, bucket): the groups, their trends and the totals are
        # summed from it in Python. Joining the top groups back to the runs (their keys may be
        # NULL, so IS NOT DISTINCT FROM, which no hash join answers) compared every failed run
        # with every group: seconds at 150,000 failed runs.
        cells = select(
            *keys,
            f.c.bucket,
            func.count(),
            func.min(f.c.started_at),
            func.max(f.c.started_at),
        ).group_by(*keys, f.c.bucket)
        rank = func.row_number().over(
            partition_by=keys, order_by=[f.c.started_at.desc(), f.c.trace_id]
        )
        ranked = select(*keys, f.c.trace_id, rank.label("rank")).subquery("r")
        example_q = (
            select(*(ranked.c[k] for k in GROUP_KEYS), ranked.c.trace_id)
            .where(ranked.c.rank <= examples)
            .order_by(ranked.c.rank)
        )
        n_keys = len(GROUP_KEYS)
        found: dict[tuple[Any, ...], list[Any]] = {}  # key -> [runs, first, last, {bucket: n}]
        with self.engine.connect() as conn:
            for row in conn.execute(cells):
                group_key, bucket = tuple(row[:n_keys]), int(row[n_keys])
                runs, first_seen, last_seen = int(row[n_keys + 1]), row[n_keys + 2], row[n_keys + 3]
                entry = found.get(group_key)
                if entry is None:
                    found[group_key] = [runs, first_seen, last_seen, {bucket: runs}]
                    continue
                entry[0] += runs
                entry[1] = min(entry[1], first_seen)
                entry[2] = max(entry[2], last_seen)
                entry[3][bucket] = runs
            example_rows = conn.execute(example_q).all() if found else []
        total = sum(entry[0] for entry in found.values())
        buckets = [b for entry in found.values() for b in entry[3]]
        first_bucket = min(buckets) if buckets else 0
        n_buckets = max(buckets) - first_bucket + 1 if buckets else 0
        # biggest first, then by the keys (missing values last, as PostgreSQL sorts them)
        top = sorted(
            found,
            key=lambda k: (-found[k][0], *((v is None, v or "") for v in k)),
        )[:limit]
        samples: dict[tuple[Any, ...], list[str]] = {}
        for row in example_rows:
            samples.setdefault(tuple(row[:n_keys]), []).append(row[n_keys])
        out = []
        for group_key in top:
            runs, first_seen, last_seen, counts = found[group_key]
            trend = [0] * n_buckets
            for bucket, n in counts.items():
                trend[bucket - first_bucket] = n
            out.append(
                {
                    **dict(zip(GROUP_KEYS, group_key, strict=True)),
                    "runs": runs,
                    "share": runs / total if total else 0.0,
                    "first_seen": iso_time(first_seen),
                    "last_seen": iso_time(last_seen),
                    "trend": trend,
                    "examples": samples.get(group_key, []),
                }
            )
        first = datetime.fromtimestamp(first_bucket * size, timezone.utc) if n_buckets else None
        return {
            "total": total,
            "groups": out,
            "bucket_seconds": size,
            "first_bucket": first.isoformat() if first else None,
        }


# --- helpers -----------------------------------------------------------------------------------

GROUP_KEYS = ("category", "reason", "agent", "tool", "message")
MESSAGE_KEY_CHARS = 160
# the same rules in Python (SQLite function) and PostgreSQL (regexp_replace): only syntax both
# regex engines read the same way (no \b, no lookaround). Ids (8+ hex digits) first, then
# numbers that start a word ("code 51", "20s", "(3)") but not names like "gpt-4o" or "v2".
MESSAGE_RULES = (
    ("[0-9a-fA-F]{8,}(-[0-9a-fA-F]{4,})*", "<id>"),
    ("(^|[^A-Za-z0-9_.-])[0-9]+([.,:][0-9]+)*", "\\1#"),
    ("[ \t\r\n]+", " "),
)
_MESSAGE_RES = tuple((re.compile(p), r) for p, r in MESSAGE_RULES)
BUCKET_SIZES = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)


def message_key(text: str | None) -> str:
    """A failure message with ids and numbers masked (the failure-group key)."""
    value = text or ""
    for pattern, replacement in _MESSAGE_RES:
        value = pattern.sub(replacement, value)
    return value.strip(" ")[:MESSAGE_KEY_CHARS]


def bucket_size(first: datetime | None, last: datetime | None, buckets: int = 60) -> int:
    """The smallest bucket (seconds) that covers ``first``..``last`` in about ``buckets``."""
    if first is None or last is None:
        return 3600
    span = max(0.0, (last - first).total_seconds())
    for size in BUCKET_SIZES:
        if span / size <= buckets:
            return size
    return BUCKET_SIZES[-1]


def register_sqlite_functions(dbapi_conn: Any, _record: Any) -> None:
    """Give a SQLite connection ``turnscope_message_key`` (the failure-group key in SQL)."""
    dbapi_conn.create_function("turnscope_message_key", 1, message_key, deterministic=True)
