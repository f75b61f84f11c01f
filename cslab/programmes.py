"""Total effects of CS programmes on churn and expansion: marginal structural models on the panel.

A programme's *total* effect includes what it does through the account's later signals: onboarding
that raises adoption lowers churn partly *because* utilisation rose. A model that adjusts for this
month's utilisation, tickets or CSAT credits that part to the signals and pulls the programme's
hazard ratio towards 1 (a direct effect). Here time-varying confounders enter only the treatment
(weighting) model; the outcome model sees the weights, the exposure, the tenure and renewal
schedule, and signals measured *before* any exposure: each account's baseline (its first month).

* **Exposure.** ``one_time`` programmes (onboarding, a training course) are on from the month after
  the first delivery, for good. ``recurring`` ones (QBRs, health checks) are on while a delivery fell in
  the last ``exposure_months`` months (:mod:`cslab.exposure`).
* **Weights.** For each month, the chance of a delivery given the previous month's signals, the
  other programmes' exposure and, for recurring programmes, the months since the last delivery
  (denominator), against the chance given only tenure, segment and the programme's own history
  (numerator). One-time programmes multiply the factors from the account's first month to the
  delivery (then they freeze); recurring ones over the exposure window only (a history-restricted
  marginal structural model: Neugebauer, van der Laan, Joffe & Tager 2007). Two propensity models
  compete on the balance they achieve (a linear logistic model, and one with bins of every
  signal for CSMs' thresholds); the choice is remade in every bootstrap replicate.
* **Outcome.** A weighted discrete-time proportional-hazards model (complementary log-log):
  ``exp(coef)`` of the exposure is the total effect's hazard ratio. The same weights and design give
  the effect on the monthly chance of expanding.
* **Money.** Each account with a delivery in the window is projected with and without the window's
  deliveries by the programme's own model (one at a time), or by the programmes' models composed
  (all at once).

Fits run on prebuilt NumPy design matrices (:mod:`cslab.glm`), so the account bootstrap refits every
stage a few hundred times in seconds, with frequency weights instead of copied rows (memory stays at
one design, whatever the number of replicates).

Examples
--------
>>> rows = roi.person_months(dataset, panel)  # doctest: +SKIP
>>> model = ProgrammeEffects(exposure_months=3).fit(rows, ["onboarding", "qbr"])  # doctest: +SKIP
>>> model.summary[["hr", "hr_low", "hr_high"]]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cslab.errors import CSLabError
from cslab.exposure import EXPOSURE_TYPES, RECURRING_REPEAT_SHARE
from cslab.exposure import exposure as exposure_of
from cslab.features import label_of
from cslab.glm import ConvergenceError, cluster_covariance, fit_binary, predict, warm_start
from cslab.programme_value import ProgrammeValue

__all__ = ["ProgrammeEffects", "TENURE_EDGES", "PROPENSITY_MODELS", "kinds_from_rows"]

#: Tenure bands of the discrete-time baseline hazard (months).
TENURE_EDGES = (-1, 2, 5, 11, 23, np.inf)
#: The competing propensity models.
PROPENSITY_MODELS = ("logistic", "binned logistic")
#: Cut points of the binned propensity model, as quantiles of each signal: CSMs act on thresholds,
#: often in the tails ("four tickets in a quarter", "usage below 30%"). A small count (at most 20
#: values up to its 99th percentile, such as tickets) also gets a step at each of those values.
BIN_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.97)
#: A month whose delivery chance is below this is no decision (a QBR off its schedule).
MIN_DECISION_PROBABILITY = 0.005
#: Convergence tolerance of the refits in bootstrap replicates: a hazard ratio to four decimals is
#: far finer than its sampling spread, and Fisher scoring with a cloglog link converges only linearly.
REPLICATE_TOL = 1e-4
#: Months below half this quantile of the delivered months' propensities are outside common support.
SUPPORT_QUANTILE = 0.01
#: Ridge penalty of the propensity models (keeps nearly separating signals finite).
PROPENSITY_PENALTY = 1.0
#: A negligible ridge on the outcome models: keeps a column that is constant within a risk set
#: (a tenure band no annual renewal falls in) from making the information singular.
OUTCOME_PENALTY = 0.1


def kinds_from_rows(
    rows: pd.DataFrame, programmes: list[str], min_repeat_share: float = RECURRING_REPEAT_SHARE
) -> dict:
    """Exposure type per programme from the cumulative counts alone (when the activity table is not
    at hand): ``recurring`` when at least ``min_repeat_share`` of treated accounts had it twice.

    Examples
    --------
    >>> rows = pd.DataFrame({"account_id": ["A", "A", "B"], "cs_qbr_count": [1, 2, 1]})
    >>> kinds_from_rows(rows, ["qbr"])
    {'qbr': 'recurring'}
    """
    out = {}
    for p in programmes:
        most = rows.groupby("account_id")[f"cs_{p}_count"].max()
        treated = most[most > 0]
        out[p] = "recurring" if len(treated) and (treated > 1).mean() >= min_repeat_share else "one_time"
    return out


def _bands(tenure: np.ndarray) -> np.ndarray:
    """Tenure-band dummies (first band dropped)."""
    band = np.digitize(tenure, TENURE_EDGES[1:-1], right=True)
    return np.column_stack([(band == b).astype(float) for b in range(1, len(TENURE_EDGES) - 1)])


def _standardise(frame: pd.DataFrame) -> pd.DataFrame:
    """Winsorised at 1%/99%, median-filled, z-scored numeric columns; constant ones dropped."""
    out = {}
    for c in frame.columns:
        x = frame[c].astype(float)
        if x.isna().all():
            continue
        lo, hi = x.quantile([0.01, 0.99])
        x = x.clip(lo, hi).fillna(x.median())
        sd = x.std()
        if sd > 0:
            out[c] = (x - x.mean()) / sd
    return pd.DataFrame(out, index=frame.index)


def _dummies(values: pd.Series, prefix: str) -> pd.DataFrame:
    return pd.get_dummies(values.astype(str), prefix=prefix, prefix_sep="=", drop_first=True, dtype=float)


def _drop_copies(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Drop constant columns (except the intercept, column 0) and near-copies (|r| > 0.999), which
    make the information singular."""
    keep = X.std(axis=0) > 0
    keep[0] = True
    X, names = X[:, keep], [n for n, k in zip(names, keep) if k]
    if X.shape[1] > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.abs(np.nan_to_num(np.corrcoef(X, rowvar=False)))
        copy = (np.triu(corr, k=1) > 0.999).any(axis=0)
        X, names = X[:, ~copy], [n for n, c in zip(names, copy) if not c]
    return X, names


