"""Every metric's definition in plain words, for reports and teaching."""

from __future__ import annotations

import pandas as pd

__all__ = ["metric_definitions"]


_DEFINITIONS = [
    (
        "MRR",
        "sum of an account's subscription lines running on the month's last day",
        "what the customers pay per month at the month-end snapshot; $0 accounts are not customers",
        "cslab.panel",
    ),
    (
        "New MRR",
        "MRR of accounts paying for the first time (or back after the reactivation window)",
        "revenue from new customers",
        "mrr_movements",
    ),
    (
        "Expansion MRR",
        "MRR now − MRR last month, for accounts paying more than last month",
        "upsell, more seats, higher plans",
        "mrr_movements",
    ),
    (
        "Contraction MRR",
        "MRR last month − MRR now, for accounts still paying but less",
        "downgrades and fewer seats",
        "mrr_movements",
    ),
    (
        "Churn MRR",
        "MRR last month of accounts that stopped paying (counted at the end of the paid period)",
        "revenue lost with customers who left",
        "mrr_movements",
    ),
    (
        "Reactivation MRR",
        "MRR of accounts paying again within the reactivation window after churning",
        "revenue won back from former customers",
        "mrr_movements",
    ),
    (
        "Net new MRR",
        "new + expansion + reactivation − contraction − churn",
        "how much MRR grew in the month",
        "mrr_movements",
    ),
    (
        "MRR bridge",
        "start MRR + new + expansion + reactivation − contraction − churn = end MRR",
        "where the revenue came from and where it went, from one month to another",
        "mrr_bridge",
    ),
    (
        "Logo churn (monthly)",
        "churned accounts in the window / Σ over its months of the accounts active at the start of the month",
        "share of customers who stop paying in a typical month",
        "logo_churn_rate",
    ),
    (
        "Logo churn (annual)",
        "1 − (1 − monthly logo churn)^12",
        "the monthly rate compounded over a year",
        "logo_churn_rate",
    ),
    (
        "Gross MRR churn (monthly)",
        "Σ (churn + contraction) / Σ start MRR over the window's months",
        "revenue lost each month before any gains (ChartMogul, B2B)",
        "revenue_churn",
    ),
    (
        "Net MRR churn (monthly)",
        "Σ (churn + contraction − expansion − reactivation) / Σ start MRR over the window's months",
        ("revenue lost net of what customers added; negative means the base grows on its own (ChartMogul, B2B)"),
        "revenue_churn",
    ),
    (
        "MRR churn (annualised)",
        "1 − (1 − monthly rate)^12",
        "a monthly revenue churn rate compounded over a year",
        "revenue_churn",
    ),
    (
        "NRR (net revenue retention)",
        "MRR now of the accounts active 12 months ago / their MRR 12 months ago",
        (
            "revenue kept from last year's customers, expansion included; above 100% the base grows "
            "without new customers"
        ),
        "revenue_retention",
    ),
    (
        "GRR (gross revenue retention)",
        "Σ over those accounts of min(MRR now, MRR 12 months ago) / their MRR 12 months ago",
        "revenue kept from last year's customers, no account counted above what it paid then",
        "revenue_retention",
    ),
    (
        "Expansion rate",
        "the cohort's expansion MRR over the 12 months / its MRR 12 months ago",
        "what last year's customers added",
        "revenue_retention",
    ),
    (
        "Contraction rate",
        "the cohort's contraction MRR over the 12 months / its MRR 12 months ago",
        "what last year's customers downgraded",
        "revenue_retention",
    ),
    (
        "Churn rate (revenue)",
        "the cohort's churn MRR over the 12 months / its MRR 12 months ago",
        "what last year's customers who left took with them",
        "revenue_retention",
    ),
    (
        "Reactivation rate",
        "the cohort's reactivation MRR over the 12 months / its MRR 12 months ago",
        "what last year's customers brought back after leaving",
        "revenue_retention",
    ),
    (
        "NRR decomposition",
        "NRR = 1 + expansion − contraction − churn + reactivation rates",
        "NRR is 100% plus gains minus losses of the starting customers",
        "revenue_retention",
    ),
    (
        "Headwind (Gainsight)",
        "churn rate + contraction rate",
        "what the starting customers took away",
        "revenue_retention",
    ),
    ("Tailwind (Gainsight)", "expansion rate", "what the starting customers added", "revenue_retention"),
    (
        "Logo cohort retention",
        "customers of a signup cohort active at age k / the cohort's size",
        "share of a cohort still paying k months (or quarters) after signing up",
        "cohort_table",
    ),
    (
        "Revenue cohort retention",
        "a signup cohort's MRR at age k / its customers' first-month MRR",
        "the cohort's revenue k periods on, net of churn and expansion",
        "cohort_table",
    ),
    (
        "Kaplan–Meier survival",
        "S(t) = Π over churn times t_i <= t of (1 − d_i / n_i)",
        (
            "share of customers still paying t months after their first payment, using customers "
            "observed for shorter than t as long as they were watched"
        ),
        "survival.kaplan_meier",
    ),
    (
        "Median lifetime",
        "the first t at which S(t) <= 50%",
        "months until half of the customers have left; not reached if survival stays above 50%",
        "survival.median_lifetime",
    ),
    (
        "Log-rank test",
        "χ² of observed vs expected churns per group at each churn time",
        "whether groups' survival curves differ by more than chance",
        "survival.logrank_by",
    ),
]


def metric_definitions() -> pd.DataFrame:
    """Every metric of this module (and the survival ones) with its formula in plain words.

    Returns
    -------
    DataFrame
        ``metric``, ``formula``, ``in_plain_words`` and ``function`` (where cslab computes it).

    Examples
    --------
    >>> metric_definitions().set_index("metric").loc["NRR (net revenue retention)", "formula"]
    'MRR now of the accounts active 12 months ago / their MRR 12 months ago'
    """
    return pd.DataFrame(_DEFINITIONS, columns=["metric", "formula", "in_plain_words", "function"])
