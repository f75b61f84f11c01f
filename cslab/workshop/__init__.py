"""Workshop edition: the metrics primer's helpers, checked exercises, slide figures and the bundle.

For teachers of customer-success metrics. The primer (``notebooks/00_metrics_primer.ipynb``) works
through a hand-made book of ten accounts (:mod:`cslab.workshop.hand`) and then the demo data; after
each part, exercises are checked with :func:`check`, which says right or wrong (and, for numbers,
how far off) without showing the answer. ``cslab workshop --out DIR`` (:func:`build_bundle`) builds
the classroom bundle: student notebooks without solutions, teacher notebooks with solutions and
teaching notes, the scenario books, HTML handouts and slide-ready figures.

Examples
--------
>>> from cslab import workshop
>>> workshop.check("annual-from-3pct", 0.25).correct
False
>>> round(workshop.churn_over(0.08, 12), 3)
0.632
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cslab.workshop.answers import EXERCISES, digest, expected_value, normalise
from cslab.workshop.hand import HAND_AS_OF, HAND_MRR, hand_lines, write_hand_book

__all__ = [
    "CheckResult",
    "check",
    "CHECK_MIMETYPE",
    "EXERCISES",
    "say",
    "churn_over",
    "monthly_for",
    "mixture_retention",
    "conditional_retention",
    "HAND_AS_OF",
    "HAND_MRR",
    "hand_lines",
    "write_hand_book",
    "build_bundle",
    "export_figures",
]

#: MIME type of a check's output in an executed notebook (read back by the tests).
CHECK_MIMETYPE = "application/vnd.cslab.workshop-check+json"


@dataclass
class CheckResult:
    """What :func:`check` found: ``correct`` (bool), ``message`` (str), and whether an answer was given.

    In a notebook the message is shown once, as a coloured line.
    """

    exercise_id: str
    correct: bool
    message: str
    answered: bool = True
    _shown: bool = False

    def _bundle(self) -> dict:
        colour = "#2a9d8f" if self.correct else ("#8d99ae" if not self.answered else "#e76f51")
        return {
            "text/plain": self.message,
            "text/html": (
                f'<div style="border-left:6px solid {colour};padding:4px 10px;margin:4px 0">'
                f"{html.escape(self.message)}</div>"
            ),
            CHECK_MIMETYPE: {"exercise": self.exercise_id, "correct": self.correct, "answered": self.answered},
        }

    def _ipython_display_(self) -> None:
        if not self._shown:
            self.show()

    def show(self) -> None:
        """Display the message in a notebook (outside one, read ``.message``)."""
        self._shown = True
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None:
                display(self._bundle(), raw=True)
        except ImportError:  # pragma: no cover - IPython is a dependency
            pass


def _number(answer) -> float | None:
    if isinstance(answer, (bool, np.bool_)):
        return None
    if isinstance(answer, str):
        text = answer.strip().replace(",", "").replace("_", "")
        percent = text.endswith("%")
        try:
            value = float(text.rstrip("%"))
        except ValueError:
            return None
        return value / 100 if percent else value
    try:
        value = float(np.asarray(answer, dtype=float).item())
    except (TypeError, ValueError):
        return None
    return value


def _how_far(answer: float, expected: float, unit: str) -> str:
    """How far off, in bands coarse enough not to give the answer away."""
    direction = "too high" if answer > expected else "too low"
    if unit == "share":
        gap, bands = (
            abs(answer - expected) * 100,
            ((1, "less than 1 percentage point"), (5, "1 to 5 percentage points"), (15, "5 to 15 percentage points")),
        )
        widest = "more than 15 percentage points"
    else:
        gap = abs(answer - expected) / abs(expected) * 100 if expected else float("inf")
        bands = ((5, "less than 5%"), (20, "5% to 20%"), (50, "20% to 50%"))
        widest = "more than 50%"
    size = next((words for limit, words in bands if gap < limit), widest)
    return f"your answer is {direction}, by {size}"


def check(exercise_id: str, answer, **context) -> CheckResult:
    """Check an answer to an exercise of the primer; say whether it is right, never what is right.

    Parameters
    ----------
    exercise_id : str
        The exercise, as named in the primer (e.g. ``"hand-nrr"``).
    answer : number, str or None
        Numbers may be given as fractions (0.25) or, for rates, in percent (25 or ``"25%"``).
        Choices are letters or words as the exercise lists them. ``None``: not answered yet.
    **context
        What a computed exercise needs, e.g. ``panel=`` for an exercise on the book at hand.

    Returns
    -------
    CheckResult
        ``.correct``, ``.message``; displayed in a notebook.

    Examples
    --------
    >>> check("hand-mrr-may", None).message
    'hand-mrr-may: no answer yet. Replace None with your answer and run the cell again.'
    >>> check("health-88", 0.5).correct
    False
    >>> check("annual-from-3pct", "25%").message.split(" Hint")[0]
    'annual-from-3pct: not yet: your answer is too low, by 5 to 15 percentage points.'
    """
    exercise = EXERCISES.get(exercise_id)
    if exercise is None:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(EXERCISES)}")
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        result = CheckResult(
            exercise_id,
            False,
            f"{exercise_id}: no answer yet. Replace None with your answer and run the cell again.",
            answered=False,
        )
    elif exercise.kind == "choice":
        known = [normalise(o) for o in exercise.options]
        if normalise(answer) not in known:
            result = CheckResult(
                exercise_id, False, f"{exercise_id}: answer with one of {', '.join(exercise.options)} (got {answer!r})."
            )
        elif digest(exercise_id, answer) == exercise.token:
            result = CheckResult(exercise_id, True, f"{exercise_id}: correct.")
        else:
            result = CheckResult(exercise_id, False, f"{exercise_id}: not this one. Hint: {exercise.hint}")
    else:
        value = _number(answer)
        if value is None or not np.isfinite(value):
            result = CheckResult(exercise_id, False, f"{exercise_id}: the answer should be a number (got {answer!r}).")
        else:
            expected = float(expected_value(exercise, **context))
            note = ""
            if exercise.unit == "share" and abs(expected) <= 1 < abs(value) <= 100:
                value, note = value / 100, f" (read as {value:g}%)"
            if abs(value - expected) <= exercise.tolerance:
                result = CheckResult(exercise_id, True, f"{exercise_id}: correct{note}.")
            else:
                result = CheckResult(
                    exercise_id,
                    False,
                    f"{exercise_id}: not yet{note}: {_how_far(value, expected, exercise.unit)}. Hint: {exercise.hint}",
                )
    result.show()
    return result


def say(text: str) -> None:
    """Show a sentence of Markdown in a notebook (print it elsewhere).

    Examples
    --------
    >>> say("NRR was **104%**.")  # doctest: +SKIP
    """
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display

        if get_ipython() is not None:
            display(Markdown(text))
            return
    except ImportError:  # pragma: no cover
        pass
    print(text)


def churn_over(monthly, months: int = 12):
    """Share of customers lost over ``months`` months at a constant monthly churn: 1 − (1 − m)^months.

    The same compounding as :func:`cslab.metrics.logo_churn_rate` uses for its annual figure.

    Examples
    --------
    >>> round(churn_over(0.03), 4)
    0.3062
    >>> churn_over(np.array([0.01, 0.08])).round(3).tolist()
    [0.114, 0.632]
    """
    return (
        1 - (1 - np.asarray(monthly, dtype=float)) ** months if np.ndim(monthly) else float(1 - (1 - monthly) ** months)
    )


def monthly_for(lost: float, months: int = 12) -> float:
    """The constant monthly churn that loses ``lost`` of the customers over ``months`` months.

    Examples
    --------
    >>> round(monthly_for(0.2), 5)
    0.01842
    """
    return float(1 - (1 - lost) ** (1 / months))


def mixture_retention(churn_rates, shares=None, months: int = 24) -> pd.DataFrame:
    """Survival and monthly retention of a book made of groups that each churn at a constant rate.

    Each group keeps its own retention every month, yet the book's retention rises with age: the
    groups that churn more leave first, so the survivors are more and more the loyal kind. This is
    the intuition of the shifted-beta-geometric model (Fader & Hardie 2007), where the churn
    probability varies across customers as a beta distribution.

    Parameters
    ----------
    churn_rates : sequence of float
        Monthly churn of each group.
    shares : sequence of float, optional
        Each group's share at signup (default equal).
    months : int
        Months to follow.

    Returns
    -------
    DataFrame
        Indexed by ``month`` (0..months): ``alive`` (share of the signups still there), one
        ``alive_<rate>`` column per group (share of all signups), and ``retention`` (alive / alive the
        month before; NaN at month 0).

    Examples
    --------
    >>> t = mixture_retention([0.20, 0.02])
    >>> float(round(t.loc[1, "retention"], 3)), float(round(t.loc[13, "retention"], 3))
    (0.89, 0.966)
    """
    rates = np.asarray(churn_rates, dtype=float)
    shares = np.full(len(rates), 1 / len(rates)) if shares is None else np.asarray(shares, float)
    t = np.arange(months + 1)
    alive = shares[None, :] * (1 - rates[None, :]) ** t[:, None]
    out = pd.DataFrame(alive, index=pd.Index(t, name="month"), columns=[f"alive_{r:g}" for r in rates])
    out.insert(0, "alive", alive.sum(axis=1))
    out["retention"] = out["alive"] / out["alive"].shift(1)
    return out


def conditional_retention(fitter, months: int = 24) -> pd.DataFrame:
    """Monthly retention by customer age from a Kaplan–Meier curve: S(t) / S(t − 1).

    The share of the customers still there at age t − 1 who are still there at age t. Rising with t
    is the heterogeneity at work (see :func:`mixture_retention`).

    Parameters
    ----------
    fitter : lifelines.KaplanMeierFitter
        E.g. ``survival.kaplan_meier(lifetimes)["all"]``.
    months : int
        Ages 1..months (ages past the curve's last observation are left out).

    Returns
    -------
    DataFrame
        ``age``, ``survival`` and ``retention``.

    Examples
    --------
    >>> conditional_retention(survival.kaplan_meier(lifetimes)["all"]).head()  # doctest: +SKIP
    """
    last = float(fitter.survival_function_.index.max())
    ages = np.arange(0, min(months, int(last)) + 1)
    surv = fitter.survival_function_at_times(ages).to_numpy()
    out = pd.DataFrame({"age": ages, "survival": surv})
    out["retention"] = out["survival"] / out["survival"].shift(1)
    return out.iloc[1:].reset_index(drop=True)


def build_bundle(*args, **kwargs):
    """Build the classroom bundle (see :func:`cslab.workshop.bundle.build_bundle`)."""
    from cslab.workshop.bundle import build_bundle as build

    return build(*args, **kwargs)


def export_figures(*args, **kwargs):
    """Write the slide-ready figures (see :func:`cslab.workshop.slides.export_figures`)."""
    from cslab.workshop.slides import export_figures as export

    return export(*args, **kwargs)
