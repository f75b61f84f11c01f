"""Expansion: where net revenue retention above 100% comes from, who is ready to expand, and by how much.

* :func:`nrr_components`: NRR split into expansion, contraction, churn and reactivation rates at
  every month, overall or by segment, CSM or signup cohort (the formulas of
  :func:`cslab.metrics.revenue_retention`, so NRR = 1 + expansion − contraction − churn +
  reactivation exactly);
* :func:`at_capacity` and :func:`seat_utilisation`: seat utilisation of the accounts active on the
  analysis date, and which of them are at capacity;
* :func:`product_matrix` and :func:`whitespace`: the products each account runs, and those its peers
  own and it does not;
* :class:`ExpansionModel` and :func:`fit_expansion`: the propensity to expand within a horizon, with
  the churn machinery of :mod:`cslab.drivers` (time-ordered split, calibration check, SHAP summed
  back to the original features) on the expansion label of :func:`cslab.features.build_dataset`;
* :func:`relative_uplift` and :func:`expected_uplift`: the relative uplift of comparable past
  expansions (MRR added / MRR just before), and each account's expected uplift sized to it
  (relative uplift x its MRR), capped where seats bound it;
* :func:`opportunities`: active accounts ranked by expected expansion ARR (probability × uplift),
  with reasons, whitespace, the churn model's health band and an action.

Analyses only: nothing here reads files, draws or prints.

Examples
--------
>>> import cslab
>>> from cslab import drivers, expansion, features
>>> data = cslab.load("data/demo")  # doctest: +SKIP
>>> panel = cslab.panel(data)  # doctest: +SKIP
>>> dataset, scoring = features.build_dataset(data, panel, target="expansion")  # doctest: +SKIP
>>> fitted = expansion.fit_expansion(dataset)  # doctest: +SKIP
>>> p = fitted["model"].predict_proba(scoring)  # doctest: +SKIP
>>> table = expansion.opportunities(scoring, p, expansion.expected_uplift(panel),
...                                 health_band=bands)  # doctest: +SKIP
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cslab import drivers
from cslab.data.io import CSData
from cslab.data.roles import usage_column
from cslab.drivers import MIN_EVENTS, ChurnModel, evaluate, explain, importance, time_split
from cslab.errors import StatisticalWarning
from cslab.metrics import retention_over_time

__all__ = ["nrr_components", "COHORT_COLUMNS", "COMPONENT_COLUMNS", "NO_CSM", "at_capacity",
           "seat_utilisation", "CAPACITY_THRESHOLD", "product_matrix", "whitespace", "ExpansionModel",
           "EXPANSION_TREE_PARAMS", "fit_expansion", "expansion_reasons", "relative_uplift",
           "expected_uplift", "opportunities", "EXPANSION_COLUMNS", "STABILISE"]

#: Accounts whose utilisation (active users / seats) reaches this share are "at capacity". At 0.9 a
#: ten-seat team has at most one seat free: seats come in whole units, so small teams cannot get
#: closer without being full, and a team that fills nine seats in ten has to buy before it grows.
CAPACITY_THRESHOLD = 0.9
#: Label of accounts without a CSM in :func:`nrr_components` by ``csm_id``.
NO_CSM = "(no CSM)"
#: The action of every red-band account: grow only what is healthy.
STABILISE = "stabilise before expanding"

#: Signup-cohort columns :func:`nrr_components` derives from the panel's ``cohort_month``.
COHORT_COLUMNS = {
    "cohort_year": lambda month: month.dt.year.astype("Int64"),
    "cohort_quarter": lambda month: month.dt.to_period("Q").astype(str).where(month.notna()),
}
#: Columns of :func:`nrr_components` after the month and group columns.
COMPONENT_COLUMNS = ["nrr", "expansion_rate", "contraction_rate", "churn_rate", "reactivation_rate",
                     "grr", "start_mrr", "n_accounts"]


# ------------------------------------------------------------------------------------------------
# Where NRR comes from
# ------------------------------------------------------------------------------------------------
def nrr_components(panel: pd.DataFrame, months: int = 12, by: str | None = None) -> pd.DataFrame:
    """NRR and its parts at every month with ``months`` months of history behind it.

    Trailing starting-cohort basis (:func:`cslab.metrics.retention_over_time`): for each end month,
    the accounts active ``months`` months earlier, followed to the end month. Each movement's MRR
    over the window, divided by the cohort's starting MRR, gives its rate, and exactly
    NRR = 1 + expansion_rate − contraction_rate − churn_rate + reactivation_rate.

    Parameters
    ----------
    panel : DataFrame
        The monthly account panel (:func:`cslab.panel`).
    months : int, default 12
        Length of each trailing window.
    by : str, optional
        An account column (``segment``, ``plan``, ``region``, ...; each account in the group it was
        in at the window's start), ``csm_id`` (accounts without a CSM form ``"(no CSM)"``), or a
        signup cohort: ``cohort_year`` or ``cohort_quarter`` (of the first paid month).

    Returns
    -------
    DataFrame
        ``month`` (end of the window), ``start_month``, the ``by`` column if given, then ``nrr``,
        ``expansion_rate``, ``contraction_rate``, ``churn_rate``, ``reactivation_rate``, ``grr``,
        ``start_mrr`` and ``n_accounts`` (cohort size). Warns
        (:class:`~cslab.errors.StatisticalWarning`) when rows rest on few accounts.

    Examples
    --------
    >>> parts = nrr_components(panel, by="segment")  # doctest: +SKIP
    >>> parts[parts["month"].eq(parts["month"].max())]  # doctest: +SKIP
    """
    frame = panel
    if by in COHORT_COLUMNS and by not in panel:
        frame = panel.assign(**{by: COHORT_COLUMNS[by](panel["cohort_month"])})
    elif by == "csm_id" and by in panel:
        ids = panel["csm_id"].astype(object)
        blank = ids.isna() | ids.astype(str).str.strip().eq("")
        frame = panel.assign(csm_id=ids.where(~blank, NO_CSM))
    elif by is not None and by not in panel:
        raise ValueError(f"by={by!r} is neither a panel column nor one of {sorted(COHORT_COLUMNS)}")
    table = retention_over_time(frame, months=months, by=by)
    keys = ["month", "start_month"] + ([by] if by else [])
    return table[keys + COMPONENT_COLUMNS].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# Seat utilisation
# ------------------------------------------------------------------------------------------------
def _month_of(frame: pd.DataFrame, as_of) -> pd.Timestamp:
    """The month (first day) of ``as_of``, else the frame's latest month or observation date."""
    if as_of is not None:
        return pd.Timestamp(as_of).to_period("M").to_timestamp()
    dates = frame["month"] if "month" in frame else frame["observation_date"]
    return pd.Timestamp(dates.max()).to_period("M").to_timestamp()


def at_capacity(panel_or_scoring: pd.DataFrame, *, as_of=None,
                threshold: float = CAPACITY_THRESHOLD) -> pd.DataFrame:
    """Seat utilisation of each account active on ``as_of``, and whether it is at capacity.

    Utilisation = active users / seats, as :mod:`cslab.features` computes ``seat_utilisation``:
    the month's mean of the metric in the ``active_users`` role (:mod:`cslab.data.roles`: WAU, MAU,
    active seats...) over the seats at the month-end snapshot.
    It can exceed 1 when seats are shared.

    Parameters
    ----------
    panel_or_scoring : DataFrame
        The monthly panel (the accounts active in the month of ``as_of``) or a scoring set of
        :func:`cslab.features.build_dataset` (its rows observed in that month).
    as_of : date, optional
        Default: the panel's last month, or the scoring set's latest observation date.
    threshold : float, default ``CAPACITY_THRESHOLD`` (0.9)
        At capacity when utilisation >= threshold (see :data:`CAPACITY_THRESHOLD` for why 0.9).

    Returns
    -------
    DataFrame
        ``account_id``, ``segment`` (when known), ``seats``, ``active_users``, ``seat_utilisation``
        and ``at_capacity`` (nullable boolean: missing where seats or active users are unknown).

    Examples
    --------
    >>> at_capacity(panel)["at_capacity"].mean()  # doctest: +SKIP
    """
    month = _month_of(panel_or_scoring, as_of)
    frame = panel_or_scoring
    if "month" in frame and "active" in frame:  # the panel
        rows = frame[frame["month"].eq(month) & frame["active"]]
        seats = rows["seats"].astype(float).where(rows["seats"] > 0)
        column = usage_column(frame, "active_users")
        users = rows[column].astype(float) if column is not None else np.nan * seats
        utilisation = users / seats
    else:  # a scoring set: utilisation is a feature already
        rows = frame[frame["observation_date"].dt.to_period("M").dt.to_timestamp().eq(month)]
        seats = rows["seats"].astype(float).where(rows["seats"] > 0) if "seats" in rows else \
            pd.Series(np.nan, index=rows.index)
        utilisation = rows["seat_utilisation"].astype(float) if "seat_utilisation" in rows else np.nan * seats
        users = utilisation * seats
    out = rows[["account_id"] + (["segment"] if "segment" in rows else [])].copy()
    out["seats"] = seats.to_numpy()
    out["active_users"] = np.asarray(users, float)
    out["seat_utilisation"] = np.asarray(utilisation, float)
    full = pd.array(out["seat_utilisation"] >= threshold, dtype="boolean")
    full[out["seat_utilisation"].isna().to_numpy()] = pd.NA
    out["at_capacity"] = full
    return out.reset_index(drop=True)


def seat_utilisation(panel_or_scoring: pd.DataFrame, *, as_of=None, by: str | None = "segment",
                     threshold: float = CAPACITY_THRESHOLD) -> pd.DataFrame:
    """Distribution of seat utilisation among the accounts active on ``as_of``, by group.

    Parameters
    ----------
    panel_or_scoring : DataFrame
        The monthly panel or a scoring set (see :func:`at_capacity`).
    as_of : date, optional
        Default: the latest month.
    by : str or None, default "segment"
        Account column to group by (missing values form "(missing)"); None: one row for all.
    threshold : float, default 0.9
        At capacity when utilisation >= threshold.

    Returns
    -------
    DataFrame
        Indexed by group, with a last row ``all``: ``n_accounts``, ``n_measured`` (with seats and
        active users), ``mean``, ``p10``, ``p25``, ``median``, ``p75``, ``p90``, ``n_at_capacity``
        and ``share_at_capacity`` (of the measured accounts).

    Examples
    --------
    >>> seat_utilisation(panel).loc["all", "share_at_capacity"]  # doctest: +SKIP
    """
    accounts = at_capacity(panel_or_scoring, as_of=as_of, threshold=threshold)
    if by is not None and by not in accounts:
        source = panel_or_scoring
        month = _month_of(source, as_of)
        rows = source[source["month"].eq(month)] if "month" in source else source
        if by not in rows:
            raise ValueError(f"by={by!r} is not a column of the data")
        attribute = rows.drop_duplicates("account_id").set_index("account_id")[by]
        accounts[by] = accounts["account_id"].map(attribute)

    def describe(frame: pd.DataFrame) -> dict:
        values = frame["seat_utilisation"].dropna()
        q = values.quantile([0.1, 0.25, 0.5, 0.75, 0.9]).to_numpy() if len(values) else [np.nan] * 5
        full = int(frame["at_capacity"].sum())
        return {"n_accounts": len(frame), "n_measured": len(values), "mean": values.mean(),
                "p10": q[0], "p25": q[1], "median": q[2], "p75": q[3], "p90": q[4],
                "n_at_capacity": full, "share_at_capacity": full / len(values) if len(values) else np.nan}

    rows = {}
    if by is not None:
        groups = accounts[by].astype(object).where(accounts[by].notna(), "(missing)")
        rows = {group: describe(frame) for group, frame in accounts.groupby(groups, sort=True)}
    rows["all"] = describe(accounts)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = by or "group"
    return table


# ------------------------------------------------------------------------------------------------
# Whitespace
# ------------------------------------------------------------------------------------------------
def product_matrix(data: CSData, as_of=None) -> pd.DataFrame:
    """Which products each account runs on ``as_of``: accounts x products, True when running.

    Products come from ``subscriptions.product``, or ``plan`` when there is no product column. A
    product is owned when one of its lines runs on ``as_of`` (``start_date <= as_of <= end_date``
    or no end date), whatever its price: a free line is adoption, not whitespace.

    Examples
    --------
    >>> product_matrix(data).mean()  # share of accounts running each product  # doctest: +SKIP
    """
    subs = data.subscriptions
    column = next((c for c in ("product", "plan") if c in subs and subs[c].notna().any()), None)
    if column is None:
        raise ValueError("whitespace needs a product (or plan) column in subscriptions")
    as_of = pd.Timestamp(as_of) if as_of is not None else data.default_as_of()
    running = subs[(subs["start_date"] <= as_of) & (subs["end_date"].isna() | (subs["end_date"] >= as_of))]
    running = running.dropna(subset=[column])
    matrix = pd.crosstab(running["account_id"], running[column].astype(str)) > 0
    matrix.columns.name = column
    return matrix


def whitespace(data: CSData, panel: pd.DataFrame, as_of=None, *, by: str | None = "segment",
               size_bands: int = 3, min_peers: int = 20, min_adoption: float = 0.0, top: int = 3
               ) -> tuple[pd.DataFrame, pd.Series]:
    """Products an account's peers own and it does not, with their adoption among those peers.

    Peers of an active account are the other accounts active on ``as_of`` in the same ``by`` group
    (segment) and size band. Size bands are quantiles (``size_bands`` of them, 3: small, medium,
    large) of seats within the group, or of MRR when some active account has no seats: seats are
    preferred because MRR grows with the very products whose adoption is compared. When a peer
    group has fewer than ``min_peers`` accounts, peers widen to the whole group, then to every
    active account (the ``peer_group`` column says which).

    Parameters
    ----------
    data : CSData
        The loaded tables (for the subscription lines and their products).
    panel : DataFrame
        The monthly panel (active accounts, segment, seats, MRR).
    as_of : date, optional
        Default: the panel's ``as_of``.
    by : str or None, default "segment"
        Account column defining peers; None: size bands over all accounts.
    size_bands : int, default 3
        1 disables banding.
    min_peers : int, default 20
        Fewest peers an adoption rate rests on before widening the group.
    min_adoption : float, default 0
        Only products owned by more than this share of peers are listed.
    top : int, default 3
        Products named in the per-account summary.

    Returns
    -------
    (table, summary)
        ``table``: one row per active account and product it lacks: ``account_id``, the ``by``
        column, ``size_band`` (1 = smallest), ``peer_group``, ``n_peers``, ``product`` and
        ``peer_adoption`` (share of its peers running the product), highest adoption first within
        each account; ``attrs["size_basis"]`` is "seats" or "mrr". ``summary``: a Series indexed by
        ``account_id`` (every active account), e.g. ``"Analytics (62% of peers); Automation (40%
        of peers)"``, empty when peers own nothing the account lacks.

    Examples
    --------
    >>> table, summary = whitespace(data, panel)  # doctest: +SKIP
    >>> summary.head()  # doctest: +SKIP
    """
    as_of = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(
        panel.attrs.get("as_of", panel["month"].max() + pd.offsets.MonthEnd(0)))
    month = as_of.to_period("M").to_timestamp()
    active = panel[panel["month"].eq(month) & panel["active"]].drop_duplicates("account_id")
    active = active.reset_index(drop=True)
    owned = product_matrix(data, as_of).reindex(index=active["account_id"], fill_value=False)
    products = owned.columns.astype(str).to_numpy()
    own = owned.to_numpy(dtype=float)

    by = by if by and by in active else None
    group = (active[by].astype(object).where(active[by].notna(), "(missing)") if by
             else pd.Series("(all)", index=active.index))
    size_basis = "seats" if active["seats"].notna().all() else "mrr"
    rank = active[size_basis].astype(float).groupby(group).rank(pct=True, method="average")
    band = np.clip(np.ceil(rank.to_numpy() * size_bands), 1, size_bands).astype(int)
    keys = pd.DataFrame({"group": group.to_numpy(), "band": band})
    # peer groups from the narrowest to every active account; a level equal to the next is skipped
    levels = []
    if size_bands > 1:
        levels.append((["group", "band"], f"same {by} and size band" if by else "same size band"))
    if by:
        levels.append((["group"], f"same {by}"))
    levels.append(([], "all active accounts"))

    n = len(active)
    owners = np.full(own.shape, np.nan)
    peers = np.full(n, np.nan)
    level = np.full(n, "", dtype=object)
    for columns, name in levels:
        if columns:
            in_group = pd.DataFrame(own).groupby([keys[c] for c in columns]).transform("sum").to_numpy()
            size = keys.groupby(columns)["band"].transform("size").to_numpy()
        else:
            in_group, size = np.broadcast_to(own.sum(axis=0), own.shape), np.full(n, n)
        take = (level == "") & ((size - 1 >= min_peers) | (not columns))
        owners[take], peers[take], level[take] = in_group[take], size[take] - 1, name
    if n and (peers < min_peers).any():
        warnings.warn(f"{int((peers < min_peers).sum())} accounts have fewer than {min_peers} peers "
                      "even among all active accounts: their adoption rates are fragile",
                      StatisticalWarning, stacklevel=2)

    with np.errstate(invalid="ignore", divide="ignore"):
        adoption = owners / peers[:, None]
    lacking = (own == 0) & (adoption > min_adoption) & (peers[:, None] > 0)
    i, j = np.nonzero(lacking)
    table = pd.DataFrame({"account_id": active["account_id"].to_numpy()[i]})
    if by:
        table[by] = group.to_numpy()[i]
    table["size_band"] = band[i]
    table["peer_group"] = level[i]
    table["n_peers"] = peers[i].astype(int)
    table["product"] = products[j]
    table["peer_adoption"] = adoption[i, j]
    table = table.sort_values(["account_id", "peer_adoption", "product"], ascending=[True, False, True],
                              ignore_index=True)
    table.attrs.update(size_basis=size_basis, product_column=owned.columns.name, as_of=as_of)

    shown = table.groupby("account_id", sort=False).head(top)
    percent = (100 * shown["peer_adoption"]).round().astype(int).astype(str)
    labelled = shown["product"] + " (" + percent + "% of peers)"
    text = labelled.groupby(shown["account_id"], sort=False).agg("; ".join)
    summary = text.reindex(active["account_id"]).fillna("").rename("whitespace_products")
    return table, summary


# ------------------------------------------------------------------------------------------------
# Propensity to expand
# ------------------------------------------------------------------------------------------------
#: Trees for the expansion label: fewer, larger leaves and slower learning than the churn model's.
#: Expansion signals are weaker than churn's (no renewal date announces an upsell), so the churn
#: settings fit noise: on four synthetic books other than the demo (seeds 1, 2, 7, 11) these
#: settings raised the test AUC of the trees by 0.01 to 0.04.
EXPANSION_TREE_PARAMS = {"learning_rate": 0.03, "max_iter": 200, "max_leaf_nodes": 7,
                         "min_samples_leaf": 100}


class ExpansionModel(ChurnModel):
    """A classifier of expansion within the horizon: :class:`cslab.drivers.ChurnModel` for upsell.

    Same encoding and attributes as :class:`~cslab.drivers.ChurnModel` (so
    :func:`cslab.drivers.explain`, :func:`~cslab.drivers.importance` and
    :func:`~cslab.drivers.retention_impact` work on it unchanged); the trees are regularised more
    (:data:`EXPANSION_TREE_PARAMS`) and calibration is off by default. Fit it on a dataset of
    :func:`cslab.features.build_dataset` with ``target="expansion"``.

    Parameters
    ----------
    kind : {"trees", "logistic"}
    calibrate : {False, "auto", True}, default False
        As for :class:`~cslab.drivers.ChurnModel`. Off by default: the raw trees were already within
        1.5 points of the observed rates on later months, while the isotonic map, fitted on the
        hold-out's few hundred expansions, overfitted it. On the demo book and two others
        ("auto" switched it on in all three, the hold-out error being 1.2 to 2.0 points) it
        lowered the test AUC by up to 0.012 and doubled the test calibration error
        (0.015 -> 0.027, 0.005 -> 0.013, 0.007 -> 0.014).
    max_calibration_error : float
    random_state : int

    Examples
    --------
    >>> model = ExpansionModel().fit(train)  # doctest: +SKIP
    >>> model.predict_proba(scoring)[:3]  # doctest: +SKIP
    """

    def __init__(self, kind: str = "trees", calibrate=False, max_calibration_error: float = 0.01,
                 random_state: int = 0):
        super().__init__(kind=kind, calibrate=calibrate, max_calibration_error=max_calibration_error,
                         random_state=random_state)

    def _pipeline(self):
        encode, estimator = super()._pipeline()
        if self.kind == "trees":
            estimator.set_params(**EXPANSION_TREE_PARAMS)
        return encode, estimator

    def fit(self, frame: pd.DataFrame) -> "ExpansionModel":
        """Fit on a dataset with features and ``label`` (1 = expanded within the horizon)."""
        if frame["label"].sum() < MIN_EVENTS:
            warnings.warn(f"{int(frame['label'].sum())} expansions in training: fewer than "
                          f"{MIN_EVENTS}, the model is fragile", StatisticalWarning, stacklevel=2)
        with warnings.catch_warnings():  # the parent says "churn events"; said above in our words
            warnings.filterwarnings("ignore", message=".*churn events in training",
                                    category=StatisticalWarning)
            return super().fit(frame)


def fit_expansion(dataset: pd.DataFrame, *, test_months: int = 6, horizon_months: int = 3,
                  kind: str = "trees", calibrate=False, shap_sample: int = 1000,
                  random_state: int = 0) -> dict:
    """Fit the expansion model on earlier observations and judge it on later ones.

    The split is :func:`cslab.drivers.time_split` (training dates end ``horizon_months`` before
    the first test date); the model learns on the training rows only, and is the one to score
    today's accounts with (as notebook 02 does for churn).

    Parameters
    ----------
    dataset : DataFrame
        :func:`cslab.features.build_dataset` with ``target="expansion"``.
    test_months : int, default 6
        The latest observation dates held out for testing.
    horizon_months : int, default 3
        The label's horizon (as given to ``build_dataset``).
    kind : {"trees", "logistic"}
    calibrate : {False, "auto", True}, default False
        See :class:`ExpansionModel`.
    shap_sample : int, default 1000
        Test rows explained by SHAP (trees only).
    random_state : int

    Returns
    -------
    dict
        ``model`` (:class:`ExpansionModel`), ``train``, ``test``, ``evaluation`` (of
        :func:`cslab.drivers.evaluate` on the test rows: ``auc``, ``top_decile_lift``, ``brier``,
        ``base_rate``, ``n``, ``calibration``, ``calibration_error``), ``backtest`` (``account_id``,
        ``observation_date``, ``label``, ``score``) and, for trees, ``explained`` (of
        :func:`cslab.drivers.explain`: SHAP values summed back to the original features) and
        ``importance`` (mean |SHAP| per original feature, strongest first).

    Examples
    --------
    >>> fitted = fit_expansion(dataset)  # doctest: +SKIP
    >>> fitted["evaluation"]["auc"], fitted["importance"].index[:3].tolist()  # doctest: +SKIP
    """
    train, test = time_split(dataset, test_months=test_months, horizon_months=horizon_months)
    model = ExpansionModel(kind, calibrate=calibrate, random_state=random_state).fit(train)
    score = model.predict_proba(test)
    out = {"model": model, "train": train, "test": test, "evaluation": evaluate(test["label"], score),
           "backtest": test[["account_id", "observation_date", "label"]].assign(score=score)
           .reset_index(drop=True)}
    if kind == "trees":
        out["explained"] = explain(model, test, sample=shap_sample, seed=random_state)
        out["importance"] = importance(out["explained"]["values"])
    return out


def expansion_reasons(model: ExpansionModel, rows: pd.DataFrame, previous: pd.DataFrame | None = None,
                      top: int = 3) -> pd.Series:
    """The top reasons behind each account's expansion propensity, in plain words.

    :func:`cslab.drivers.reasons` on the expansion model's SHAP values: the features that raise the
    propensity most, with their values ("seat utilisation 97%, up from 80%").

    Parameters
    ----------
    model : ExpansionModel
        A fitted trees model.
    rows : DataFrame
        The accounts to explain (every row is explained: pass a bounded set).
    previous : DataFrame, optional
        The same accounts' features earlier (e.g. three months before), for "up from".
    top : int, default 3

    Returns
    -------
    Series
        Indexed like ``rows``.

    Examples
    --------
    >>> why = expansion_reasons(model, scoring.head(200))  # doctest: +SKIP
    """
    explained = explain(model, rows, sample=len(rows))
    why = drivers.reasons(explained["values"], explained["rows"], previous=previous, top=top)
    # every listed reason raises the propensity (positive SHAP): the churn wording's suffix goes
    return why.str.replace(" (raises risk)", "", regex=False)


# ------------------------------------------------------------------------------------------------
# Expected uplift
# ------------------------------------------------------------------------------------------------
def _group_labels(values: pd.Series) -> pd.Series:
    """Group values as labels: missing ones form "(missing)"."""
    values = values.astype(object)
    return values.where(values.notna(), "(missing)")


def _past_expansions(panel: pd.DataFrame, month: pd.Timestamp, by: list[str],
                     lookback_months: int | None) -> pd.DataFrame:
    """The expansion movements up to ``month`` (within ``lookback_months``), one row each.

    Columns: the ``by`` groups and ``seats`` of the month before, ``amount`` (MRR added),
    ``prior_mrr`` (MRR the month before: the month's MRR minus the MRR added), ``relative``
    (amount / prior MRR) and ``seat_add`` (more seats than the month before). Expansions from MRR 0
    (possible only when the panel's ``min_mrr`` is negative) have no relative size and are left out.
    """
    frame = panel.sort_values(["account_id", "month"], kind="stable")
    before = frame.groupby("account_id", sort=False)[by + ["seats"]].shift(1)
    moved = frame["movement"].eq("expansion") & frame["month"].le(month)
    if lookback_months is not None:
        moved &= frame["month"].gt(month - pd.DateOffset(months=lookback_months))
    past = before[moved].copy()
    amount = frame.loc[moved, "movement_mrr"].astype(float)
    prior = frame.loc[moved, "mrr"].astype(float) - amount
    past["amount"] = amount
    past["prior_mrr"] = prior
    past["relative"] = amount / prior.where(prior > 0)
    past["seat_add"] = (frame.loc[moved, "seats"] > past["seats"]).to_numpy()
    for c in by:
        past[c] = _group_labels(past[c])
    return past[past["relative"].notna()]


def relative_uplift(panel: pd.DataFrame, *, as_of=None, by: tuple[str, ...] = ("segment",),
                    min_count: int = 20, lookback_months: int | None = 24) -> pd.Series:
    """Median relative uplift of past expansions by group: MRR added / MRR just before.

    A table for valuing expansion in proportion to an account: its expected uplift is the
    relative uplift of its group times its own MRR (or ARR), so a ten times larger account is
    expected to add ten times as much. Each expansion movement of the panel (MRR up on the month
    before) in the ``lookback_months`` up to ``as_of`` counts once, in the group the account was in
    the month before (the plan it upgraded *from*); its relative uplift is the MRR it added over the
    account's MRR that month before. A group with fewer than ``min_count`` expansions takes the
    median of all of them (the ``all`` row). No seat cap is applied here (see
    :func:`expected_uplift` for the account-level rule).

    Parameters
    ----------
    panel : DataFrame
        The monthly panel (:func:`cslab.panel`).
    as_of : date, optional
        Default: the panel's last month.
    by : tuple of str, default ("segment",)
        Account columns defining the groups (absent ones are skipped; missing values form
        ``"(missing)"``); ``()`` gives the ``all`` row only.
    min_count : int, default 20
        Fewest expansions a group's own median rests on.
    lookback_months : int or None, default 24
        Only expansions this recent; None: all of them.

    Returns
    -------
    Series
        Named ``relative_uplift``, indexed by group (the group value for one column, a tuple of
        values for several) for every group with past expansions or active accounts on ``as_of``,
        then ``"all"`` last. ``attrs["n_expansions"]``: the number of expansions behind each row (by
        label); ``attrs["fallback"]``: the groups that took the ``all`` value. Warns
        (:class:`~cslab.errors.StatisticalWarning`) when the whole book has fewer than
        ``min_count`` expansions.

    Examples
    --------
    If SMB expansions added a median of 30% of the MRR they started from, an SMB account at
    1,000 MRR is valued at 300 MRR of expansion and one at 10,000 MRR at 3,000:

    >>> rates = relative_uplift(panel)  # doctest: +SKIP
    >>> groups = panel_now["segment"].fillna("(missing)")  # doctest: +SKIP
    >>> uplift_mrr = groups.map(rates).fillna(rates["all"]) * panel_now["mrr"]  # doctest: +SKIP
    """
    by = [c for c in by if c in panel]
    month = _month_of(panel, as_of)
    past = _past_expansions(panel, month, by, lookback_months)
    overall = float(past["relative"].median()) if len(past) else np.nan
    labels, values, counts, fallback = [], [], {}, []
    if by:
        stats = past.groupby(by)["relative"].agg(["median", "size"])
        now = panel[panel["month"].eq(month) & panel["active"]]
        current = pd.MultiIndex.from_frame(now[by].apply(_group_labels)) if len(by) > 1 else \
            pd.Index(_group_labels(now[by[0]]))
        groups = stats.index.union(current.unique()) if len(stats) else current.unique()
        for group in sorted(groups, key=str):
            n = int(stats["size"].get(group, 0)) if len(stats) else 0
            own = n >= min_count
            labels.append(group)
            values.append(float(stats.loc[group, "median"]) if own else overall)
            counts[group] = n
            if not own:
                fallback.append(group)
    labels.append("all")
    values.append(overall)
    counts["all"] = len(past)
    index = pd.Index(labels, dtype=object, tupleize_cols=False, name=" and ".join(by) or "group")
    table = pd.Series(values, index=index, name="relative_uplift", dtype=float)
    table.attrs.update(n_expansions=counts, fallback=fallback, as_of=month)
    if len(past) < min_count:
        warnings.warn(f"{len(past)} expansions in the window: fewer than min_count={min_count}, "
                      "the relative uplift is fragile", StatisticalWarning, stacklevel=2)
    return table


def expected_uplift(panel: pd.DataFrame, *, as_of=None, by: tuple[str, ...] = ("segment", "plan"),
                    min_count: int = 20, lookback_months: int | None = 24,
                    threshold: float = CAPACITY_THRESHOLD) -> pd.DataFrame:
    """The MRR and ARR one expansion would add to each active account, sized to the account.

    Sizing rule. An account's expected uplift is the median *relative* uplift of comparable past
    expansions times its own current MRR: relative uplift = MRR an expansion added / the expanding
    account's MRR the month before (:func:`relative_uplift`). A ten times larger account is
    expected to add ten times as much, unless a cap below binds.

    Comparable past expansions are the panel's ``expansion`` movements (MRR increase over the month
    before) in the ``lookback_months`` up to ``as_of``, of accounts that were then in the same
    ``by`` groups as the account is now (the plan *before* the expansion, so an upgrade counts for
    the plan it started from). With fewer than ``min_count`` of them, the comparison widens by
    dropping the last ``by`` column (segment and plan, then segment), then to every expansion.

    Headroom rule. Expansion comes from seats, plans or products.

    * An account can add seats when it is at capacity (utilisation >= ``threshold``) and, where
      ``employees`` is known, has fewer seats than employees. It gets the median relative uplift of
      all comparable expansions; where ``employees`` is known, the uplift is capped at the seats it
      can still add (employees − seats) at its own price per seat (its MRR / seats: an upper bound of
      the seat price when products are billed on top), but never below what upgrades and products
      add (next point): seat room does not take those away. Without ``employees`` its seat room is
      unbounded.
    * An account with free seats (or with a seat for every employee) has no reason to buy seats:
      it gets the median relative uplift of comparable expansions that added no seat (plan upgrades
      and products) when that is lower, provided at least ``min_count`` such expansions exist in
      the book.
    * Accounts without seat or usage data are not capped.

    Accounts with MRR 0 or unknown cannot be sized: they get the median MRR added by the same
    comparable expansions (the absolute uplift), and ``uplift_basis`` says so. It also says when an
    account's MRR is above that of every comparable account when it expanded (a whale): its uplift
    is then the proportion extrapolated, not capped.

    Parameters
    ----------
    panel : DataFrame
        The monthly panel.
    as_of : date, optional
        Default: the panel's last month.
    by : tuple of str, default ("segment", "plan")
        Columns defining comparable accounts, most important first; absent columns are skipped.
    min_count : int, default 20
        Fewest comparable expansions a median rests on.
    lookback_months : int or None, default 24
        Only expansions this recent (prices and packaging change); None: all of them.
    threshold : float, default 0.9
        Utilisation at which an account is at capacity.

    Returns
    -------
    DataFrame
        One row per active account: ``account_id``, the ``by`` columns, ``seats``,
        ``active_users``, ``seat_utilisation``, ``at_capacity``, ``seat_room`` (nullable: may add
        seats), ``headroom`` (the rule applied, in words), ``uplift_basis`` (the rate, the
        comparables and any cap, in words), ``n_comparable``, ``mrr`` (current MRR),
        ``relative_uplift`` (expected uplift / current MRR after any cap; missing when MRR is 0 or
        unknown), ``seat_cap_mrr`` (seats it can still add x its MRR per seat, where a seat cap
        applies), ``expected_uplift_mrr`` and ``expected_uplift_arr`` (12 x MRR).

    Examples
    --------
    Comparable expansions of a segment and plan added a median 25% of the MRR they started from.
    An account there at 4,000 MRR (48,000 ARR) with free seats is expected to add 1,000 MRR
    (12,000 ARR), one at 400 MRR adds 100. At capacity with 10 seats for 12 employees, the 4,000
    MRR account can add 2 seats at 400 each: its uplift is capped at 800 MRR (or at what upgrades
    and products add to its peers, if that is more).

    >>> uplift = expected_uplift(panel)  # doctest: +SKIP
    >>> uplift.groupby("segment")["relative_uplift"].median()  # doctest: +SKIP
    """
    by = [c for c in by if c in panel]
    month = _month_of(panel, as_of)
    past = _past_expansions(panel, month, by, lookback_months)

    now = at_capacity(panel, as_of=month, threshold=threshold).drop(columns=["segment"], errors="ignore")
    rows = panel[panel["month"].eq(month) & panel["active"]].drop_duplicates("account_id")
    attributes = rows.set_index("account_id")
    out = now[["account_id"]].copy()
    for c in by:
        out[c] = _group_labels(attributes[c].reindex(out["account_id"])).to_numpy()
    out = out.join(now.drop(columns="account_id"))
    n = len(out)
    mrr = attributes["mrr"].reindex(out["account_id"]).astype(float).to_numpy()
    employees = (attributes["employees"].reindex(out["account_id"]).astype(float).to_numpy()
                 if "employees" in attributes else np.full(n, np.nan))
    seats = out["seats"].to_numpy(float)
    measured = out["seat_utilisation"].notna().to_numpy()
    room = measured & out["at_capacity"].fillna(False).to_numpy() & ~(seats >= employees)
    out["seat_room"] = pd.array(np.where(measured, room, False), dtype="boolean")
    out.loc[~measured, "seat_room"] = pd.NA

    def comparable(expansions: pd.DataFrame) -> tuple[np.ndarray, ...]:
        """Median relative uplift, median amount, count, basis and largest prior MRR of each
        account's comparables."""
        relative, amount, largest = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        count, basis = np.zeros(n, int), np.full(n, "", dtype=object)
        for k in range(len(by), -1, -1):
            keys = by[:k]
            if keys:
                grouped = expansions.groupby(keys)
                stats = grouped[["relative", "amount"]].median().assign(
                    size=grouped.size(), largest=grouped["prior_mrr"].max())
                matched = out[keys].merge(stats, left_on=keys, right_index=True, how="left")
                r, a = matched["relative"].to_numpy(), matched["amount"].to_numpy()
                c = matched["size"].fillna(0).to_numpy().astype(int)
                top = matched["largest"].to_numpy()
            else:
                r = np.full(n, expansions["relative"].median() if len(expansions) else np.nan)
                a = np.full(n, expansions["amount"].median() if len(expansions) else np.nan)
                c = np.full(n, len(expansions))
                top = np.full(n, expansions["prior_mrr"].max() if len(expansions) else np.nan)
            take = (basis == "") & ((c >= min_count) | (not keys)) & (c > 0)
            relative[take], amount[take], count[take], largest[take] = r[take], a[take], c[take], top[take]
            basis[take] = "same " + " and ".join(keys) if keys else "all expansions"
        return relative, amount, count, basis, largest

    rel_all, amount_all, count_all, basis_all, largest_all = comparable(past)
    rel_free, amount_free, count_free, basis_free, largest_free = comparable(past[~past["seat_add"]])
    basis_free = np.char.add(basis_free.astype(str), ", no seats added").astype(object)
    sized = np.isfinite(mrr) & (mrr > 0)
    # no room for seats: upgrades and products only, when the book has enough such expansions and
    # they add less (relatively, or in MRR for accounts that cannot be sized)
    cap_known = count_free >= min_count
    lower = np.where(sized, rel_free < rel_all, amount_free < amount_all)
    capped = measured & ~room & cap_known & lower
    with np.errstate(invalid="ignore", divide="ignore"):
        uplift = np.where(sized, np.where(capped, rel_free, rel_all) * mrr,
                          np.where(capped, amount_free, amount_all))
        # room for seats and employees known: no more seats than employees, at its own seat price,
        # but never less than what upgrades and products add
        addable = np.where(room & np.isfinite(employees), employees - seats, np.nan)
        seat_cap = np.where(sized, addable * mrr / seats, np.nan)
        floor = np.where(sized & cap_known, rel_free * mrr, np.nan)
    limit = np.where(np.isfinite(seat_cap), np.fmax(seat_cap, floor), np.nan)
    bound = np.isfinite(limit) & (uplift > limit)
    by_seats = bound & ~(floor > seat_cap)
    by_products = bound & (floor > seat_cap)
    uplift = np.where(bound, limit, uplift)

    use_free = capped | by_products
    count = np.where(use_free, count_free, count_all)
    # larger than every comparable account was when it expanded: the proportion is extrapolated
    beyond = sized & (mrr > np.where(use_free, largest_free, largest_all))
    basis = np.where(use_free, basis_free, basis_all)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(sized, uplift / mrr, np.nan)
    words = []
    for k in range(n):
        if not sized[k]:
            words.append(f"MRR 0 or unknown: the median MRR added by comparable expansions ({basis[k]})")
        elif by_seats[k]:
            words.append(f"{relative[k]:.1%} of MRR: capped at {addable[k]:,.0f} more seats (one per "
                         f"employee) at its MRR per seat (comparable expansions: {basis[k]})")
        elif not np.isfinite(uplift[k]):
            words.append("no comparable expansions: not sized")
        else:
            words.append(f"{relative[k]:.1%} of MRR: median relative uplift of comparable expansions "
                         f"({basis[k]})")
        if beyond[k]:
            words[-1] += "; MRR above every comparable account's: extrapolated"
    out["headroom"] = np.select(
        [~measured, room, ~cap_known, seats >= employees],
        ["seats or usage not known: not capped", "at capacity: may add seats",
         "no room for seats, but too few expansions without seats to cap by",
         "a seat for every employee: capped at upgrades and products"],
        default="free seats: capped at upgrades and products")
    out.loc[room & np.isfinite(addable), "headroom"] = "at capacity: may add seats, up to one per employee"
    out["uplift_basis"] = words
    out["n_comparable"] = count
    out["mrr"] = mrr
    out["relative_uplift"] = relative
    out["seat_cap_mrr"] = seat_cap
    out["expected_uplift_mrr"] = uplift
    out["expected_uplift_arr"] = 12 * out["expected_uplift_mrr"]
    if (count_all < min_count).any():
        warnings.warn(f"{len(past)} expansions in the window: fewer than min_count={min_count}, "
                      "the expected uplift is fragile", StatisticalWarning, stacklevel=2)
    return out


# ------------------------------------------------------------------------------------------------
# The ranked list
# ------------------------------------------------------------------------------------------------
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
EXPANSION_COLUMNS = ("account_id", "name", "segment", "plan", "csm_id", "arr", "probability",
                     "expected_uplift_arr", "expected_expansion_arr", "health_band", "action", "reasons",
                     "whitespace_products", "seat_utilisation", "at_capacity", "headroom", "relative_uplift",
                     "uplift_basis")
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


def opportunities(scoring: pd.DataFrame, probability, uplift: pd.DataFrame, health_band, *,
                  reasons=None, whitespace=None, min_probability: float = 0.15) -> pd.DataFrame:
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
    table["action"] = np.where(band.eq("red"), STABILISE,
                               np.where(table["probability"] >= min_probability, "expand", "nurture"))
    table["reasons"] = (pd.Series(_per_row(reasons, scoring, "reasons"), index=table.index).fillna("")
                        if reasons is not None else "")
    table["whitespace_products"] = (table["account_id"].map(whitespace).fillna("")
                                    if whitespace is not None else "")
    for column in ("seat_utilisation", "at_capacity", "headroom", "relative_uplift", "uplift_basis"):
        if column in matched:
            table[column] = matched[column].to_numpy()
    table = table.sort_values(["expected_expansion_arr", "probability"], ascending=False,
                              na_position="last", kind="stable", ignore_index=True)
    return table[[c for c in EXPANSION_COLUMNS if c in table]]
