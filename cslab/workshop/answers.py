"""The answer key of the primer's exercises, kept out of the student material.

Numbers are stored encoded (XOR with a key stream derived from the exercise id, then base64), so that
:func:`cslab.workshop.check` can say how far off an answer is; multiple-choice answers are stored as
salted SHA-256 digests. Neither is secret from someone who reads this package (the decoder is right
here): the point is that nothing a student sees in the notebooks or handouts shows an answer, and a
glance at this file does not either. A few exercises on a real book have no stored value: their
answer is computed from the book the student is working on (``compute``).

Examples
--------
>>> token = encode("demo", 0.25)
>>> decode("demo", token)
0.25
>>> digest("pick", " B ") == digest("pick", "b")
True
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

__all__ = ["Exercise", "EXERCISES", "encode", "decode", "digest", "expected_value"]

_SALT = b"cslab-workshop-1:"


def _stream(exercise_id: str, n: int) -> bytes:
    out, counter = b"", 0
    while len(out) < n:
        out += hashlib.sha256(_SALT + exercise_id.encode() + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:n]


def encode(exercise_id: str, value) -> str:
    """Encode a JSON value for ``exercise_id`` (what the key stores for a number)."""
    raw = json.dumps(value).encode()
    return base64.urlsafe_b64encode(bytes(a ^ b for a, b in zip(raw, _stream(exercise_id, len(raw))))).decode()


def decode(exercise_id: str, token: str):
    """The value :func:`encode` stored."""
    raw = base64.urlsafe_b64decode(token.encode())
    return json.loads(bytes(a ^ b for a, b in zip(raw, _stream(exercise_id, len(raw)))))


def normalise(answer) -> str:
    """A choice as compared: text, trimmed, lower case, without a trailing ')' or '.'."""
    return str(answer).strip().lower().rstrip(").").strip()


def digest(exercise_id: str, answer) -> str:
    """Salted SHA-256 of a normalised choice (what the key stores for a choice)."""
    return hashlib.sha256(_SALT + exercise_id.encode() + b":" + normalise(answer).encode()).hexdigest()


@dataclass(frozen=True)
class Exercise:
    """One exercise of the primer.

    ``kind``: ``"number"`` (``token`` an encoded value, within ``tolerance``), ``"choice"``
    (``token`` a digest, ``options`` the accepted spellings of the choices) or ``"computed"``
    (``compute`` names a function of this module that computes the value from the book passed
    to the check). ``unit``: ``"share"`` (a rate between 0 and 1; an answer given in percent is
    read as such), ``"money"`` or ``""``.
    """

    id: str
    part: int
    kind: str
    token: str = ""
    tolerance: float = 0.001
    unit: str = ""
    options: tuple[str, ...] = ()
    compute: str = ""
    hint: str = ""


def annual_logo_churn(panel) -> float:
    """The book's annual logo churn, as the audit computes it (the last 12 months)."""
    import warnings

    from cslab import metrics
    from cslab.errors import StatisticalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return float(metrics.logo_churn_rate(panel, months=12)["annual"])


_COMPUTE = {"annual_logo_churn": annual_logo_churn}


def expected_value(exercise: Exercise, **context):
    """The stored or computed answer of a number exercise (the checker's side, never shown)."""
    if exercise.kind == "computed":
        return _COMPUTE[exercise.compute](**context)
    return decode(exercise.id, exercise.token)


