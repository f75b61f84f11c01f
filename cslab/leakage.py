"""The leakage guard: account attributes enter the models only if plausibly known before churn.

A CRM export nearly always carries columns written *at or after* churn: a status, a churn reason, a
cancellation date, the CS team's current health score, the last login, a CSM cleared when the account
left. Given to a model as features they predict churn perfectly, because they record it, and the report
would present them as the strongest churn "drivers". Every account attribute is screened twice:

1. **by name**: a column whose name says it is written at or after churn (``status``, anything
   ``churn``/``cancel``/``end``/``terminat``, ``reason``, ``health``, ``last_*``, a renewal
   outcome, ``is_active``) is left out;
2. **by what it knows**: an attribute that on its own separates accounts that have churned from those
   still active almost perfectly (single-feature ROC AUC >= ``max_auc``, 0.95 by default; text
   categories scored out of fold so that a unique id-like value cannot look predictive), or a category
   of at least ``min_category`` accounts holding nearly only churners (>= ``max_category_share``, and
   at least 25 points above what its accounts' signup years lead to expect, so that a legacy plan of
   old accounts is not mistaken for a churn record), is left out.

``include`` keeps a column whatever the screen says; ``exclude`` drops one whatever it says. In
snapshot mode (one row per customer) the same screen runs against the churn flag, and attributes that
are mostly the tenure in disguise (absolute correlation with the duration column >= 0.9, e.g. total
charges = tenure x price) are left out too: the tenure is the time of churn itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from cslab.data.panel import label_missing
from cslab.data.roles import snake

__all__ = [
    "AttributeScreen",
    "account_status",
    "screen_attributes",
    "screen_snapshot",
    "leaky_name",
    "account_attributes",
    "parse_columns",
    "NOT_ATTRIBUTES",
]

#: Columns of ``accounts`` that are identifiers or dates of record, never model features.
NOT_ATTRIBUTES = frozenset({"account_id", "name", "csm_id", "signup_date"})

# Words that, as a whole word of a column's snake-case name, say it is written at or after churn.
_AFTER_CHURN_WORDS = {
    "status",
    "churn",
    "churned",
    "churning",
    "churns",
    "cancel",
    "cancelled",
    "canceled",
    "cancellation",
    "cancelation",
    "cancellations",
    "cancels",
    "end",
    "ended",
    "ends",
    "ending",
    "termination",
    "terminated",
    "terminate",
    "reason",
    "reasons",
    "health",
    "healthscore",
    "lost",
    "closed",
    "deactivated",
    "deactivation",
    "deleted",
    "offboarded",
    "offboarding",
    "attrition",
    "winback",
    "last",
    "renewed",
    "downgraded",
}
_WHOLE_NAMES = {"active", "is_active", "inactive", "is_inactive", "is_churned", "churned_flag"}
_RENEWAL_WORDS = {"outcome", "result", "decision", "status"}


def leaky_name(column: str) -> str | None:
    """Why a column's name says it is written at or after churn, or None.

    Examples
    --------
    >>> leaky_name("Churn Reason"), leaky_name("last_login_date"), leaky_name("industry")
    ("its name says it is written at or after churn ('churn')", "its name says it is written at or after churn ('last')", None)
    """
    name = snake(column)
    words = name.split("_")
    if name in _WHOLE_NAMES:
        return f"its name says it is written at or after churn ('{name}')"
    if "renewal" in words and _RENEWAL_WORDS & set(words):
        return "its name says it is a renewal outcome, known only at renewal"
    hit = next((w for w in words if w in _AFTER_CHURN_WORDS), None)
    if hit is None:
        hit = next((w for w in words for stem in ("churn", "cancel", "terminat") if w.startswith(stem)), None)
    return f"its name says it is written at or after churn ('{hit}')" if hit else None


def parse_columns(text: str | Iterable[str] | None) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (parameters such as ``include_attributes``)."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    return [str(i).strip() for i in items if str(i).strip()]


def account_attributes(columns: Iterable[str]) -> list[str]:
    """The columns of ``accounts`` that would become model features."""
    return [c for c in columns if c not in NOT_ATTRIBUTES]


@dataclass
class AttributeScreen:
    """The outcome of the screen: the attributes kept and those left out, each with its reason.

    Attributes
    ----------
    kept : list of str
    left_out : list of dict
        ``{"column", "reason", "auc"}`` (``auc`` None for a name rule), in the table's column order.
    screened : dict
        Column -> its single-feature AUC (every attribute the AUC screen saw).
    """

    kept: list[str] = field(default_factory=list)
    left_out: list[dict] = field(default_factory=list)
    screened: dict[str, float] = field(default_factory=dict)
    n_churned: int = 0
    n_accounts: int = 0

    @property
    def excluded(self) -> list[str]:
        return [item["column"] for item in self.left_out]

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` without the left-out columns (its ``attrs`` kept)."""
        out = frame.drop(columns=[c for c in self.excluded if c in frame.columns])
        out.attrs = dict(frame.attrs)
        out.attrs["left_out_attributes"] = self.records()
        return out

    def records(self) -> list[dict]:
        """The left-out columns as ``{"column", "reason"}`` (the ``results.json`` shape)."""
        return [{"column": item["column"], "reason": item["reason"]} for item in self.left_out]

    def summary(self) -> pd.DataFrame:
        """One row per left-out column: why, and how to keep it."""
        return pd.DataFrame(
            [
                {
                    "column": i["column"],
                    "why left out": i["reason"],
                    "to keep it": f"-p include_attributes={i['column']}",
                }
                for i in self.left_out
            ],
            columns=["column", "why left out", "to keep it"],
        )


