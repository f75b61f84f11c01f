"""The hand-made book of the metrics primer: ten accounts over six months, small enough for a pencil.

The book is written as a table of MRR by account and month (:data:`HAND_MRR`); :func:`hand_lines`
turns it into subscription lines of the data contract (a run of months at the same MRR is one line,
starting on the 1st and ending on the last day of its last month, the last paid day) and
:func:`write_hand_book` writes those lines, the accounts and a small ``cs_costs`` table as CSV, so
that the primer reads it with :func:`cslab.load` like any client export.

Examples
--------
>>> HAND_MRR.loc["E"].tolist()
[100, 100, 0, 0, 100, 100]
>>> hand_lines().query("account_id == 'E'")[["start_date", "end_date", "mrr"]].values.tolist()
[['2025-01-01', '2025-02-28', 100], ['2025-05-01', '', 100]]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

__all__ = ["HAND_MRR", "HAND_ACCOUNTS", "HAND_CS_COST", "HAND_AS_OF", "hand_lines", "write_hand_book"]

_MONTHS = pd.date_range("2025-01-01", periods=6, freq="MS")
#: MRR of each account in each month (0: not paying). The story of each row is in the primer.
HAND_MRR = pd.DataFrame(
    [
        [100, 100, 100, 100, 100, 100],  # A: flat
        [200, 200, 300, 300, 300, 300],  # B: expands in March
        [150, 150, 150, 0, 0, 0],  # C: last paid month March, churns in April
        [300, 300, 200, 200, 200, 200],  # D: contracts in March
        [100, 100, 0, 0, 100, 100],  # E: churns in March, comes back in May (reactivation)
        [50, 50, 50, 50, 50, 0],  # F: small, churns in June
        [0, 100, 100, 100, 150, 150],  # G: new in February, expands in May
        [0, 0, 200, 200, 0, 0],  # H: new in March, churns in May
        [0, 0, 0, 120, 120, 120],  # I: new in April
        [400, 400, 400, 400, 500, 500],
    ],  # J: the largest, expands in May
    index=pd.Index(list("ABCDEFGHIJ"), name="account_id"),
    columns=pd.Index([f"{m:%Y-%m}" for m in _MONTHS], name="month"),
)

#: Names and segments of the ten accounts.
HAND_ACCOUNTS = pd.DataFrame(
    {
        "account_id": list("ABCDEFGHIJ"),
        "name": [
            "Alder Bakery",
            "Birch Books",
            "Cedar Cafe",
            "Dune Dental",
            "Elm Electric",
            "Fern Florist",
            "Gale Gym",
            "Hazel Hotel",
            "Iris Insurance",
            "Juniper Joinery",
        ],
        "segment": ["SMB", "SMB", "SMB", "Mid-Market", "SMB", "SMB", "SMB", "Mid-Market", "SMB", "Mid-Market"],
    }
)
#: What customer success cost in each month of the hand book.
HAND_CS_COST = 200.0
#: The analysis date of the hand book: the end of its sixth month.
HAND_AS_OF = "2025-06-30"


def hand_lines() -> pd.DataFrame:
    """The hand book's subscription lines: one per run of months at the same MRR.

    Returns
    -------
    DataFrame
        ``account_id``, ``start_date``, ``end_date`` (empty: still running at the end of June)
        and ``mrr``, dates as ``YYYY-MM-DD`` text.

    Examples
    --------
    >>> len(hand_lines()), int(hand_lines()["mrr"].sum())
    (15, 2970)
    """
    rows = []
    last = len(_MONTHS) - 1
    for account, mrr in HAND_MRR.iterrows():
        values = mrr.tolist()
        k = 0
        while k <= last:
            if values[k] == 0:
                k += 1
                continue
            j = k
            while j < last and values[j + 1] == values[k]:
                j += 1
            end = "" if j == last else f"{_MONTHS[j] + pd.offsets.MonthEnd(0):%Y-%m-%d}"
            rows.append(
                {"account_id": account, "start_date": f"{_MONTHS[k]:%Y-%m-%d}", "end_date": end, "mrr": values[k]}
            )
            k = j + 1
    return pd.DataFrame(rows)


def write_hand_book(folder: str | Path | None = None) -> Path:
    """Write the hand book (``subscriptions.csv``, ``accounts.csv``, ``cs_costs.csv``) to ``folder``.

    Parameters
    ----------
    folder : str or Path, optional
        Created if needed; default a new temporary folder.

    Returns
    -------
    Path
        The folder, ready for :func:`cslab.load`.

    Examples
    --------
    >>> import cslab
    >>> data = cslab.load(write_hand_book())
    >>> len(data.subscriptions), len(data.accounts)
    (15, 10)
    """
    out = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="cslab-hand-book-"))
    out.mkdir(parents=True, exist_ok=True)
    hand_lines().to_csv(out / "subscriptions.csv", index=False)
    first = HAND_MRR.gt(0).idxmax(axis=1)
    accounts = HAND_ACCOUNTS.assign(signup_date=HAND_ACCOUNTS["account_id"].map(first) + "-01")
    accounts.to_csv(out / "accounts.csv", index=False)
    pd.DataFrame({"month": [f"{m:%Y-%m-%d}" for m in _MONTHS], "cost": HAND_CS_COST}).to_csv(
        out / "cs_costs.csv", index=False
    )
    return out
