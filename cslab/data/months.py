"""Months, one convention for the whole kit: a month is the ``Timestamp`` of its first day.

``as_of`` everywhere means the same: ``None`` is the data's latest month; a date is the month it
falls in (see :func:`analysis_month`).

Examples
--------
>>> month_of("2024-03-17")
Timestamp('2024-03-01 00:00:00')
>>> month_start(month_index(pd.to_datetime(["2024-03-17"])))
DatetimeIndex(['2024-03-01'], dtype='datetime64[ns]', freq=None)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["month_of", "analysis_month", "month_index", "month_start"]


def month_of(value) -> pd.Timestamp:
    """The first day of the month a date falls in (the panel's ``month`` convention).

    Examples
    --------
    >>> month_of(pd.Timestamp("2024-02-29 13:00"))
    Timestamp('2024-02-01 00:00:00')
    """
    if pd.isna(value):  # the latest month of an empty frame
        return pd.NaT
    return pd.Timestamp(value).to_period("M").to_timestamp()


def analysis_month(frame: pd.DataFrame, as_of=None) -> pd.Timestamp:
    """The month an analysis looks at: the month of ``as_of``, else the frame's latest month.

    ``frame`` is a panel (its ``month`` column) or a feature table (its ``observation_date``).

    Examples
    --------
    >>> panel = pd.DataFrame({"month": pd.to_datetime(["2024-01-01", "2024-02-01"])})
    >>> analysis_month(panel), analysis_month(panel, as_of="2024-01-20")
    (Timestamp('2024-02-01 00:00:00'), Timestamp('2024-01-01 00:00:00'))
    """
    if as_of is not None:
        return month_of(as_of)
    dates = frame["month"] if "month" in frame else frame["observation_date"]
    return month_of(dates.max())


def month_index(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Months as integers (year * 12 + month - 1): arithmetic on months without calendars."""
    dates = pd.DatetimeIndex(dates)
    return (dates.year * 12 + dates.month - 1).to_numpy()


def month_start(index: np.ndarray) -> pd.DatetimeIndex:
    """Inverse of :func:`month_index`: the first day of each month (``NaT`` where NaN)."""
    index = np.asarray(index, dtype=float)
    out = np.full(index.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    valid = ~np.isnan(index)
    months = (index[valid] - 1970 * 12).astype(np.int64).astype("datetime64[M]")
    out[valid] = months.astype("datetime64[ns]")
    return pd.DatetimeIndex(out)
