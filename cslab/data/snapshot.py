"""Snapshot mode: one flat table, one row per customer (an id, a churn flag, a tenure, attributes).

Many analysts hold only such an export. Its columns are standardised to ``account_id``, ``event``
(1 = churned) and ``duration`` (periods observed), every other column kept as an attribute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cslab.data.contract import parse_numbers
from cslab.data.io import CSData
from cslab.data.reading import _read_table
from cslab.data.validation import ValidationReport
from cslab.errors import DataValidationError

__all__ = ["load_customers", "parse_event"]

_TRUE = {"1", "1.0", "true", "yes", "y", "t", "churned", "churn"}
_FALSE = {"0", "0.0", "false", "no", "n", "f", "active", "retained"}


def parse_event(values: pd.Series) -> pd.Series:
    """Churn flags written as 0/1, booleans or Yes/No/True/False text, as a nullable 0/1 column.

    Examples
    --------
    >>> parse_event(pd.Series(["Yes", "no", "1.0", True, "maybe"])).tolist()
    [1, 0, 1, 1, <NA>]
    """
    text = values.map(lambda v: str(v).strip().lower() if pd.notna(v) else "")
    return pd.Series(
        pd.array([1 if t in _TRUE else 0 if t in _FALSE else pd.NA for t in text], dtype="Int64"),
        index=values.index,
    )


def load_customers(
    path: str | Path, id_col: str | None = None, event_col: str = "churned", duration_col: str | None = None
) -> CSData:
    """Read a one-row-per-customer table (snapshot mode).

    Parameters
    ----------
    path : str or Path
        A CSV (``.csv``, ``.csv.gz``) or Parquet file.
    id_col : str, optional
        Column holding the customer id. Without one, row numbers (1, 2, ...) become the ids and
        the report says so.
    event_col : str
        The churn flag: 0/1, booleans, or Yes/No/True/False text.
    duration_col : str, optional
        Periods each customer was observed (tenure); needed for survival analysis.

    Returns
    -------
    CSData
        With ``customers`` holding ``account_id``, ``event``, ``duration`` (if given) and every
        other column; text columns that are numbers (with blanks) become numbers. ``notes`` lists
        every fix made.

    Raises
    ------
    DataValidationError
        When the file cannot be read, a named column is missing, or the event or duration column
        holds values that are not flags / non-negative numbers.

    Examples
    --------
    >>> data = load_customers("../shared/data/saas_churn_pysurvival.csv",
    ...                       event_col="churned", duration_col="months_active")  # doctest: +SKIP
    >>> data.customers[["account_id", "event", "duration"]].head(2)  # doctest: +SKIP
    """
    path = Path(path)
    report = ValidationReport(str(path))
    if not path.is_file():
        report.add(str(path), "does not exist" if not path.exists() else "is not a file")
        raise DataValidationError(report)
    raw, decimal_comma = _read_table(path, report, keep_lines=True)
    if raw is None or raw.empty:
        if raw is not None:
            report.add(path.name, "has a header but no data rows")
        raise DataValidationError(report)
    file = path.name
    for role, column in (("id", id_col), ("event", event_col), ("duration", duration_col)):
        if column is not None and column not in raw.columns:
            report.add(file, f"the {role} column is missing (columns: {', '.join(raw.columns[:12])})", column=column)
    if not report.ok:
        raise DataValidationError(report)

    frame = raw.copy()
    if id_col is None:
        frame.insert(0, "account_id", [str(i) for i in range(1, len(frame) + 1)])
        report.add(file, "has no id column: row numbers (1, 2, ...) are used as account ids", severity="fixed")
    else:
        ids = frame.pop(id_col).astype("string").str.strip()
        duplicated = ids.duplicated(keep=False) & ids.notna()
        if duplicated.any():
            report.add(file, "duplicate values", column=id_col, rows=duplicated[duplicated].index)
        blank = ids.isna() | ids.eq("")
        if blank.any():
            report.add(file, "empty", column=id_col, rows=blank[blank].index)
        frame.insert(0, "account_id", ids.astype(object))

    event = parse_event(frame.pop(event_col))
    bad = event.isna()
    if bad.any():
        report.add(file, "not a churn flag (expected 0/1, true/false or yes/no)", column=event_col, rows=bad[bad].index)
    frame.insert(1, "event", event)
    if duration_col is not None:
        duration = parse_numbers(frame.pop(duration_col), decimal_comma)
        bad = duration.isna() | (duration < 0)
        if bad.any():
            report.add(file, "missing, non-numeric or negative duration", column=duration_col, rows=bad[bad].index)
        frame.insert(2, "duration", duration)

    for column in frame.columns[(3 if duration_col else 2) :]:
        if pd.api.types.is_numeric_dtype(frame[column]):
            continue
        text = frame[column].astype("string").str.strip()
        filled = text.notna() & text.ne("")
        numbers = parse_numbers(text, decimal_comma)
        if filled.any() and numbers[filled].notna().all():
            n_blank = int((~filled).sum())
            frame[column] = numbers
            if n_blank and not pd.api.types.is_numeric_dtype(raw[column]):
                report.add(
                    file,
                    "numbers stored as text with blanks; read as numbers, blanks as missing",
                    column=column,
                    rows=(~filled)[~filled].index,
                    severity="fixed",
                )
        else:
            # np.nan, not pd.NA, for blanks: scikit-learn's imputers cannot compare pd.NA
            frame[column] = text.astype(object).where(filled, np.nan)
    if not report.ok:
        raise DataValidationError(report)
    frame["event"] = frame["event"].astype(int)
    frame = frame.reset_index(drop=True)  # the index held file lines for the report
    return CSData(customers=frame, source=str(path), report=report, notes=[p.format() for p in report.warnings])