def _as_number(values: pd.Series, as_of: pd.Timestamp | None) -> pd.Series | None:
    """Numbers as they are; text that is mostly dates as days before ``as_of``; else None."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    if pd.api.types.is_datetime64_any_dtype(values):
        dates = values
    else:
        text = values.dropna().astype(str)
        if not len(text) or not text.str.match(r"^\d{4}-\d{2}-\d{2}").mean() >= 0.9:
            return None
        dates = pd.to_datetime(values.astype("string").str[:10], errors="coerce", format="%Y-%m-%d")
    ref = as_of if as_of is not None else dates.max()
    return (ref - dates).dt.days.astype(float)


def _auc(label: np.ndarray, score: np.ndarray) -> float:
    """Single-feature AUC in either direction (0.5..1)."""
    if np.unique(label).size < 2 or np.unique(score).size < 2:
        return 0.5
    auc = roc_auc_score(label, score)
    return float(max(auc, 1 - auc))


def _numeric_auc(label: np.ndarray, x: pd.Series) -> float:
    """AUC of a number; a missing value is its own level (a blank cancellation date says a lot)."""
    values = x.to_numpy(dtype=float)
    missing = np.isnan(values)
    if missing.all():
        return 0.5
    if not missing.any():
        return _auc(label, values)
    # missing as below and as above every value: the better of the two orders
    low = np.where(missing, np.nanmin(values) - 1, values)
    high = np.where(missing, np.nanmax(values) + 1, values)
    return max(_auc(label, low), _auc(label, high))


def _category_auc(label: np.ndarray, x: pd.Series, folds: int = 5, seed: int = 0) -> float:
    """AUC of out-of-fold category churn rates, so that unique values (ids, free text) score 0.5."""
    keys = label_missing(x).astype(str).to_numpy()
    order = np.random.default_rng(seed).permutation(len(keys))
    fold = np.empty(len(keys), int)
    fold[order] = np.arange(len(keys)) % folds
    score = np.empty(len(keys))
    prior = label.mean()
    for k in range(folds):
        train = fold != k
        rates = pd.Series(label[train]).groupby(keys[train]).agg(["sum", "size"])
        smoothed = (rates["sum"] + prior) / (rates["size"] + 1)
        score[~train] = pd.Series(keys[~train]).map(smoothed).fillna(prior).to_numpy()
    return _auc(label, score)


def _churner_category(
    label: np.ndarray, x: pd.Series, min_category: int, share: float, expected: np.ndarray | None = None
) -> tuple[str, float, int] | None:
    """The largest category of at least ``min_category`` accounts with at least ``share`` churners,
    more than its accounts' age explains.

    ``expected`` is each account's churn share among the accounts that signed up in the same year:
    a category of the oldest accounts (a legacy plan) may hold nearly only churners because its
    accounts had years to leave, which records their age, not their churn. A category is flagged only
    when its churner share is at least 0.25 above what its accounts' signup years lead to expect.
    """
    keys = label_missing(x).astype(str).to_numpy()
    if expected is None:
        expected = np.full(len(label), label.mean())
    table = (
        pd.DataFrame({"label": label, "expected": expected})
        .groupby(keys)
        .agg(mean=("label", "mean"), size=("label", "size"), expected=("expected", "mean"))
    )
    table = table[
        (table["size"] >= min_category) & (table["mean"] >= share) & (table["mean"] - table["expected"] >= 0.25)
    ]
    if not len(table):
        return None
    top = table.sort_values("size", ascending=False)
    return str(top.index[0]), float(top["mean"].iloc[0]), int(top["size"].iloc[0])


def _screen(
    frame: pd.DataFrame,
    label: np.ndarray,
    attributes: list[str],
    include: list[str],
    exclude: list[str],
    max_auc: float,
    min_category: int,
    max_category_share: float,
    as_of: pd.Timestamp | None,
    expected: np.ndarray | None = None,
) -> AttributeScreen:
    out = AttributeScreen(n_churned=int(label.sum()), n_accounts=len(label))
    for column in attributes:
        if column in include:
            out.kept.append(column)
            continue
        if column in exclude:
            out.left_out.append({"column": column, "reason": "left out by exclude_attributes", "auc": None})
            continue
        reason = leaky_name(column)
        if reason:
            out.left_out.append({"column": column, "reason": reason, "auc": None})
            continue
        values = frame[column]
        number = _as_number(values, as_of)
        auc = _numeric_auc(label, number) if number is not None else _category_auc(label, values)
        out.screened[column] = auc
        if auc >= max_auc:
            out.left_out.append(
                {
                    "column": column,
                    "auc": auc,
                    "reason": f"on its own it separates churned from retained accounts almost "
                    f"perfectly (AUC {auc:.2f})",
                }
            )
            continue
        if number is None or number.nunique() <= 10:  # text, flags and codes alike
            hit = _churner_category(label, values, min_category, max_category_share, expected)
            if hit:
                value, share, n = hit
                out.left_out.append(
                    {
                        "column": column,
                        "auc": auc,
                        "reason": f"its value '{value}' holds nearly only churned accounts ({share:.0%} of {n})",
                    }
                )
                continue
        out.kept.append(column)
    return out


def account_status(panel: pd.DataFrame) -> pd.DataFrame:
    """The last panel row of every account that ever paid, with ``churned``: not paying in the
    panel's last month.

    Examples
    --------
    >>> account_status(cslab.panel(data))["churned"].mean()  # doctest: +SKIP
    """
    ever = panel.loc[panel["active"], "account_id"].unique()
    final = (
        panel[panel["account_id"].isin(ever)]
        .sort_values("month", kind="stable")
        .drop_duplicates("account_id", keep="last")
        .reset_index(drop=True)
    )
    return final.assign(churned=~(final["active"] & final["month"].eq(panel["month"].max())))


def screen_attributes(
    panel: pd.DataFrame,
    attributes: Iterable[str] | None = None,
    *,
    include: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    max_auc: float = 0.95,
    min_category: int = 10,
    max_category_share: float = 0.95,
) -> AttributeScreen:
    """Screen the account attributes of a monthly panel for leakage.

    Each account is one observation: churned (not active in the panel's last month after having
    paid) or retained. The screen uses only data up to the panel's ``as_of``.

    Parameters
    ----------
    panel : DataFrame
        :func:`cslab.panel`, whose columns include the ``accounts`` attributes.
    attributes : iterable of str, optional
        The columns to screen; default: every column the panel took from ``accounts`` (its
        ``attrs["account_columns"]``) but the identifiers (:data:`NOT_ATTRIBUTES`).
    include, exclude : str or iterable of str
        Columns kept / left out whatever the screen says (``"a,b"`` or a list).
    max_auc : float, default 0.95
        Left out from this single-feature ROC AUC on.
    min_category, max_category_share : int, float
        A category of at least ``min_category`` accounts with at least this share of churners is
        left out (it records churn).

    Returns
    -------
    AttributeScreen

    Examples
    --------
    >>> screen = screen_attributes(cslab.panel(data))  # doctest: +SKIP
    >>> screen.summary()  # doctest: +SKIP
    >>> monthly = screen.apply(monthly)  # doctest: +SKIP
    """
    include, exclude = parse_columns(include), parse_columns(exclude)
    if attributes is None:
        attributes = account_attributes(panel.attrs.get("account_columns", ()))
    attributes = [c for c in attributes if c in panel.columns]
    final = account_status(panel)
    label = final["churned"].to_numpy().astype(int)
    as_of = panel.attrs.get("as_of")
    # the churn share of each account's signup year: what its age alone leads to expect
    year = final["cohort_month"].dt.year.fillna(0).to_numpy()
    expected = pd.Series(label).groupby(year).transform("mean").to_numpy()
    return _screen(
        final.reset_index(drop=True),
        label,
        attributes,
        include,
        exclude,
        max_auc,
        min_category,
        max_category_share,
        pd.Timestamp(as_of) if as_of is not None else None,
        expected,
    )


def screen_snapshot(
    customers: pd.DataFrame,
    *,
    include=None,
    exclude=None,
    max_auc: float = 0.95,
    min_category: int = 10,
    max_category_share: float = 0.95,
    max_duration_correlation: float = 0.9,
) -> AttributeScreen:
    """The same screen on a one-row-per-customer table (``event``, optional ``duration``).

    Attributes that are mostly the duration in disguise (absolute Pearson correlation with
    ``duration`` >= ``max_duration_correlation``; e.g. total charges = tenure x price) are left out
    too: the duration of a churned customer is the time of its churn.

    Examples
    --------
    >>> screen_snapshot(data.customers).summary()  # doctest: +SKIP
    """
    include, exclude = parse_columns(include), parse_columns(exclude)
    attributes = [c for c in customers.columns if c not in {"account_id", "event", "duration", "name"}]
    label = customers["event"].astype(int).to_numpy()
    out = _screen(
        customers.reset_index(drop=True),
        label,
        attributes,
        include,
        exclude,
        max_auc,
        min_category,
        max_category_share,
        None,
    )
    if "duration" in customers:
        duration = customers["duration"].astype(float)
        for column in list(out.kept):
            number = _as_number(customers[column], None)
            if column in include or number is None or number.nunique() < 3:
                continue
            r = number.corr(duration)
            if pd.notna(r) and abs(r) >= max_duration_correlation:
                out.kept.remove(column)
                out.left_out.append(
                    {
                        "column": column,
                        "auc": out.screened.get(column),
                        "reason": f"mostly the tenure in disguise (correlation {r:.2f} with the duration column)",
                    }
                )
    return out
