"""Event logs: one row per event (account, timestamp, event type) into the contract's usage table.

A product analytics export (Segment, Mixpanel, Amplitude, a warehouse query) is long: one row per
event. The kit's ``usage`` table is long too, but per account, day and metric: the events are
counted per account, day (or week) and event type, which becomes the metric.

Examples
--------
>>> from cslab.importers import import_source
>>> import_source("events", "events.csv", "data/client", grain="week")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cslab.importers.common import ImportOutcome, normalise_header, pick

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
    frame = _read(path)
    chosen = {}
    for role, given, names, option in (
        ("account id", account_col, ACCOUNT_NAMES, "--account-col"),
        ("timestamp", time_col, TIME_NAMES, "--time-col"),
        ("event type", event_col, EVENT_NAMES, "--event-col"),
    ):
        column = normalise_header(given) if given else pick(frame, *names)
        if column is None or column not in frame.columns:
            what = (
                f"no column {given!r}" if given else f"no {role} column found (looked for {', '.join(names[:5])}, ...)"
            )
            outcome.problem(f"{what}: give {option}")
        chosen[role] = column
    if not outcome.ok:
        return None
    raw = frame.attrs["raw_names"]
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
        return None
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
    types = usage["metric"].unique()
    outcome.note("mapped", f"events -> {len(usage):,} usage rows (account x {grain} x event type)", len(frame))
    outcome.note(
        "mapped",
        f"event types -> metrics ({', '.join(sorted(types)[:6])}{', ...' if len(types) > 6 else ''}); "
        "value = number of events",
        len(types),
    )
    outcome.note(
        "assumed",
        f"columns: account {raw[chosen['account id']]}, time {raw[chosen['timestamp']]}, "
        f"event {raw[chosen['event type']]}; times in UTC (zones converted)"
        + ("; weeks run Monday to Sunday, dated on their Monday" if grain == "week" else ""),
    )
    return usage
