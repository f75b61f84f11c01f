"""The ranked expansion pipeline: active accounts by expected expansion ARR, with what to do about each.

* :func:`opportunities`: probability x sized uplift, the churn model's health band and an action
  (red accounts are stabilised, never pushed).

Analyses only: nothing here reads files, draws or prints. :mod:`cslab.expansion` re-exports
:func:`opportunities`, :data:`EXPANSION_COLUMNS` and :data:`STABILISE`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["opportunities", "EXPANSION_COLUMNS", "STABILISE"]

#: The action of every red-band account: grow only what is healthy.
STABILISE = "stabilise before expanding"

#: Columns of :func:`opportunities` (``name``, ``segment``, ``plan`` and ``csm_id`` when known):
#:
#: * ``account_id``, ``name``, ``segment``, ``plan``, ``csm_id``: who, and who looks after it;
#: * ``arr``: current ARR (12 x MRR on the analysis date);
#: * ``probability``: probability of at least one expansion within the model's horizon;
#: * ``expected_uplift_arr``: ARR one expansion would add, sized to the account: the median relative
#:   uplift of comparable expansions x its ARR, capped by its seat headroom (:func:`expected_uplift`);
#: * ``expected_expansion_arr``: probability x expected uplift, the ranking key;
#: * ``health_band``: the churn model's band (red / yellow / green, :func:`cslab.drivers.health_scores`);
#: * ``action``: "stabilise before expanding" for every red account, else "expand" when the
#:   probability reaches ``min_probability``, else "nurture";
#: * ``reasons``: the top reasons for the propensity, in plain words (:func:`expansion_reasons`);
#: * ``whitespace_products``: products peers own and the account lacks (:func:`whitespace`);
#: * ``seat_utilisation``, ``at_capacity``, ``headroom``, ``relative_uplift`` (expected uplift / current
#:   MRR), ``uplift_basis``: where the uplift comes from.
EXPANSION_COLUMNS = (
    "account_id",
    "name",
    "segment",
    "plan",
    "csm_id",
    "arr",
    "probability",
    "expected_uplift_arr",
    "expected_expansion_arr",
    "health_band",
    "action",
    "reasons",
    "whitespace_products",
    "seat_utilisation",
    "at_capacity",
    "headroom",
    "relative_uplift",
    "uplift_basis",
)
_OPTIONAL = ("name", "segment", "plan", "csm_id")


def _per_row(values, scoring: pd.DataFrame, name: str) -> np.ndarray:
    """Values aligned with the scoring rows: given by row (array, Series on scoring's index) or by
    account (a Series indexed by account_id)."""
    if isinstance(values, pd.DataFrame):
        values = values["band"] if "band" in values else values.iloc[:, 0]
    if isinstance(values, pd.Series):
        ids = scoring["account_id"]
        if values.index.dtype == ids.dtype and values.index.isin(ids).all() and values.index.is_unique:
            return values.reindex(ids).to_numpy()
        if values.index.isin(scoring.index).all():
            return values.reindex(scoring.index).to_numpy()
    values = np.asarray(values, dtype=object)
    if len(values) != len(scoring):
        raise ValueError(f"{name}: {len(values)} values for {len(scoring)} accounts")
    return values


def opportunities(
    scoring: pd.DataFrame,
    probability,
    uplift: pd.DataFrame,
    health_band,
    *,
    reasons=None,
    whitespace=None,
    min_probability: float = 0.15,
) -> pd.DataFrame:
    """Active accounts ranked by expected expansion ARR, with what to do about each.

    Parameters
    ----------
    scoring : DataFrame
        The scoring set of :func:`cslab.features.build_dataset` (accounts active on ``as_of``).
    probability : array-like
        Expansion probability of each scoring row (:meth:`ExpansionModel.predict_proba`).
    uplift : DataFrame
        :func:`expected_uplift` (matched on ``account_id``).
    health_band : array-like, Series or DataFrame
        The churn model's band of each account ("red", "yellow", "green"): the ``band`` column of
        :func:`cslab.drivers.health_scores` for the same rows, or a Series indexed by account_id.
    reasons : Series, optional
        :func:`expansion_reasons` (on scoring's index, or by account_id); may cover only some
        accounts.
    whitespace : Series, optional
        The summary of :func:`whitespace` (indexed by account_id).
    min_probability : float, default 0.15
        Probability from which a healthy account's action is "expand" rather than "nurture"; 0.15
        is about twice the three-month expansion rate of the demo book: set it from your own base
        rate.

    Returns
    -------
    DataFrame
        The columns of :data:`EXPANSION_COLUMNS` (optional ones when known), sorted by
        ``expected_expansion_arr``, highest first. Red accounts keep their rank but their action is
        always "stabilise before expanding": they are never pushed to buy more.

    Examples
    --------
    >>> health = drivers.health_scores(churn_model.predict_proba(scoring))  # doctest: +SKIP
    >>> table = opportunities(scoring, p, expected_uplift(panel), health["band"])  # doctest: +SKIP
    """
    table = scoring[["account_id"] + [c for c in _OPTIONAL if c in scoring]].copy()
    table["arr"] = scoring["arr"].to_numpy() if "arr" in scoring else np.nan
    table["probability"] = np.asarray(probability, float)
    if len(table["probability"]) != len(scoring):
        raise ValueError("probability must have one value per scoring row")
    matched = uplift.drop_duplicates("account_id").set_index("account_id").reindex(table["account_id"])
    table["expected_uplift_arr"] = matched["expected_uplift_arr"].to_numpy()
    table["expected_expansion_arr"] = table["probability"] * table["expected_uplift_arr"]
    band = pd.Series(_per_row(health_band, scoring, "health_band"), index=table.index)
    table["health_band"] = band
    table["action"] = np.where(
        band.eq("red"), STABILISE, np.where(table["probability"] >= min_probability, "expand", "nurture")
    )
    table["reasons"] = (
        pd.Series(_per_row(reasons, scoring, "reasons"), index=table.index).fillna("") if reasons is not None else ""
    )
    table["whitespace_products"] = table["account_id"].map(whitespace).fillna("") if whitespace is not None else ""
    for column in ("seat_utilisation", "at_capacity", "headroom", "relative_uplift", "uplift_basis"):
        if column in matched:
            table[column] = matched[column].to_numpy()
    table = table.sort_values(
        ["expected_expansion_arr", "probability"], ascending=False, na_position="last", kind="stable", ignore_index=True
    )
    return table[[c for c in EXPANSION_COLUMNS if c in table]]