def _wsmd(X: np.ndarray, treated: np.ndarray, w: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Weighted standardised mean differences of every column (pooled SD of the unweighted groups)."""
    t = treated.astype(bool)
    m1 = (w[t, None] * X[t]).sum(0) / w[t].sum()
    m0 = (w[~t, None] * X[~t]).sum(0) / w[~t].sum()
    return (m1 - m0) / base


def _pooled_sd(X: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Pooled SD of the two groups; a column constant within them (up to rounding: a z-scored flag
    that is 1 on every decision row varies by 1e-17) has no SMD (infinite SD), or floating-point noise
    would be divided by floating-point noise."""
    t = treated.astype(bool)
    sd = np.sqrt((X[t].var(0, ddof=1) + X[~t].var(0, ddof=1)) / 2)
    return np.where(sd > 1e-8, sd, np.inf)


@dataclass
class _Programme:
    """What one programme's estimation needs, prebuilt once."""

    name: str
    kind: str
    exposed: np.ndarray  # per row (all rows)
    delivered: np.ndarray  # a delivery in the row's month
    decision: np.ndarray  # rows where a delivery is decided
    propensity: dict  # candidate -> design (decision rows)
    numerator: np.ndarray  # numerator design (decision rows)
    balance_design: np.ndarray  # signals for the balance check (decision rows)
    balance_names: list
    population: np.ndarray  # rows where the programme can be given (positivity)
    population_note: str
    start: dict = field(default_factory=dict)  # the point fits, warm starts of the replicates' refits


class ProgrammeEffects(ProgrammeValue):
    """Total effects of CS programmes on the monthly churn hazard and the chance of expanding.

    Parameters
    ----------
    exposure_months : int, default 3
        A recurring programme counts as exposure while a delivery fell within this many months.
    weight_trim : float, default 0.01
        Weights beyond the ``weight_trim`` and ``1 − weight_trim`` quantiles are set to them.
    covariates : list of str, optional
        Time-varying and baseline signals (default :func:`cslab.roi.programme_covariates`).
    categorical : tuple of str
        Categorical signals (one-hot).
    max_accounts : int, optional
        Estimate on a random sample of this many accounts (all their months) when the book has
        more; values are scaled back up by the sampled share (``sample_fraction_``).

    Attributes
    ----------
    kinds_ : dict
        Programme -> ``one_time`` or ``recurring``.
    effects_ : dict
        Programme -> point estimates and diagnostics (see :attr:`summary`).
    failed_ : dict
        Programme -> why it could not be estimated.

    Examples
    --------
    >>> model = ProgrammeEffects().fit(rows, ["onboarding", "qbr"], kinds={"qbr": "recurring"})  # doctest: +SKIP
    >>> model.summary.loc["onboarding", "hr"]  # doctest: +SKIP
    0.62
    """

    def __init__(
        self,
        exposure_months: int = 3,
        weight_trim: float = 0.01,
        covariates: list[str] | None = None,
        categorical: tuple[str, ...] = ("segment",),
        min_treated_accounts: int = 20,
        max_accounts: int | None = None,
        random_state: int = 0,
    ):
        self.exposure_months = exposure_months
        self.max_accounts = max_accounts
        self.random_state = random_state
        self.weight_trim = weight_trim
        self.covariates = covariates
        self.categorical = categorical
        self.min_treated_accounts = min_treated_accounts

    def __getstate__(self):
        # a bootstrap worker needs the prebuilt arrays (joblib memory-maps them), not the rows table
        state = self.__dict__.copy()
        state.pop("rows_", None)
        return state

    # ------------------------------------------------------------------------------------------
    def fit(
        self, rows: pd.DataFrame, programmes: list[str], kinds: dict | None = None, *, book_accounts: int | None = None
    ) -> ProgrammeEffects:
        """Estimate every programme's total effect (point estimates, model intervals, diagnostics).

        Parameters
        ----------
        rows : DataFrame
            :func:`cslab.roi.person_months`; rows whose ``label`` is missing (the last month, whose
            outcome is not known yet) are used for exposure and money, not for fitting.
        programmes : list of str
        kinds : dict, optional
            Programme -> exposure type (default: from the counts, :func:`kinds_from_rows`).
        book_accounts : int, optional
            Accounts in the whole book when ``rows`` already hold a random sample of them
            (:func:`cslab.roi.sample_accounts`): values are scaled up by the sampled share.
        """
        from cslab.effects import programme_covariates

        if self.exposure_months < 1 or not 0 <= self.weight_trim < 0.5:
            raise ValueError("exposure_months must be at least 1 and weight_trim in [0, 0.5)")
        # a large book: a random sample of accounts (all their months) bounds memory and time; the
        # effects are estimated on it and the value is scaled back up by the sampled share
        accounts = rows["account_id"].unique()
        self.sample_fraction_ = min(1.0, len(accounts) / book_accounts) if book_accounts else 1.0
        if self.max_accounts and len(accounts) > self.max_accounts:
            keep = np.random.default_rng(self.random_state).choice(accounts, self.max_accounts, replace=False)
            rows = rows[rows["account_id"].isin(keep)]
            self.sample_fraction_ *= self.max_accounts / len(accounts)
        rows = rows.sort_values(["account_id", "observation_date"], kind="stable").reset_index(drop=True)
        self.rows_ = rows
        self._tol = 1e-8
        kinds = {**kinds_from_rows(rows, programmes), **(kinds or {})}
        wrong = {p: k for p, k in kinds.items() if k not in EXPOSURE_TYPES}
        if wrong:
            raise ValueError(f"exposure types must be one of {EXPOSURE_TYPES}: {wrong}")
        self.kinds_ = {p: kinds[p] for p in programmes}
        covariates = [c for c in (self.covariates or programme_covariates(rows)) if c in rows]
        categorical = [c for c in self.categorical if c in rows]
        n = len(rows)
        account = rows["account_id"].to_numpy()
        codes, self._account = np.unique(account, return_inverse=True)
        self.account_ids_ = codes
        self._n_accounts = len(codes)
        first = np.r_[True, account[1:] != account[:-1]]
        self._first = first
        self._fit_rows = rows["label"].notna().to_numpy() if "label" in rows else np.ones(n, bool)
        self._at_risk = rows["at_risk"].to_numpy(bool) & self._fit_rows
        self._label = rows["label"].fillna(0).to_numpy(float)
        self._expanded = rows["expanded"].fillna(0).to_numpy(float) if "expanded" in rows else None
        tenure = rows["tenure_months"].to_numpy(float)
        self._tenure = tenure
        dates = pd.DatetimeIndex(rows["observation_date"])
        self._month = (dates.year * 12 + dates.month - 1).to_numpy()
        self._renewal = rows["renewal"].to_numpy(float) if "renewal" in rows else np.zeros(n)
        self._annual = (
            (rows["billing_period_months"].fillna(1).to_numpy() >= 12)
            if "billing_period_months" in rows
            else np.zeros(n, bool)
        )
        self._mtr = rows["months_to_renewal"].fillna(0).to_numpy(float) if "months_to_renewal" in rows else np.zeros(n)
        self._mrr = rows["mrr"].fillna(0).to_numpy(float)

        # lagged signals (the previous month's, as the CSM saw them) for the treatment models
        current = rows[covariates].astype(float)
        # an account's first month has no previous month: its signals are unknown there (median-filled
        # with a first-month flag), not this month's, which the month's own deliveries may have moved
        lagged = current.groupby(account, sort=False).shift(1)
        lagged_z = _standardise(lagged)
        segment = (
            pd.concat([_dummies(rows[c], c) for c in categorical], axis=1)
            if categorical
            else pd.DataFrame(index=rows.index)
        )
        bands = _bands(tenure)
        # baseline: each account's first month, before exposure to anything the data shows later
        baseline = current.groupby(account, sort=False).transform("first")
        baseline_z = _standardise(baseline).add_prefix("baseline ")
        # the outcome design without the exposures: intercept, baseline, segment, tenure, renewal
        outcome = np.column_stack([np.ones(n), baseline_z.to_numpy(), segment.to_numpy(), bands, self._renewal])
        names = [
            "const",
            *baseline_z.columns,
            *segment.columns,
            *[f"tenure band {b}" for b in range(1, bands.shape[1] + 1)],
            "renewal",
        ]
        outcome, names = _drop_copies(outcome, names)
        self._outcome, self._outcome_names = outcome, names
        self._n_band = sum(n.startswith("tenure band") for n in names)
        # concurrent signals: only for the clearly labelled direct effect
        self._concurrent = np.column_stack([outcome, _standardise(current).to_numpy()])
        bins = {}
        for c in lagged_z.columns:
            edges = np.unique(np.quantile(lagged_z[c], BIN_QUANTILES))
            raw = lagged[c].dropna().to_numpy(float)
            low = np.unique(lagged_z[c][lagged[c] <= np.quantile(raw, 0.99)])[:-1] if len(raw) else []
            if len(raw) and np.all(raw == np.round(raw)) and len(low) <= 20:
                # a small count (tickets, escalations): CSMs act on its values ("four tickets in a
                # quarter"), which quantiles of a mostly-zero count miss: every value up to its 99th
                # percentile is its own step (counts with more values, like employees, keep quantiles)
                edges = np.union1d(edges, low)
            if len(edges) > 1:
                bins[c] = np.column_stack([(lagged_z[c].to_numpy() > e).astype(float) for e in edges])
        binned = np.column_stack(list(bins.values())) if bins else np.zeros((n, 0))

        exposures = {
            p: exposure_of(rows, p, self.kinds_[p], exposure_months=self.exposure_months).to_numpy() for p in programmes
        }
        self._exposures = exposures
        self._build_landmarks(lagged_z.to_numpy(), segment.to_numpy())
        self.programmes_: dict[str, _Programme] = {}
        self.failed_: dict[str, str] = {}
        for p in programmes:
            try:
                self.programmes_[p] = self._prepare(
                    p, rows, exposures, lagged_z, segment, bands, binned, covariates, categorical
                )
            except CSLabError as error:
                self.failed_[p] = str(error)
        self.effects_ = {}
        for p in list(self.programmes_):
            try:
                self.effects_[p] = self._estimate_one(self.programmes_[p], np.ones(n), details=True)
            except (CSLabError, ConvergenceError) as error:
                self.failed_[p] = str(error)
                del self.programmes_[p]
        return self

    # ------------------------------------------------------------------------------------------
    def _prepare(self, p, rows, exposures, lagged_z, segment, bands, binned, covariates, categorical) -> _Programme:
        count = rows[f"cs_{p}_count"].fillna(0).to_numpy(float)
        before = np.where(self._first, 0.0, np.r_[0.0, count[:-1]])
        delivered = count > before
        exposed = exposures[p]
        treated_accounts = np.unique(self._account[exposed])
        if len(treated_accounts) < self.min_treated_accounts:
            raise CSLabError(
                f"{len(treated_accounts)} accounts received {p.replace('_', ' ')}: too few to "
                f"estimate its effect; at least {self.min_treated_accounts} are needed"
            )
        kind = self.kinds_[p]
        prev_exposed = np.where(self._first, False, np.r_[False, exposed[:-1]])
        if kind == "one_time":
            start = delivered & ~prev_exposed
            window = np.quantile(self._tenure[start], 0.99) if start.any() else 0
            decision = ~prev_exposed & (self._tenure <= window)
            history = np.zeros((len(rows), 0))
        else:
            decision = np.ones(len(rows), bool)
            history = self._since_last(delivered)
        others = (
            np.column_stack(
                [np.where(self._first, 0.0, np.r_[0.0, exposures[q][:-1].astype(float)]) for q in exposures if q != p]
            )
            if len(exposures) > 1
            else np.zeros((len(rows), 0))
        )
        # positivity: levels of few-valued signals the programme never reaches are left out
        population = np.ones(len(rows), bool)
        notes = []
        for c in [c for c in covariates + categorical if rows[c].nunique(dropna=True) <= 5]:
            levels = rows.loc[exposed | delivered, c].dropna().unique()
            keep = (rows[c].isin(levels) | rows[c].isna()).to_numpy()
            if not keep.all():
                population &= keep
                shown = ", ".join(
                    sorted({1.0: "yes", 0.0: "no"}.get(v, str(v)) if isinstance(v, float) else str(v) for v in levels)
                )
                notes.append(f"{label_of(c) if c != 'has_csm' else 'has a CSM'}: {shown}")
        decision &= population
        D = decision
        base = [
            np.ones(D.sum()),
            self._first[D].astype(float),
            lagged_z.to_numpy()[D],
            segment.to_numpy()[D],
            bands[D],
            others[D],
            history[D],
        ]
        linear = np.column_stack(base)
        candidates = {"logistic": linear, "binned logistic": np.column_stack([linear, binned[D]])}
        # the numerator may condition only on what the outcome model holds (tenure, segment)
        numerator = np.column_stack([np.ones(D.sum()), segment.to_numpy()[D], bands[D]])
        balance = np.column_stack([lagged_z.to_numpy()[D], segment.to_numpy()[D]])
        balance_names = [*lagged_z.columns, *segment.columns]
        # a signal (nearly) constant where the decisions are taken, like a trend at tenure 0, has no
        # balance to check: its SMD would divide by almost nothing
        keep = balance.std(0) > 0.05
        candidates = {k: _drop_copies(v, list(range(v.shape[1])))[0] for k, v in candidates.items()}
        numerator = _drop_copies(numerator, list(range(numerator.shape[1])))[0]
        return _Programme(
            p,
            kind,
            exposed,
            delivered,
            decision,
            candidates,
            numerator,
            balance[:, keep],
            [b for b, k in zip(balance_names, keep) if k],
            population,
            "; ".join(notes) or "all accounts",
        )

    def _since_last(self, delivered: np.ndarray) -> np.ndarray:
        """Dummies of the months since the last delivery before each row (never, 1, 2, 3, 4-6, 7-12, 13+)."""
        month = self._month.astype(float)
        last = pd.Series(np.where(delivered, month, np.nan)).groupby(self._account).ffill().to_numpy()
        before = np.where(self._first, np.nan, np.r_[np.nan, last[:-1]])
        gap = month - before
        cuts = [(1, 1), (2, 2), (3, 3), (4, 6), (7, 12), (13, np.inf)]
        return np.column_stack([((gap >= lo) & (gap <= hi)).astype(float) for lo, hi in cuts])

    # ------------------------------------------------------------------------------------------
    def _weights(self, prog: _Programme, freq: np.ndarray, choose: bool = True) -> tuple[np.ndarray, dict]:
        """The programme's stabilised weights per row, and the chosen propensity model's details."""
        D = prog.decision
        fD = freq[D]
        A = prog.delivered[D].astype(float)
        used = fD > 0
        base_sd = _pooled_sd(prog.balance_design[used], A[used])
        best, failure = None, ""
        for name, X in prog.propensity.items():
            try:
                f = fit_binary(
                    X,
                    A,
                    fD,
                    link="logit",
                    penalty=PROPENSITY_PENALTY,
                    tol=self._tol,
                    **warm_start(prog.start.get(name)),
                )
            except ConvergenceError as error:
                failure = f"{name} propensity model: {error}"
                continue
            prog.start.setdefault(name, f)
            p = np.clip(predict(X, f.coef, "logit"), 1e-4, 1 - 1e-4)
            ipw = np.where(A == 1, 1 / p, 1 / (1 - p))
            ok = used & (p > MIN_DECISION_PROBABILITY)
            smd = (
                np.abs(_wsmd(prog.balance_design[ok], A[ok], (fD * ipw)[ok], base_sd)).max()
                if prog.balance_design.shape[1] and ok.any()
                else 0.0
            )
            if best is None or smd < best[0]:
                best = (smd, name, p)
            if not choose:
                break
        if best is None:
            raise ConvergenceError(f"no propensity model converged ({failure})")
        _, chosen, p = best
        # common support: a month whose delivery chance is below what nearly every actual delivery
        # had (half its 1st percentile) is no decision (an escalation without tickets, a QBR off its
        # quarter): it gets no weight factor, and no exposure can be compared there
        # (half of it: propensities often take a few values, and the lowest group of deliveries must
        # stay inside)
        support = max(MIN_DECISION_PROBABILITY, 0.5 * float(np.quantile(p[(A == 1) & used], SUPPORT_QUANTILE)))
        if prog.kind == "recurring":
            # unstabilised: over a window whose months differ in whether a delivery was possible, the
            # stabilised factors leave the exposure tied to how many were (tested on a null programme)
            factor = np.where(p <= support, 1.0, np.where(A == 1, 0.5 / p, 0.5 / (1 - p)))
        else:
            # the numerator (stabilisation): the chance of a delivery given only what the outcome model
            # holds, among the months where a delivery was possible (elsewhere nothing is weighted)
            num_fit = fit_binary(
                prog.numerator,
                A,
                fD * (p > support),
                link="logit",
                penalty=PROPENSITY_PENALTY,
                tol=self._tol,
                **warm_start(prog.start.get("numerator")),
            )
            prog.start.setdefault("numerator", num_fit)
            num = predict(prog.numerator, num_fit.coef, "logit")
            factor = np.where(p <= support, 1.0, np.where(A == 1, num / p, (1 - num) / (1 - p)))
        log_factor = np.zeros(len(freq))
        log_factor[D] = np.log(factor)
        possible = np.zeros(len(freq))
        possible[D] = p > support
        if prog.kind == "recurring":
            # history-restricted: only the decisions of the exposure window count
            w = np.exp(self._trailing_sum(log_factor))
            # positivity: a month is compared only if a delivery was possible in its window (an
            # escalation needs tickets, a QBR its quarter); elsewhere no exposure can be compared
            count = self._trailing_sum(possible)
            eligible = (count > 0) | prog.exposed
            # windows are compared with windows that had as many months where a delivery was possible
            pattern = np.column_stack(
                [(np.round(count) >= c).astype(float) for c in range(2, self.exposure_months + 1)]
            )
        else:
            w = np.exp(pd.Series(log_factor).groupby(self._account).cumsum().to_numpy())
            could = np.zeros(self._n_accounts, bool)
            could[self._account[possible > 0]] = True
            eligible = could[self._account] | prog.exposed
            pattern = np.zeros((len(freq), 0))
        eligible &= prog.population
        # truncated within the exposed and the unexposed months apart: the two groups' weights differ
        # by design, and one set of quantiles would cut mostly one group's
        w = self._trim(w, freq * eligible, groups=prog.exposed)
        return w, {"model": chosen, "p": p, "A": A, "eligible": eligible, "support": support, "pattern": pattern}

    def _trailing_sum(self, x: np.ndarray) -> np.ndarray:
        """Sum of ``x`` over each row and the ``exposure_months - 1`` rows before it, within the account."""
        cum = pd.Series(x).groupby(self._account).cumsum().to_numpy()
        idx = np.arange(len(cum)) - self.exposure_months
        same = (idx >= 0) & (self._account[np.maximum(idx, 0)] == self._account)
        return cum - np.where(same, cum[np.maximum(idx, 0)], 0.0)

    def _trim(self, w: np.ndarray, freq: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        if not self.weight_trim:
            return w
        out = w.copy()
        for group in [None] if groups is None else [groups, ~groups]:
            sel = (freq > 0) if group is None else (freq > 0) & group
            if sel.sum() < 10:
                continue
            lo, hi = np.quantile(w[sel], [self.weight_trim, 1 - self.weight_trim])
            target = np.ones(len(w), bool) if group is None else group
            out[target] = np.clip(w[target], lo, hi)
        return out

    def _outcome_fit(self, X, y, w, key, start_store):
        try:
            f = fit_binary(
                X, y, w, link="cloglog", penalty=OUTCOME_PENALTY, tol=self._tol, **warm_start(start_store.get(key))
            )
        except ConvergenceError as error:
            raise ConvergenceError(f"{key} model: {error}") from error
        start_store.setdefault(key, f)
        return f

    def _estimate_one(self, prog: _Programme, freq: np.ndarray, details: bool = False, choose: bool = True) -> dict:
        w, chosen = self._weights(prog, freq, choose)
        pop = chosen["eligible"]
        R = self._at_risk & pop
        X = np.column_stack([self._outcome[R], chosen["pattern"][R], prog.exposed[R].astype(float)])
        wr = (w * freq)[R]
        y = self._label[R]
        fit = self._outcome_fit(X, y, wr, "churn", prog.start)
        hr = float(np.exp(fit.coef[-1]))
        out = {
            "hr": hr,
            "propensity_model": chosen["model"],
            "weights": w,
            "churn_coef": fit.coef,
            "eligible": pop,
            "pattern": chosen["pattern"],
        }
        if self._expanded is not None:
            E = self._fit_rows & pop
            Xe = np.column_stack([self._outcome[E], chosen["pattern"][E], prog.exposed[E].astype(float)])
            fe = self._outcome_fit(Xe, self._expanded[E], (w * freq)[E], "expansion", prog.start)
            out.update(expansion_hr=float(np.exp(fe.coef[-1])), expansion_coef=fe.coef)
        if details:
            out.update(self._details(prog, w, chosen, fit, X, y, wr, R))
        return out

    def _details(self, prog, w, chosen, fit, X, y, wr, R) -> dict:
        V = cluster_covariance(X, y, fit, self._account[R], wr, penalty=OUTCOME_PENALTY)
        se = float(np.sqrt(V[-1, -1]))
        b = fit.coef[-1]
        naive = fit_binary(np.column_stack([np.ones(R.sum()), prog.exposed[R]]), y, link="cloglog")
        # the direct effect: also adjusted for this month's signals and the other programmes'
        # exposure, which the programme may itself have changed (shown beside, labelled)
        others = (
            np.column_stack([self._exposures[q][R] for q in self._exposures if q != prog.name])
            if len(self._exposures) > 1
            else np.zeros((R.sum(), 0))
        )
        Xd, _ = _drop_copies(
            np.column_stack([self._concurrent[R], others]), list(range(self._concurrent.shape[1] + others.shape[1]))
        )
        try:
            # one fit per programme, not per replicate: Fisher scoring with a cloglog link converges
            # only linearly, and this design (every concurrent signal) can need a few hundred steps
            direct = fit_binary(
                np.column_stack([Xd, prog.exposed[R]]), y, wr, link="cloglog", penalty=OUTCOME_PENALTY, max_iter=500
            )
            direct_hr = float(np.exp(direct.coef[-1]))
        except ConvergenceError:
            direct_hr = float("nan")
        A, p = chosen["A"], chosen["p"]
        ok = p > chosen["support"]
        base_sd = _pooled_sd(prog.balance_design[ok], A[ok])
        ipw = np.where(A == 1, 1 / p, 1 / (1 - p))
        before = _wsmd(prog.balance_design[ok], A[ok], np.ones(ok.sum()), base_sd)
        after = _wsmd(prog.balance_design[ok], A[ok], ipw[ok], base_sd)
        balance = pd.DataFrame({"before": before, "after": after}, index=prog.balance_names)
        decisions = pd.DataFrame({"started": A[ok].astype(int), "p": p[ok]})
        decisions.attrs["propensity_model"] = chosen["model"]
        from cslab.weighting import e_value

        rare = float(self._label[self._fit_rows].mean()) < 0.15
        with np.errstate(over="ignore", invalid="ignore"):  # a failed sandwich: no model interval
            low, high = float(np.exp(b - 1.959964 * se)), float(np.exp(b + 1.959964 * se))
        ev = e_value(float(np.exp(b)), low, high, rare_outcome=rare)
        return {
            "hr_low_model": low,
            "hr_high_model": high,
            "naive_hr": float(np.exp(naive.coef[-1])),
            "direct_hr": direct_hr,
            "max_smd_before": float(np.abs(before).max()) if len(before) else 0.0,
            "max_smd_after": float(np.abs(after).max()) if len(after) else 0.0,
            "balance": balance,
            "decisions": decisions,
            "evalue": ev["estimate"],
            "evalue_limit": ev["limit"],
            "n_treated_accounts": int(len(np.unique(self._account[prog.exposed & prog.population]))),
            "n_rows": int(R.sum()),
            "kind": prog.kind,
            "population": prog.population_note
            + (
                ""
                if chosen["eligible"][prog.population & self._at_risk].all()
                else f"; months where a delivery was possible "
                f"({chosen['eligible'][prog.population & self._at_risk].mean():.0%} "
                "of those months)"
            ),
        }

    # ------------------------------------------------------------------------------------------
    @property
    def summary(self) -> pd.DataFrame:
        """One row per estimated programme: exposure type, naive / total / direct hazard ratios, the
        model interval of the total effect, expansion hazard ratio, balance, E-value, population."""
        keys = (
            "kind",
            "naive_hr",
            "hr",
            "hr_low_model",
            "hr_high_model",
            "direct_hr",
            "expansion_hr",
            "max_smd_before",
            "max_smd_after",
            "evalue",
            "evalue_limit",
            "n_treated_accounts",
            "n_rows",
            "population",
            "propensity_model",
        )
        table = pd.DataFrame({p: {k: e.get(k) for k in keys} for p, e in self.effects_.items()}).T
        table.index.name = "programme"
        return table

    def replicate(self, freq: np.ndarray) -> dict:
        """Every programme's estimates under account frequency weights ``freq``
        (one per account): one bootstrap replicate. A programme that fails is reported, not dropped."""
        row_freq = freq[self._account].astype(float)
        out, failed = {}, {}
        self._tol = REPLICATE_TOL
        for p, prog in self.programmes_.items():
            try:
                out[p] = self._estimate_one(prog, row_freq)
            except (ConvergenceError, np.linalg.LinAlgError, FloatingPointError) as error:
                failed[p] = str(error)
        return {"programmes": out, "failed": failed}
