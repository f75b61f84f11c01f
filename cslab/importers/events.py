"""Event logs: one row per event (account, timestamp, event type) into the contract's usage table.

A product analytics export (Segment, Mixpanel, Amplitude, a warehouse query) is long: one row per
event. The kit's ``usage`` table is long too, but per account, day and metric: the events are
counted per account, day (or week) and event type, which becomes the metric.

A CSV or Parquet log (hundreds of millions of rows, a warehouse's unload) is checked and counted by
DuckDB where it lies, in one scan, never loaded into memory; a JSON export (nested properties
flattened one level) is read with pandas.

Examples
--------
>>> from cslab.importers import import_source
>>> import_source("events", "events.csv", "data/client", grain="week")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cslab import duck
from cslab.importers.common import MAX_EXAMPLES, ImportOutcome, normalise_header, pick

__all__ = ["read_events", "ACCOUNT_NAMES", "TIME_NAMES", "EVENT_NAMES"]

# Names an event log gives its columns (normalised), in order of preference. A user id is not an
# account id: a log with users only needs --account-col, never a silent guess.
ACCOUNT_NAMES = (
    "account_id", "account", "customer_id", "customer", "company_id", "organization_id", "org_id",
    "group_id", "tenant_id", "workspace_id", "properties_account_id", "context_groupid",
)  # fmt: skip
TIME_NAMES = (
    "timestamp", "event_time", "time", "occurred_at", "created_at", "datetime", "date", "ts",
    "properties_time", "original_timestamp", "received_at",
)  # fmt: skip
EVENT_NAMES = ("event_type", "event", "event_name", "type", "action", "name")


def _read(path: Path) -> pd.DataFrame:
    head = path.read_text(encoding="utf-8-sig", errors="replace")[:1].strip()
    if head in ("{", "["):  # JSON lines (Segment, Mixpanel): nested properties flattened one level
        import json

        with path.open(encoding="utf-8-sig") as handle:
            text = handle.read()
        try:
            records = json.loads(text)
            records = records if isinstance(records, list) else [records]
        except json.JSONDecodeError:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        frame = pd.json_normalize(records, sep="_", max_level=1).astype(str).replace({"nan": "", "None": ""})
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    raw = list(frame.columns)
    frame.columns = [normalise_header(c) for c in raw]
    frame.attrs["raw_names"] = dict(zip(frame.columns, raw))
    return frame


def _moments(text: pd.Series) -> pd.Series:
    """Timestamps as UTC without zone: ISO text, or Unix seconds / milliseconds."""
    numeric = pd.to_numeric(text, errors="coerce")
    out = pd.to_datetime(text.where(numeric.isna()), utc=True, errors="coerce", format="ISO8601")
    seconds = numeric.where(numeric <= 1e11)
    millis = numeric.where(numeric > 1e11)
    out = out.fillna(pd.to_datetime(seconds, unit="s", utc=True)).fillna(pd.to_datetime(millis, unit="ms", utc=True))
    return out.dt.tz_localize(None)


def _sql_text(path: Path) -> str | None:
    """DuckDB's relation of a CSV or Parquet log, every column as text; None for JSON."""
    quoted = str(path).replace("'", "''")
    if path.name.lower().endswith(".parquet") or path.is_dir():
        target = f"{quoted}/**/*.parquet" if path.is_dir() else quoted
        return f"read_parquet('{target}')"
    head = path.read_text(encoding="utf-8-sig", errors="replace")[:1].strip() if path.is_file() else ""
    if head in ("{", "["):
        return None
    return f"read_csv('{quoted}', header=true, all_varchar=true)"


def _count_in_duckdb(
    relation: str, outcome: ImportOutcome, grain: str, given: dict[str, str | None]
) -> tuple[pd.DataFrame | None, int, dict[str, str]]:
    """Check and count a CSV or Parquet log in DuckDB: one scan for the problems, one for the counts."""
    with duck.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        raw_names = [c for c in con.sql(f"SELECT * FROM {relation} LIMIT 0").columns]
        normal = {normalise_header(c): c for c in raw_names}
        chosen = _choose_columns(pd.DataFrame(columns=list(normal)), outcome, given)
        if not outcome.ok:
            return None, 0, {}
        raw = {role: normal[column] for role, column in chosen.items()}

        def text(role: str) -> str:
            name = raw[role].replace('"', '""')
            return f'trim(CAST("{name}" AS VARCHAR))'

        t = text("timestamp")
        number = f"TRY_CAST({t} AS DOUBLE)"
        # ISO text (a zone converted to UTC, none read as UTC), or Unix seconds / milliseconds
        moment = (
            f"CASE WHEN {number} IS NULL THEN timezone('UTC', TRY_CAST({t} AS TIMESTAMPTZ)) "
            f"WHEN {number} <= 1e11 THEN timezone('UTC', to_timestamp({number})) "
            f"ELSE timezone('UTC', to_timestamp({number} / 1000)) END"
        )
        rows = (
            f"SELECT row_number() OVER () AS line, {text('account id')} AS account_id, "
            f"{text('event type')} AS metric, {t} AS t, {moment} AS moment FROM {relation}"
        )
        checks = [
            ("account id", "empty account id", "coalesce(account_id, '') = ''"),
            ("event type", "empty event type", "coalesce(metric, '') = ''"),
            ("timestamp", "not a timestamp", "moment IS NULL AND coalesce(t, '') <> ''"),
            ("timestamp", "empty timestamp", "coalesce(t, '') = ''"),
        ]
        selects = ", ".join(
            f"count(*) FILTER (WHERE {cond}), min_by(line, line, {MAX_EXAMPLES}) FILTER (WHERE {cond})"
            for _, _, cond in checks
        )
        result = con.execute(f"WITH e AS ({rows}) SELECT count(*), {selects} FROM e").fetchone()
        n_events = int(result[0])
        for i, (role, message, _) in enumerate(checks):
            n, examples = result[1 + 2 * i], result[2 + 2 * i]
            if n:
                # a CSV's data lines start at line 2 (after the header); a Parquet file has row numbers
                offset = 1 if "read_csv" in relation else 0
                lines = [int(x) + offset for x in (examples or [])]
                outcome.problem(message, column=raw[role], lines=lines, n_rows=int(n))
        if not outcome.ok:
            return None, n_events, raw
        day = "CAST(moment AS DATE)"
        date = f"CAST(date_trunc('week', {day}) AS DATE)" if grain == "week" else day  # ISO weeks start Monday
        usage = con.execute(
            f"WITH e AS ({rows}) SELECT account_id, strftime({date}, '%Y-%m-%d') AS date, metric, "
            "count(*) AS value FROM e GROUP BY ALL ORDER BY ALL"
        ).df()
    return usage, n_events, raw


