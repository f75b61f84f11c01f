"""Expected uplift: what one expansion would add to each account, sized to the account.

* :func:`relative_uplift`: the median relative uplift of past expansions by group (MRR added / MRR
  just before);
* :func:`expected_uplift`: each active account's expected uplift (relative uplift x its MRR),
  capped where seats bound it.

Analyses only: nothing here reads files, draws or prints. :mod:`cslab.expansion` re-exports both.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cslab.capacity import CAPACITY_THRESHOLD, _month_of, at_capacity
from cslab.data.panel import label_missing
from cslab.errors import StatisticalWarning

__all__ = ["relative_uplift", "expected_uplift"]


def _group_labels(values: pd.Series) -> pd.Series:
    """Group values as labels: missing ones form "(missing)"."""
    return label_missing(values)


def _past_expansions(
    panel: pd.DataFrame, month: pd.Timestamp, by: list[str], lookback_months: int | None
) -> pd.DataFrame:
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


def relative_uplift(
    panel: pd.DataFrame,
    *,
    as_of=None,
    by: tuple[str, ...] = ("segment",),
    min_count: int = 20,
    lookback_months: int | None = 24,
) -> pd.Series:
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
        current = (
            pd.MultiIndex.from_frame(now[by].apply(_group_labels))
            if len(by) > 1
            else pd.Index(_group_labels(now[by[0]]))
        )
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
        warnings.warn(
            f"{len(past)} expansions in the window: fewer than min_count={min_count}, the relative uplift is fragile",
            StatisticalWarning,
            stacklevel=2,
        )
    return table


def expected_uplift(
    panel: pd.DataFrame,
    *,
    as_of=None,
    by: tuple[str, ...] = ("segment", "plan"),
    min_count: int = 20,
    lookback_months: int | None = 24,
    threshold: float = CAPACITY_THRESHOLD,
) -> pd.DataFrame:
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
    employees = (
        attributes["employees"].reindex(out["account_id"]).astype(float).to_numpy()
        if "employees" in attributes
        else np.full(n, np.nan)
    )
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
                stats = (
                    grouped[["relative", "amount"]]
                    .median()
                    .assign(size=grouped.size(), largest=grouped["prior_mrr"].max())
                )
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
        uplift = np.where(sized, np.where(capped, rel_free, rel_all) * mrr, np.where(capped, amount_free, amount_all))
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
            words.append(
                f"{relative[k]:.1%} of MRR: capped at {addable[k]:,.0f} more seats (one per "
                f"employee) at its MRR per seat (comparable expansions: {basis[k]})"
            )
        elif not np.isfinite(uplift[k]):
            words.append("no comparable expansions: not sized")
        else:
            words.append(f"{relative[k]:.1%} of MRR: median relative uplift of comparable expansions ({basis[k]})")
        if beyond[k]:
            words[-1] += "; MRR above every comparable account's: extrapolated"
    out["headroom"] = np.select(
        [~measured, room, ~cap_known, seats >= employees],
        [
            "seats or usage not known: not capped",
            "at capacity: may add seats",
            "no room for seats, but too few expansions without seats to cap by",
            "a seat for every employee: capped at upgrades and products",
        ],
        default="free seats: capped at upgrades and products",
    )
    out.loc[room & np.isfinite(addable), "headroom"] = "at capacity: may add seats, up to one per employee"
    out["uplift_basis"] = words
    out["n_comparable"] = count
    out["mrr"] = mrr
    out["relative_uplift"] = relative
    out["seat_cap_mrr"] = seat_cap
    out["expected_uplift_mrr"] = uplift
    out["expected_uplift_arr"] = 12 * out["expected_uplift_mrr"]
    if (count_all < min_count).any():
        warnings.warn(
            f"{len(past)} expansions in the window: fewer than min_count={min_count}, the expected uplift is fragile",
            StatisticalWarning,
            stacklevel=2,
        )
    return out