EXERCISES: dict[str, Exercise] = {
    e.id: e
    for e in [
        # 1. MRR and its movements
        Exercise(
            "hand-mrr-may",
            1,
            "number",
            "kCTbew==",
            0.5,
            "money",
            hint="MRR is what the paying accounts pay in the month: add up May's column.",
        ),
        Exercise(
            "hand-expansion",
            1,
            "number",
            "trv3",
            0.5,
            "money",
            hint="Expansion is an increase of an account that paid last month too; a return after churn is not expansion.",
        ),
        Exercise(
            "hand-net-new-apr",
            1,
            "number",
            "VAkE",
            0.5,
            "money",
            hint="net new = new + expansion + reactivation - contraction - churn; it can be negative.",
        ),
        # 2. Logo churn vs revenue churn
        Exercise(
            "hand-logo-churn",
            2,
            "number",
            "k9NOUux1nyxvx7gB",
            0.001,
            "share",
            hint="Churned accounts over the account-months at risk: count the accounts active at the start of each month.",
        ),
        Exercise(
            "hand-gross-mrr-churn",
            2,
            "number",
            "F4eHLN1Z097HrFg=",
            0.001,
            "share",
            hint="(churn + contraction) over the sum of each month's starting MRR, February to June.",
        ),
        # 3. From monthly to annual churn
        Exercise(
            "annual-from-3pct",
            3,
            "number",
            "59n5rs7X3HewTe8=",
            0.001,
            "share",
            hint="Survivors after a year: (1 - 0.03) multiplied by itself twelve times.",
        ),
        Exercise(
            "monthly-for-20pct",
            3,
            "number",
            "eCfI7r9CLU_LO4m2",
            0.0002,
            "share",
            hint="Work backwards: (1 - m)^12 = 0.80, so 1 - m is the twelfth root of 0.80.",
        ),
        Exercise(
            "demo-annual-churn",
            3,
            "computed",
            compute="annual_logo_churn",
            tolerance=0.001,
            unit="share",
            hint="metrics.logo_churn_rate gives both the monthly rate and its annual equivalent.",
        ),
        # 4. GRR vs NRR
        Exercise(
            "hand-nrr",
            4,
            "number",
            "ctnCppM0DRaumNeT",
            0.001,
            "share",
            hint="Only the accounts paying in January count, with what they pay in June.",
        ),
        Exercise(
            "hand-grr",
            4,
            "number",
            "Rwey7lyr3LpMypGR",
            0.001,
            "share",
            hint="Same accounts, but no account counts for more than it paid in January.",
        ),
        Exercise(
            "nrr-without-expansion",
            4,
            "choice",
            "01a1209485dbda7615583c403c712f29b01b2334de455bce53c6ec480f245fe0",
            options=("yes", "no"),
            hint="NRR = 1 + expansion - contraction - churn + reactivation.",
        ),
        # 5. Cohort triangle
        Exercise(
            "hand-cohort-jan-5",
            5,
            "number",
            "Ts3OpRLgtk82lX6q",
            0.001,
            "share",
            hint="Read the January row at age 5 (June): active accounts over the cohort's size.",
        ),
        # 6. Survival curves
        Exercise(
            "hand-km-3",
            6,
            "number",
            "SQXaq6G8JXrSPzLr",
            0.001,
            "share",
            hint="Multiply (1 - churned / at risk) over the churn times up to 3 months; I, watched for 2 months only, is at risk at 2, not at 3.",
        ),
        Exercise(
            "hand-km-5",
            6,
            "number",
            "mmh3IPESDjGMUvwO",
            0.001,
            "share",
            hint="Carry on from month 3: who is still watched at month 5?",
        ),
        # 7. Retention rises with age
        Exercise(
            "mix-survivors-risky",
            7,
            "number",
            "1i3EFPft95WqH9KU",
            0.001,
            "share",
            hint="After 12 months, 0.80^12 of the risky half and 0.98^12 of the safe half remain.",
        ),
        Exercise(
            "mix-retention-13",
            7,
            "number",
            "YHW0t-btU-hg422r",
            0.001,
            "share",
            hint="The book's retention in month 13 is the survivors' retention rates averaged, weighted by who survived.",
        ),
        # 8. Health scores
        Exercise(
            "health-88",
            8,
            "number",
            "6wFUpg==",
            0.001,
            "share",
            hint="cslab's health score is 100 x the chance of staying over the horizon.",
        ),
        Exercise(
            "health-is-not",
            8,
            "choice",
            "6a2fb2b3510b977e4f25b451278b24b1203a68317211bbcc624556397c9d87d6",
            options=("a", "b", "c"),
            hint="A score built from churn outcomes ranks risk; it was never asked how customers feel.",
        ),
        # 9. CS cost as a share of revenue
        Exercise(
            "hand-cs-cost-share",
            9,
            "number",
            "24zx4iqIRmcxEAbg",
            0.001,
            "share",
            hint="CS cost of January to June over the MRR billed in those six months.",
        ),
        Exercise(
            "cs-cost-team",
            9,
            "number",
            "oz8XiA==",
            0.001,
            "share",
            hint="A year of the team's cost over a year of revenue (12 x MRR).",
        ),
    ]
}
