"""Expansion: where net revenue retention above 100% comes from, who is ready to expand, and by how much.

* :func:`nrr_components`: NRR split into expansion, contraction, churn and reactivation rates at
  every month, overall or by segment, CSM or signup cohort (the formulas of
  :func:`cslab.metrics.revenue_retention`, so NRR = 1 + expansion − contraction − churn +
  reactivation exactly);
* :func:`at_capacity` and :func:`seat_utilisation`: seat utilisation of the accounts active on the
  analysis date, and which of them are at capacity (from :mod:`cslab.capacity`);
* :func:`product_matrix` and :func:`whitespace`: the products each account runs, and those its peers
  own and it does not;
* :class:`ExpansionModel` and :func:`fit_expansion`: the propensity to expand within a horizon, with
  the churn machinery of :mod:`cslab.drivers` (time-ordered split, calibration check, SHAP summed
  back to the original features) on the expansion label of :func:`cslab.features.build_dataset`;
* :func:`relative_uplift` and :func:`expected_uplift`: the relative uplift of comparable past
  expansions (MRR added / MRR just before), and each account's expected uplift sized to it
  (relative uplift x its MRR), capped where seats bound it (from :mod:`cslab.uplift`);
* :func:`opportunities`: active accounts ranked by expected expansion ARR (probability × uplift),
  with reasons, whitespace, the churn model's health band and an action (from :mod:`cslab.pipeline`).

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
from cslab.capacity import CAPACITY_THRESHOLD, at_capacity, seat_utilisation
from cslab.data.io import CSData
from cslab.data.panel import label_missing
from cslab.drivers import MIN_EVENTS, ChurnModel, evaluate, explain, importance, time_split
from cslab.errors import StatisticalWarning
from cslab.metrics import retention_over_time
from cslab.pipeline import EXPANSION_COLUMNS, STABILISE, opportunities
from cslab.uplift import expected_uplift, relative_uplift

__all__ = [
    "nrr_components",
    "COHORT_COLUMNS",
    "COMPONENT_COLUMNS",
    "NO_CSM",
    "at_capacity",
    "seat_utilisation",
    "CAPACITY_THRESHOLD",
    "product_matrix",
    "whitespace",
    "ExpansionModel",
    "EXPANSION_TREE_PARAMS",
    "fit_expansion",
    "expansion_reasons",
    "relative_uplift",
    "expected_uplift",
    "opportunities",
    "EXPANSION_COLUMNS",
    "STABILISE",
]
# seat capacity (cslab.capacity), uplift sizing (cslab.uplift) and the ranked list (cslab.pipeline)
# live in their own modules; they are re-exported here, where notebooks, tests and the README
# import them

#: Label of accounts without a CSM in :func:`nrr_components` by ``csm_id``.
NO_CSM = "(no CSM)"

#: Signup-cohort columns :func:`nrr_components` derives from the panel's ``cohort_month``.
COHORT_COLUMNS = {
    "cohort_year": lambda month: month.dt.year.astype("Int64"),
    "cohort_quarter": lambda month: month.dt.to_period("Q").astype(str).where(month.notna()),
}
#: Columns of :func:`nrr_components` after the month and group columns.
COMPONENT_COLUMNS = [
    "nrr",
    "expansion_rate",
    "contraction_rate",
    "churn_rate",
    "reactivation_rate",
    "grr",
    "start_mrr",
    "n_accounts",
]


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


def whitespace(
    data: CSData,
    panel: pd.DataFrame,
    as_of=None,
    *,
    by: str | None = "segment",
    size_bands: int = 3,
    min_peers: int = 20,
    min_adoption: float = 0.0,
    top: int = 3,
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
    as_of = (
        pd.Timestamp(as_of)
        if as_of is not None
        else pd.Timestamp(panel.attrs.get("as_of", panel["month"].max() + pd.offsets.MonthEnd(0)))
    )
    month = as_of.to_period("M").to_timestamp()
    active = panel[panel["month"].eq(month) & panel["active"]].drop_duplicates("account_id")
    active = active.reset_index(drop=True)
    owned = product_matrix(data, as_of).reindex(index=active["account_id"], fill_value=False)
    products = owned.columns.astype(str).to_numpy()
    own = owned.to_numpy(dtype=float)

    by = by if by and by in active else None
    group = label_missing(active[by]) if by else pd.Series("(all)", index=active.index)
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
        warnings.warn(
            f"{int((peers < min_peers).sum())} accounts have fewer than {min_peers} peers "
            "even among all active accounts: their adoption rates are fragile",
            StatisticalWarning,
            stacklevel=2,
        )

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
    table = table.sort_values(
        ["account_id", "peer_adoption", "product"], ascending=[True, False, True], ignore_index=True
    )
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
EXPANSION_TREE_PARAMS = {"learning_rate": 0.03, "max_iter": 200, "max_leaf_nodes": 7, "min_samples_leaf": 100}


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

    def __init__(
        self, kind: str = "trees", calibrate=False, max_calibration_error: float = 0.01, random_state: int = 0
    ):
        super().__init__(
            kind=kind, calibrate=calibrate, max_calibration_error=max_calibration_error, random_state=random_state
        )

    def _pipeline(self):
        encode, estimator = super()._pipeline()
        if self.kind == "trees":
            estimator.set_params(**EXPANSION_TREE_PARAMS)
        return encode, estimator

    def fit(self, frame: pd.DataFrame) -> ExpansionModel:
        """Fit on a dataset with features and ``label`` (1 = expanded within the horizon)."""
        if frame["label"].sum() < MIN_EVENTS:
            warnings.warn(
                f"{int(frame['label'].sum())} expansions in training: fewer than {MIN_EVENTS}, the model is fragile",
                StatisticalWarning,
                stacklevel=2,
            )
        with warnings.catch_warnings():  # the parent says "churn events"; said above in our words
            warnings.filterwarnings("ignore", message=".*churn events in training", category=StatisticalWarning)
            return super().fit(frame)


def fit_expansion(
    dataset: pd.DataFrame,
    *,
    test_months: int = 6,
    horizon_months: int = 3,
    kind: str = "trees",
    calibrate=False,
    shap_sample: int = 1000,
    random_state: int = 0,
) -> dict:
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
    out = {
        "model": model,
        "train": train,
        "test": test,
        "evaluation": evaluate(test["label"], score),
        "backtest": test[["account_id", "observation_date", "label"]].assign(score=score).reset_index(drop=True),
    }
    if kind == "trees":
        out["explained"] = explain(model, test, sample=shap_sample, seed=random_state)
        out["importance"] = importance(out["explained"]["values"])
    return out


def expansion_reasons(
    model: ExpansionModel, rows: pd.DataFrame, previous: pd.DataFrame | None = None, top: int = 3
) -> pd.Series:
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
