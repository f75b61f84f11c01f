"""One set-up call for a notebook: parameters checked, report set up, data loaded and screened.

Every analysis notebook opens the same way: check its parameters, set the plotting theme, load the
tables (or a customer snapshot), build the monthly panel, leave out the account columns written
after churn, and say what was read. :func:`start` does all of it and returns a :class:`Session`
that holds what the later cells use, so the notebook's cells are calls, displays and records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from cslab.notebook import check_parameters, money, show_inputs

__all__ = ["Session", "start", "PARAMETER_RULES"]


def _between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Callable:
    def check(value) -> bool:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    return check


#: Rules on parameter values beyond their type, per notebook: name -> (test, what is expected).
PARAMETER_RULES: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "01_cohort_retention": {
        "cohort_period": (lambda v: v in {"M", "Q"}, "'M' or 'Q'"),
    },
    "02_churn_drivers": {
        "health_bands": (lambda v: len(v) == 2 and 0 < v[0] < v[1] <= 100, "two increasing scores in (0, 100]"),
    },
    "03_cs_roi": {
        "weight_trim": (_between(0, 0.5, high_open=True), "in [0, 0.5)"),
        "n_bootstrap": (_between(0, float("inf")), "0 or more"),
        "horizon_months": (_between(1, float("inf")), "1 or more"),
        "value_horizon_months": (_between(1, float("inf")), "1 or more"),
        "exposure_months": (_between(1, float("inf")), "1 or more"),
        "gross_margin": (_between(0, 1, low_open=True), "in (0, 1]"),
    },
    "04_expansion_opportunity": {
        "min_probability": (_between(0, 1, low_open=True, high_open=True), "in (0, 1)"),
        "capacity_threshold": (_between(0, 2, low_open=True), "in (0, 2]"),
    },
}


@dataclass
class Session:
    """What a notebook's cells work with after :func:`start`.

    Attributes
    ----------
    name : str
        The notebook's name.
    params : dict
        The parameters as set (defaults or the audit's values).
    data : CSData or CustomerSnapshot
        The loaded tables (``snapshot`` True: one row per customer).
    monthly : DataFrame or None
        The monthly panel, with the columns written at or after churn left out when the notebook
        screens attributes (``screen``); None in snapshot mode.
    screen : AttributeScreen or None
        :func:`cslab.leakage.screen_attributes` (or ``screen_snapshot``), when the notebook has
        ``include_attributes``/``exclude_attributes`` parameters.
    snapshot : bool
        Customer-snapshot mode (``customers_file`` given).
    """

    name: str
    params: dict
    data: Any = None
    monthly: pd.DataFrame | None = None
    screen: Any = None
    snapshot: bool = False
    currency: str = "USD"
    extras: dict = field(default_factory=dict)

    def say(self, text: str) -> None:
        """Show ``text`` as Markdown in the report."""
        from IPython.display import Markdown, display

        display(Markdown(text))

    def money(self, value: float | None) -> str:
        """``value`` in the notebook's currency, as :func:`cslab.notebook.money` writes it."""
        return money(value, self.currency)


def _check_rules(name: str, params: dict) -> None:
    from cslab.notebook import ParameterError

    problems = [
        f"{key} must be {expected}, not {params[key]!r}"
        for key, (test, expected) in PARAMETER_RULES.get(name, {}).items()
        if key in params and not test(params[key])
    ]
    if problems:
        raise ParameterError("; ".join(problems))


def start(namespace: dict[str, Any], name: str, *, load: str = "panel", require: tuple[str, ...] = ()) -> Session:
    """Set a notebook up: parameters, report, data.

    Parameters
    ----------
    namespace : dict
        The notebook's ``globals()`` (its parameters are read from there).
    name : str
        The notebook's name, e.g. ``"01_cohort_retention"``.
    load : {"panel", "data", "none"}
        ``"panel"``: load the tables and build the monthly panel (``as_of``, and
        ``reactivation_months`` where the notebook has it); ``"data"``: the tables only;
        ``"none"``: nothing. With a ``customers_file`` parameter set, a customer snapshot is loaded
        instead (``id_col``, ``event_col``, ``duration_col``).
    require : tuple of str
        Tables the notebook cannot do without (e.g. ``("cs_activities",)``): a clear error if absent.

    Returns
    -------
    Session

    Raises
    ------
    ParameterError
        An unknown, mistyped or out-of-range parameter.
    CSLabError
        A required table is missing.

    Examples
    --------
    >>> nb = start(globals(), "04_expansion_opportunity")  # doctest: +SKIP
    >>> nb.monthly["month"].max()  # doctest: +SKIP
    """
    import cslab
    from cslab import leakage, plots
    from cslab.config import DEMO_DIR
    from cslab.errors import CSLabError

    params = check_parameters(namespace, name)
    _check_rules(name, params)
    plots.set_theme()
    session = Session(
        name=name, params=params, currency=params.get("currency", "USD"), snapshot=bool(params.get("customers_file"))
    )
    if load == "none":
        return session
    screens = "include_attributes" in params or "exclude_attributes" in params
    if session.snapshot:
        session.data = cslab.load_customers(
            params["customers_file"],
            id_col=params.get("id_col") or None,
            event_col=params.get("event_col", ""),
            duration_col=params.get("duration_col") or None,
        )
        if screens:
            session.screen = leakage.screen_snapshot(
                session.data.customers,
                include=params.get("include_attributes", ""),
                exclude=params.get("exclude_attributes", ""),
            )
    else:
        session.data = cslab.load(params.get("data_dir") or DEMO_DIR, metric_roles=params.get("metric_roles") or None)
        for table in require:
            if getattr(session.data, table, None) is None:
                raise CSLabError(REQUIRED_TABLES.get(table, f"no {table} table: this notebook needs it"))
        if load == "panel":
            options = {"as_of": params.get("as_of") or None}
            if "reactivation_months" in params:
                options["reactivation_months"] = params["reactivation_months"]
            session.monthly = cslab.panel(session.data, **options)
            if screens:
                session.screen = leakage.screen_attributes(
                    session.monthly,
                    include=params.get("include_attributes", ""),
                    exclude=params.get("exclude_attributes", ""),
                )
                # columns written at or after churn are neither features nor confounders
                session.monthly = session.screen.apply(session.monthly)
    for note in session.data.notes:
        session.say(f"*Data note:* {note}")
    show_inputs(session.data, session.screen)
    return session


#: Why a notebook stops when a table it needs is absent.
REQUIRED_TABLES = {
    "cs_activities": "no cs_activities table: CS ROI needs the dated CS activities (account_id, date, "
    "activity_type) to know who received which programme and when",
}