def _choose_columns(frame: pd.DataFrame, outcome: ImportOutcome, given: dict[str, str | None]) -> dict[str, str]:
    """The account, timestamp and event-type columns: given by option, else found by name."""
    chosen = {}
    for role, names, option in (
        ("account id", ACCOUNT_NAMES, "--account-col"),
        ("timestamp", TIME_NAMES, "--time-col"),
        ("event type", EVENT_NAMES, "--event-col"),
    ):
        column = normalise_header(given[role]) if given[role] else pick(frame, *names)
        if column is None or column not in frame.columns:
            what = (
                f"no column {given[role]!r}"
                if given[role]
                else f"no {role} column found (looked for {', '.join(names[:5])}, ...)"
            )
            outcome.problem(f"{what}: give {option}")
        chosen[role] = column
    return chosen


def read_events(
    path: Path,
    outcome: ImportOutcome,
    grain: str = "day",
    account_col: str | None = None,
    time_col: str | None = None,
    event_col: str | None = None,
) -> pd.DataFrame | None:
    """Count an event log's events per account, day (or week) and event type: the ``usage`` table.

    Parameters
    ----------
    grain : {"day", "week"}
        ``week`` counts Monday to Sunday and dates each count on its Monday.
    account_col, time_col, event_col : str, optional
        The columns, when their names are not among :data:`ACCOUNT_NAMES`, :data:`TIME_NAMES`,
        :data:`EVENT_NAMES`.

    Examples
    --------
    >>> usage = read_events(Path("events.csv"), ImportOutcome("events.csv"), grain="week")  # doctest: +SKIP
    >>> usage.columns.tolist()  # doctest: +SKIP
    ['account_id', 'date', 'metric', 'value']
    """
    if grain not in ("day", "week"):
        outcome.problem(f"--grain {grain!r}: use day or week")
        return None
    given = {"account id": account_col, "timestamp": time_col, "event type": event_col}
    relation = _sql_text(path)
    if relation is not None:
        usage, n_events, raw_chosen = _count_in_duckdb(relation, outcome, grain, given)
        if usage is None:
            return None
    else:
        usage, n_events, raw_chosen = _count_in_pandas(_read(path), outcome, grain, given)
        if usage is None:
            return None
    types = usage["metric"].unique()
    outcome.note("mapped", f"events -> {len(usage):,} usage rows (account x {grain} x event type)", n_events)
    outcome.note(
        "mapped",
        f"event types -> metrics ({', '.join(sorted(types)[:6])}{', ...' if len(types) > 6 else ''}); "
        "value = number of events",
        len(types),
    )
    outcome.note(
        "assumed",
        f"columns: account {raw_chosen['account id']}, time {raw_chosen['timestamp']}, "
        f"event {raw_chosen['event type']}; times in UTC (zones converted)"
        + ("; weeks run Monday to Sunday, dated on their Monday" if grain == "week" else ""),
    )
    return usage


def _count_in_pandas(
    frame: pd.DataFrame, outcome: ImportOutcome, grain: str, given: dict[str, str | None]
) -> tuple[pd.DataFrame | None, int, dict[str, str]]:
    """Check and count a JSON log read into memory (its nested properties flattened)."""
    chosen = _choose_columns(frame, outcome, given)
    if not outcome.ok:
        return None, 0, {}
    raw = frame.attrs["raw_names"]
    raw_chosen = {role: raw[column] for role, column in chosen.items()}
    account = frame[chosen["account id"]].astype(str).str.strip()
    event = frame[chosen["event type"]].astype(str).str.strip()
    text = frame[chosen["timestamp"]].astype(str).str.strip()
    moment = _moments(text)
    for bad, column, message in (
        (account.eq(""), chosen["account id"], "empty account id"),
        (event.eq(""), chosen["event type"], "empty event type"),
        (moment.isna() & text.ne(""), chosen["timestamp"], "not a timestamp"),
        (text.eq(""), chosen["timestamp"], "empty timestamp"),
    ):
        if bad.any():
            outcome.problem(message, column=raw[column], lines=(bad[bad].index + 2).tolist())
    if not outcome.ok:
        return None, len(frame), raw_chosen
    day = moment.dt.normalize()
    date = day - pd.to_timedelta(day.dt.weekday, unit="D") if grain == "week" else day
    usage = (
        pd.DataFrame({"account_id": account, "date": date, "metric": event})
        .groupby(["account_id", "date", "metric"], sort=True)
        .size()
        .rename("value")
        .reset_index()
    )
    usage["date"] = usage["date"].dt.strftime("%Y-%m-%d")
    return usage, len(frame), raw_chosen
