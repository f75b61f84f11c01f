"""Metric roles: which usage metric of a client's book plays which part in the analyses.

Three analyses need to know what a usage metric *means*, not only that it exists:

* ``active_users`` — people using the product in a period (WAU, MAU, active seats, users): divided
  by seats it gives seat utilisation, capacity and seat headroom;
* ``logins`` — visits (logins, sessions, sign-ins): the engagement signal;
* ``features_used`` — breadth of adoption (features, modules used).

Every other metric is a plain usage signal (its level and trend become features). A role is detected
from the metric's name, whatever its case, separators or a period prefix (``Weekly Active Users``,
``monthly-users``, ``DAU``), and can be set explicitly: in ``cslab.toml`` in the data folder::

    [metric_roles]
    active_users = "seats_in_use"
    logins = "sessions"

or with the notebook parameter ``metric_roles="active_users:seats_in_use,logins:sessions"`` (``-p``;
``=`` works as well as ``:``). An
explicit setting wins over detection; ``role = ""`` turns a detected role off; naming a metric the
usage table does not have is an error.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = [
    "ROLES",
    "MetricRoles",
    "detect_roles",
    "parse_roles",
    "read_settings",
    "usage_column",
    "snake",
    "SETTINGS_FILE",
]

SETTINGS_FILE = "cslab.toml"

#: Each role: what it means, then the names it is recognised by (snake case, period prefix removed),
#: most specific first. Detection picks the metric whose name comes earliest in this list.
ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "active_users": (
        "people using the product in the period (gives seat utilisation and capacity)",
        (
            "active_users",
            "active_user",
            "mau",
            "monthly_active_users",
            "active_seats",
            "seats_active",
            "seats_used",
            "used_seats",
            "seats_in_use",
            "wau",
            "dau",
            "unique_users",
            "distinct_users",
            "users_active",
            "active_members",
            "members_active",
            "actives",
            "users",
        ),
    ),
    "logins": (
        "visits: logins, sessions, sign-ins (engagement)",
        (
            "logins",
            "login",
            "login_count",
            "sign_ins",
            "signins",
            "sign_in",
            "signin",
            "sessions",
            "session",
            "session_count",
            "visits",
        ),
    ),
    "features_used": (
        "breadth of adoption: features or modules used",
        (
            "features_used",
            "features",
            "feature_count",
            "distinct_features",
            "features_adopted",
            "modules_used",
            "modules",
            "breadth",
            "feature_breadth",
        ),
    ),
}
# Prefixes that say over which period or how a metric was counted, dropped before matching.
_PREFIXES = (
    "weekly",
    "monthly",
    "daily",
    "avg",
    "average",
    "mean",
    "total",
    "num",
    "number_of",
    "n",
    "count",
    "unique",
    "distinct",
)
_PERIOD_WORDS = {"wau": "weekly active users", "mau": "monthly active users", "dau": "daily active users"}


def snake(name: object) -> str:
    """A name in snake case: ``"Weekly Active-Users"`` -> ``"weekly_active_users"``.

    Examples
    --------
    >>> snake("Weekly Active-Users"), snake("WAU"), snake("LastLoginDate"), snake("ARRBand")
    ('weekly_active_users', 'wau', 'last_login_date', 'arr_band')
    """
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", str(name).strip())
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def _candidates(name: str) -> list[str]:
    """The name and the name without each leading period or counting prefix."""
    out = [snake(name)]
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if out[-1].startswith(prefix + "_") and len(out[-1]) > len(prefix) + 1:
                out.append(out[-1][len(prefix) + 1 :])
                changed = True
                break
    return out


_PERIODS = ("weekly_", "monthly_", "daily_")


def _rank(metric: str, synonyms: tuple[str, ...]) -> int | None:
    name = snake(metric)
    ranks = [
        synonyms.index(c)
        for c in _candidates(metric)
        if c in synonyms
        # "users" alone or per period ("monthly users") are people using the product; "total
        # users" or a user count are provisioned users, whose share of seats says nothing
        and (c != "users" or name == "users" or name.startswith(_PERIODS))
    ]
    return min(ranks) if ranks else None


@dataclass
class MetricRoles:
    """Which metric plays which role, and how each was decided.

    Attributes
    ----------
    roles : dict
        Role -> metric name as written in the usage table (roles without a metric are absent).
    reasons : dict
        Role -> how it was decided ("set in cslab.toml", "detected from the name 'WAU' (weekly active
        users)", ...).
    metrics : tuple
        Every metric of the usage table.
    """

    roles: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()

    def summary(self) -> pd.DataFrame:
        """One row per role: the metric and how it was decided; then the plain signals."""
        rows = [
            {
                "role": role,
                "metric": self.roles.get(role, "(none)"),
                "how": self.reasons.get(role, "no metric of the usage table is named like it"),
            }
            for role in ROLES
        ]
        others = [m for m in self.metrics if m not in self.roles.values()]
        if others:
            rows.append(
                {
                    "role": "other signals",
                    "metric": ", ".join(others),
                    "how": "every other metric: its level and trend are features",
                }
            )
        return pd.DataFrame(rows)

    def sentence(self) -> str:
        """The roles in one sentence, for reports.

        Examples
        --------
        >>> detect_roles(["WAU", "sessions", "reports_run"]).sentence()
        "Metric roles: active users = 'WAU' (detected from the name 'WAU' (weekly active users)); logins = 'sessions' (detected from the name 'sessions'); features used: none. Other usage signals: 'reports_run'."
        """
        if not self.metrics:
            return "No usage table: no metric roles."
        parts = []
        for role in ROLES:
            label = role.replace("_", " ")
            if role in self.roles:
                parts.append(f"{label} = '{self.roles[role]}' ({self.reasons[role]})")
            else:
                parts.append(f"{label}: none")
        others = [f"'{m}'" for m in self.metrics if m not in self.roles.values()]
        text = "Metric roles: " + "; ".join(parts) + "."
        return text + (f" Other usage signals: {', '.join(others)}." if others else "")


def parse_pairs(text: str, parameter: str, what: str = "KEY=VALUE") -> dict[str, str]:
    """``"a=1, b:2"`` -> ``{"a": "1", "b": "2"}``: the comma-separated pairs of a text parameter.

    ``=`` and ``:`` both separate (the colon reads better inside a notebook's parameter comment,
    where papermill cannot parse ``=``). Raises ``ValueError`` naming ``parameter`` for a part with
    neither.

    Examples
    --------
    >>> parse_pairs("active_users=wau, logins:sessions", "metric_roles")
    {'active_users': 'wau', 'logins': 'sessions'}
    """
    out: dict[str, str] = {}
    for part in (p.strip() for p in str(text or "").split(",")):
        if not part:
            continue
        separator = "=" if "=" in part else ":" if ":" in part else None
        if separator is None:
            raise ValueError(f"{parameter}: {part!r} should be {what} or {what.replace('=', ':')}")
        key, value = (s.strip() for s in part.split(separator, 1))
        out[key] = value
    return out


def parse_roles(text: str) -> dict[str, str]:
    """``"active_users=wau, logins:sessions"`` -> ``{"active_users": "wau", "logins": "sessions"}``.

    Raises ``ValueError`` for an unknown role or a part without ``=`` or ``:``.

    Examples
    --------
    >>> parse_roles("active_users=wau, logins=sessions")
    {'active_users': 'wau', 'logins': 'sessions'}
    """
    try:
        out = parse_pairs(text, "metric_roles", "ROLE=METRIC")
    except ValueError as error:
        raise ValueError(f"{error} (roles: {', '.join(ROLES)})") from None
    for role in out:
        if role not in ROLES:
            raise ValueError(f"metric_roles: unknown role {role!r}; roles: {', '.join(ROLES)}")
    return out


def read_settings(folder: str | Path) -> dict:
    """The data folder's ``cslab.toml`` as a dict (empty when there is none).

    Raises ``ValueError`` with the file's name when it is not valid TOML.
    """
    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{SETTINGS_FILE}: not valid TOML ({exc})") from exc


def detect_roles(
    metrics: Iterable[str], explicit: Mapping[str, str] | None = None, origin: str = "set explicitly"
) -> MetricRoles:
    """Give each role a metric: the explicit setting, else the best-named metric.

    Parameters
    ----------
    metrics : iterable of str
        The usage table's metric names, as written.
    explicit : mapping, optional
        Role -> metric name; an empty name switches the role off.
    origin : str
        How the explicit settings were given, for the reasons ("set in cslab.toml").

    Raises
    ------
    ValueError
        An explicit setting names an unknown role or a metric the usage table does not have.

    Examples
    --------
    >>> detect_roles(["WAU", "Sessions", "reports_run"]).roles
    {'active_users': 'WAU', 'logins': 'Sessions'}
    >>> detect_roles(["seats_in_use", "x"], {"logins": "x"}).roles
    {'active_users': 'seats_in_use', 'logins': 'x'}
    """
    metrics = tuple(dict.fromkeys(str(m) for m in metrics))
    explicit = dict(explicit or {})
    problems = []
    for role, metric in explicit.items():
        if role not in ROLES:
            problems.append(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        elif metric and metric not in metrics:
            known = ", ".join(f"'{m}'" for m in metrics) or "none: there is no usage table"
            problems.append(f"{role} = {metric!r} is not a metric of the usage table (its metrics: {known})")
    if problems:
        raise ValueError("metric_roles: " + "; ".join(problems))
    out = MetricRoles(metrics=metrics)
    taken: set[str] = set()
    for role, metric in explicit.items():
        if metric:
            out.roles[role], out.reasons[role] = metric, origin
            taken.add(metric)
    for role, (_, synonyms) in ROLES.items():
        if role in explicit:
            continue
        ranked = sorted((r, m) for m in metrics if m not in taken and (r := _rank(m, synonyms)) is not None)
        if not ranked:
            continue
        metric = ranked[0][1]
        spelled = _PERIOD_WORDS.get(snake(metric))
        why = f"detected from the name '{metric}'" + (f" ({spelled})" if spelled else "")
        if len(ranked) > 1:
            why += "; also named like it: " + ", ".join(f"'{m}'" for _, m in ranked[1:])
        out.roles[role], out.reasons[role] = metric, why
        taken.add(metric)
    return out


def usage_column(frame: pd.DataFrame, role: str) -> str | None:
    """The column of ``frame`` holding the metric of ``role``, or None.

    Reads the roles the panel carries (``frame.attrs["metric_roles"]``, set by :func:`cslab.panel`);
    without them, detects them from the ``usage_*`` column names.

    Examples
    --------
    >>> usage_column(pd.DataFrame(columns=["usage_wau", "usage_sessions"]), "active_users")
    'usage_wau'
    """
    roles = frame.attrs.get("metric_roles")
    if roles is None:
        metrics = [
            c[len("usage_") :] for c in frame.columns if str(c).startswith("usage_") and not str(c).endswith("_trend")
        ]
        roles = detect_roles(metrics).roles
    metric = roles.get(role)
    column = f"usage_{snake(metric)}" if metric is not None else None
    return column if column in frame.columns else None
