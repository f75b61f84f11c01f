"""The value of one window's CS programme work: the counterfactual "these deliveries did not happen".

A mixin of :class:`cslab.programmes.ProgrammeEffects`, kept apart because it is a job of its own:
the landmark models that project each account's hazard (and chance of expanding) from where it stood
when the window's work reached it, and the projection of both worlds over a fixed horizon with the
programmes' total effects on their exposures. It reads the arrays ``ProgrammeEffects.fit`` prebuilds.

Examples
--------
>>> model = ProgrammeEffects().fit(rows, ["onboarding", "qbr"])  # doctest: +SKIP
>>> model.plan_value("2025-01-01", "2025-12-31").value()["total"]  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cslab.glm import fit_binary, warm_start

__all__ = ["ProgrammeValue", "LANDMARK_HORIZON", "LANDMARK_EVERY", "LANDMARK_MAX_ROWS"]

#: The landmark models that project an account's hazard from where it stood: horizons pooled
#: (months 1..12 after the landmark), landmarks every few months of each account (staggered), and
#: at most this many landmark-horizon rows (the spacing grows on a large book).
LANDMARK_HORIZON = 12
LANDMARK_EVERY = 3
LANDMARK_MAX_ROWS = 400_000


class ProgrammeValue:
    """Landmark models and the value of a window's deliveries (mixed into ``ProgrammeEffects``)."""

    def _build_landmarks(self, lagged: np.ndarray, segment: np.ndarray) -> None:
        """Pairs (landmark row ``s``, later row ``t`` of the same account, ``t - s + 1`` months on) and
        their design: the signals as they stood at the landmark (the previous month's, as for the
        treatment models), segment, tenure band and renewal at ``t``, and the months since the landmark.

        The landmark models predict an account's hazard (and chance of expanding) over the next
        months from where it stood, with regression to the mean built in, which is what valuing
        averted churn needs: an account at risk when a programme reached it stays riskier than its
        first month suggests, but less so each month.
        """
        from cslab.programmes import _drop_copies

        n, H = len(self._month), LANDMARK_HORIZON
        self._lagged, self._segment = lagged, segment
        every = max(LANDMARK_EVERY, int(np.ceil(n * H / LANDMARK_EVERY / LANDMARK_MAX_ROWS)) * LANDMARK_EVERY)
        pos = np.arange(n)
        last = pd.Series(pos).groupby(self._account).transform("max").to_numpy()
        landmarks = pos[(self._month + self._account) % every == 0]
        s_, t_ = [], []
        for j in range(1, H + 1):
            t = landmarks + j - 1
            ok = t <= last[landmarks]
            s_.append(landmarks[ok])
            t_.append(t[ok])
        s, t = np.concatenate(s_), np.concatenate(t_)
        keep = self._fit_rows[t]
        s, t = s[keep], t[keep]
        X = self._landmark_design(s, self._tenure[t], self._renewal[t], t - s + 1)
        _, cols = _drop_copies(X, list(range(X.shape[1])))
        self._landmark = {"s": s, "t": t, "X": X[:, cols], "cols": cols, "every": every, "start": {}}

    def _landmark_design(
        self, s: np.ndarray, tenure: np.ndarray, renewal: np.ndarray, months_on: np.ndarray
    ) -> np.ndarray:
        from cslab.programmes import _bands

        return np.column_stack(
            [
                np.ones(len(s)),
                self._first[s],
                self._lagged[s],
                self._segment[s],
                _bands(tenure),
                renewal,
                *[(months_on >= lo) & (months_on <= hi) for lo, hi in ((2, 3), (4, 6), (7, 12))],
            ]
        )

    def _landmark_fit(self, outcome: str, log_effects: dict, freq: np.ndarray) -> np.ndarray:
        """The landmark model of ``churn`` or ``expansion``, with the programmes' total effects on
        their exposures as a fixed offset (so that it describes the hazard without any programme,
        and each world adds the effects of its own exposures)."""
        from cslab.programmes import OUTCOME_PENALTY

        lm = self._landmark
        s, t = lm["s"], lm["t"]
        rows = self._at_risk[t] if outcome == "churn" else np.ones(len(t), bool)
        y = (self._label if outcome == "churn" else self._expanded)[t[rows]]
        offset = np.zeros(rows.sum())
        for p, b in log_effects.items():
            offset += b * self.programmes_[p].exposed[t[rows]]
        fit = fit_binary(
            lm["X"][rows],
            y,
            freq[self._account[s[rows]]],
            link="cloglog",
            penalty=OUTCOME_PENALTY,
            tol=self._tol,
            offset=offset,
            **warm_start(lm["start"].get(outcome)),
        )
        lm["start"].setdefault(outcome, fit)
        return fit.coef

    # ------------------------------------------------------------------------------------------
    # Money: the value of the deliveries of a window, projected over a fixed horizon
    # ------------------------------------------------------------------------------------------
    def plan_value(
        self, window_start, window_end, *, horizon_months: int = 12, relative_uplift: pd.Series | None = None
    ) -> ProgrammeValue:
        """Prepare the counterfactual "the deliveries of this window did not happen".

        For each account with a delivery (of any estimated programme) in the calendar months from
        ``window_start`` to ``window_end``, its months ``d + 1 … d + horizon_months`` after its first
        such delivery ``d`` are projected twice: with the exposure the data shows (deliveries up to
        the window's end; none afterwards), and with the window's deliveries removed (earlier ones
        kept). The hazard in both worlds comes from the landmark models (the account's hazard
        without any programme, from where it stood in the month before ``d``: its signals, segment,
        then tenure, renewal and months since) plus each programme's total effect on its exposure in
        that world. No forecast of the account's signals is needed: a total effect already carries
        what the programme changes in them.

        An expansion is sized to the account: ``relative_uplift`` (segment -> MRR added / MRR before,
        with an ``"all"`` fallback, as :func:`cslab.expansion.relative_uplift` gives it) × the account's
        MRR; by default the median relative expansion of the rows.
        """
        start = pd.Timestamp(window_start).to_period("M")
        end = pd.Timestamp(window_end).to_period("M")
        w0, w1 = start.year * 12 + start.month - 1, end.year * 12 + end.month - 1
        H, k = int(horizon_months), self.exposure_months
        progs = list(self.programmes_)
        delivered_any = np.zeros(len(self._month), bool)
        for p in progs:
            delivered_any |= self.programmes_[p].delivered
        in_window = delivered_any & (self._month >= w0) & (self._month <= w1)
        rows = np.flatnonzero(in_window)
        first_rows = pd.Series(rows).groupby(self._account[rows]).min()  # first delivery row per account
        r = first_rows.to_numpy()
        accounts = first_rows.index.to_numpy()
        n = len(r)
        d = self._month[r]
        j = np.arange(1, H + 1)
        obs = d[:, None] + j[None, :] - 1  # observation month of each projected row
        tenure = self._tenure[r][:, None] + j[None, :] - 1
        annual = self._annual[r][:, None]
        renewal = annual & (np.mod(self._mtr[r][:, None] - (j[None, :] - 1), 12) == 1)
        at_risk = ~annual | renewal
        # the landmark design of each projected month: where the account stood at its first delivery
        # of the window (the signals of the month before), then tenure, renewal and months on
        landmark = self._landmark_design(np.repeat(r, H), tenure.ravel(), renewal.ravel().astype(float), np.tile(j, n))[
            :, self._landmark["cols"]
        ]
        # the grid of deliveries per programme, months w0 - k … w1, for the accounts concerned
        lo = w0 - k
        width = w1 - lo + 1
        slot = {a: i for i, a in enumerate(accounts)}
        mine = np.isin(self._account, accounts)
        exposure = {}
        for p in progs:
            prog = self.programmes_[p]
            if prog.kind == "one_time":
                started = pd.Series(np.where(prog.exposed & mine, self._month, 10**9))
                first = started.groupby(self._account).min().reindex(accounts).to_numpy()
                with_ = first[:, None] <= obs
                without = (first < w0)[:, None] & np.ones_like(obs, bool)
            else:
                grid = np.zeros((n, width + H), bool)
                sel = mine & prog.delivered & (self._month >= lo) & (self._month <= w1)
                grid[[slot[a] for a in self._account[sel]], self._month[sel] - lo] = True
                # delivered within the k months up to each observation month
                csum = np.concatenate([np.zeros((n, 1)), np.cumsum(grid, axis=1)], axis=1)
                col = obs - lo
                recent = (
                    csum[np.arange(n)[:, None], np.clip(col + 1, 0, width + H)]
                    - csum[np.arange(n)[:, None], np.clip(col + 1 - k, 0, width + H)]
                )
                with_ = recent > 0
                before = grid.copy()
                before[:, w0 - lo :] = False
                csum_b = np.concatenate([np.zeros((n, 1)), np.cumsum(before, axis=1)], axis=1)
                recent_b = (
                    csum_b[np.arange(n)[:, None], np.clip(col + 1, 0, width + H)]
                    - csum_b[np.arange(n)[:, None], np.clip(col + 1 - k, 0, width + H)]
                )
                without = recent_b > 0
            exposure[p] = (with_.astype(float), without.astype(float))
        seg = self.rows_["segment"].to_numpy()[r] if "segment" in self.rows_ else np.full(n, "all")
        self.value_plan_ = {
            "accounts": accounts,
            "account_codes": self._account[r],
            "rows": r,
            "H": H,
            "landmark": landmark,
            "at_risk": at_risk.astype(float),
            "exposure": exposure,
            "mrr": self._mrr[r],
            "uplift": self._relative_uplift(seg, relative_uplift) * self._mrr[r],
            "window": (start, end),
        }
        return self

    def _relative_uplift(self, segment: np.ndarray, table: pd.Series | None = None) -> np.ndarray:
        """Median relative size of past expansions (MRR added / MRR before), by segment."""
        if table is not None:
            fallback = float(table.get("all", table.median()))
            return pd.Series(segment).map(table).fillna(fallback).to_numpy(float)
        rows = self.rows_
        if "expanded" not in rows or "expansion_arr" not in rows:
            return np.zeros(len(segment))
        past = rows[(rows["expanded"] == 1) & (rows["mrr"] > 0)]
        ratio = past["expansion_arr"] / 12 / past["mrr"]
        overall = float(ratio.median()) if len(ratio) else 0.0
        by = ratio.groupby(past["segment"]).median() if "segment" in past else pd.Series(dtype=float)
        return pd.Series(segment).map(by).fillna(overall).to_numpy()

    def _projected(
        self, eta: np.ndarray, eta_e: np.ndarray | None, log_hr: dict, log_ehr: dict, removed: set
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per money account: expected MRR-months kept and added over the horizon with the window's
        deliveries minus without those of the programmes in ``removed``.

        Both worlds start from the landmark models' linear predictors (``eta``, ``eta_e``: the
        account's hazard without any programme, projected from where it stood) and add every
        programme's total effect times its exposure in that world.
        """
        plan = self.value_plan_
        n, H = len(plan["mrr"]), plan["H"]

        def linear(base, effects, world):
            out = base.copy()
            for p, b in effects.items():
                out += b * plan["exposure"][p][1 if world == "without" and p in removed else 0]
            return out

        kept, added = np.zeros(n), np.zeros(n)
        remaining = H - np.arange(1, H + 1) + 1
        for sign, world in ((1, "with"), (-1, "without")):
            h = plan["at_risk"] * -np.expm1(-np.exp(np.clip(linear(eta, log_hr, world), -35, 3.5)))
            s = np.cumprod(1 - h, axis=1)
            kept += sign * s.sum(axis=1)
            if eta_e is not None:
                q = -np.expm1(-np.exp(np.clip(linear(eta_e, log_ehr, world), -35, 3.5)))
                alive = np.concatenate([np.ones((n, 1)), s[:, :-1]], axis=1)
                added += sign * (alive * q * remaining).sum(axis=1)
        return kept * plan["mrr"], added * plan["uplift"]

    def value(self, estimates: dict | None = None, freq: np.ndarray | None = None, gross_margin: float = 0.8) -> dict:
        """Gross-margin value of the window's deliveries (after :meth:`plan_value`).

        ``by_programme``: each programme's window deliveries removed alone (the others' kept); these
        overlap and are not summed. ``total``: all removed at once; it splits into ``retained``
        (churn averted) and ``expansion``. Effects multiply (no interaction between programmes is
        assumed) and are the same at every level of risk (proportional hazards); the landmark models
        are refitted with each replicate's effects as their offset.

        Raises
        ------
        ConvergenceError
            A landmark model did not converge (a bootstrap replicate counts it as failed).
        """
        plan = self.value_plan_
        estimates = estimates or {"programmes": self.effects_}
        f = np.ones(len(plan["mrr"])) if freq is None else freq[plan["account_codes"]]
        effects = estimates["programmes"]
        has_e = self._expanded is not None and all("expansion_coef" in e for e in effects.values())
        log_hr = {p: float(e["churn_coef"][-1]) for p, e in effects.items()}
        log_ehr = {p: float(e["expansion_coef"][-1]) for p, e in effects.items()} if has_e else {}
        shape = (len(plan["mrr"]), plan["H"])
        weights = np.ones(self._n_accounts) if freq is None else freq
        eta = (plan["landmark"] @ self._landmark_fit("churn", log_hr, weights)).reshape(shape)
        eta_e = (plan["landmark"] @ self._landmark_fit("expansion", log_ehr, weights)).reshape(shape) if has_e else None
        scale = gross_margin / self.sample_fraction_  # a sample of accounts stands for all of them
        out = {"by_programme": {}}
        for p in effects:  # one programme's window deliveries removed, the others' kept
            kept_p, added_p = self._projected(eta, eta_e, log_hr, log_ehr, {p})
            out["by_programme"][p] = scale * float(f @ (kept_p + added_p))
        kept, added = self._projected(eta, eta_e, log_hr, log_ehr, set(effects))
        out.update(retained=scale * float(f @ kept), expansion=scale * float(f @ added))
        out["total"] = out["retained"] + out["expansion"]
        out["accounts"] = int(round(len(plan["mrr"]) / self.sample_fraction_))
        return out
