"""Books the kit did not write: metric roles, the leakage guard, messy lines, the data warnings.

The end-to-end tests run on ``tests/foreign.py``, a client-style export written separately from
``cslab synth`` (CRM ids, weekly usage named WAU/sessions/reports_run/api_calls, billing-style lines
with zero-length lines and add-on overlaps, CRM columns written after churn, a mid-month last date,
EUR), with planted churn drivers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import cslab
from cslab import leakage, quality
from cslab.audit import run_audit
from cslab.cli import app
from cslab.data.roles import detect_roles, parse_roles
from tests.conftest import ROOT, write_folder
from tests.foreign import CHURN_DRIVERS, LEAKY_COLUMNS, METRIC_ROLES, write_foreign_book

GENERATOR_METRICS = ("active_users", "logins", "features_used")
QUICK = {"n_bootstrap": 2, "shap_sample": 200, "cox_sample": 3000}


# -- 1. no analysis depends on the generator's metric names ---------------------------------------
def test_no_analysis_names_a_generator_metric():
    """The generator's metrics are `active_users`, `logins`, `features_used`: no module but the
    generator (and the roles module, whose role names they are) may use them as metric columns."""
    offenders = []
    generator = ROOT / "cslab" / "data" / "synth"
    files = [p for p in (ROOT / "cslab").rglob("*.py") if generator not in p.parents]
    files += list((ROOT / "notebooks").glob("*.ipynb"))
    column = re.compile(r"usage_({})".format("|".join(GENERATOR_METRICS)))
    literal = re.compile(r"""["'](logins|features_used)["']""")
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern in (column, literal if path.name != "roles.py" else None):
            if pattern is not None and pattern.search(text):
                offenders.append(f"{path.relative_to(ROOT)}: {pattern.search(text).group(0)}")
    assert not offenders, offenders


# -- 2. metric roles ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "metrics, expected",
    [
        (["WAU", "sessions", "reports_run"], {"active_users": "WAU", "logins": "sessions"}),
        (
            ["Weekly Active Users", "Sign-ins", "Features"],
            {"active_users": "Weekly Active Users", "logins": "Sign-ins", "features_used": "Features"},
        ),
        (["monthly-users", "daily_logins"], {"active_users": "monthly-users", "logins": "daily_logins"}),
        (["DAU", "MAU"], {"active_users": "MAU"}),  # monthly over daily for a month's utilisation
        (["active_seats", "api_calls"], {"active_users": "active_seats"}),
        (["reports_run", "api_calls"], {}),
        (["WeeklyActiveUsers", "LoginCount"], {"active_users": "WeeklyActiveUsers", "logins": "LoginCount"}),
        (["total_users", "user_count", "seats_assigned"], {}),  # provisioned users are not active users
        (["users", "sessions"], {"active_users": "users", "logins": "sessions"}),
    ],
)
def test_roles_detected_from_common_names(metrics, expected):
    roles = detect_roles(metrics)
    assert roles.roles == expected
    for role in expected:
        assert "detected from the name" in roles.reasons[role]


def test_explicit_roles_win_and_a_missing_metric_is_an_error():
    roles = detect_roles(["WAU", "seats_in_use"], {"active_users": "seats_in_use"}, "set in cslab.toml")
    assert roles.roles["active_users"] == "seats_in_use" and roles.reasons["active_users"] == "set in cslab.toml"
    assert detect_roles(["WAU"], {"active_users": ""}).roles == {}  # switched off
    with pytest.raises(ValueError, match="'nope' is not a metric of the usage table"):
        detect_roles(["WAU"], {"active_users": "nope"})
    assert parse_roles("active_users:wau, logins=sessions") == {"active_users": "wau", "logins": "sessions"}
    with pytest.raises(ValueError, match="unknown role"):
        parse_roles("users=wau")


def _tiny_book(folder: Path, usage_metric: str = "seats_in_use", extra: dict | None = None) -> Path:
    tables = {
        "subscriptions": "account_id,start_date,end_date,mrr,seats\nA,2024-01-01,,100,10\n"
        "B,2024-01-01,2024-06-30,50,5\n",
        "usage": f"account_id,date,metric,value\nA,2024-03-31,{usage_metric},8\nB,2024-03-31,{usage_metric},2\n"
        "A,2024-06-30,x,1\n",
    }
    return write_folder(folder, {**tables, **(extra or {})})


def test_cslab_toml_sets_roles_and_reaches_utilisation(tmp_path):
    folder = _tiny_book(tmp_path / "d", extra={"cslab.toml": '[metric_roles]\nactive_users = "seats_in_use"\n'})
    data = cslab.load(folder)
    assert data.metric_roles.roles == {"active_users": "seats_in_use"}
    assert data.metric_roles.reasons["active_users"] == "set in cslab.toml"
    monthly = cslab.panel(data, as_of="2024-06-30")
    from cslab.features import build_dataset

    _, scoring = build_dataset(data, monthly, horizon_months=1)
    march = cslab.features._features_from_panel(monthly)
    row = march[(march["account_id"] == "A") & (march["month"] == "2024-03-01")]
    assert row["seat_utilisation"].iloc[0] == pytest.approx(0.8)
    assert "usage_seats_in_use" in scoring.columns


def test_explicit_role_naming_a_missing_metric_exits_2(tmp_path):
    folder = _tiny_book(tmp_path / "d", extra={"cslab.toml": '[metric_roles]\nactive_users = "wau"\n'})
    result = CliRunner().invoke(app, ["validate", str(folder)])
    assert result.exit_code == 2
    assert "cslab.toml: active_users = 'wau' is not a metric of the usage table" in result.output
    ok = _tiny_book(tmp_path / "e")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["audit", str(ok), "--out", str(out), "-p", "metric_roles=active_users:wau"])
    assert result.exit_code == 2 and "is not a metric of the usage table" in result.output
    for bad in ("bogus", "users=wau"):
        result = CliRunner().invoke(app, ["audit", str(ok), "--out", str(out), "-p", f"metric_roles={bad}"])
        assert result.exit_code == 2 and "metric_roles" in result.output, result.output
    assert not out.exists()


# -- 3. the leakage guard -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "column, leaky",
    [
        ("status", True),
        ("Churn Reason", True),
        ("cancellation_date", True),
        ("health_score", True),
        ("last_login_date", True),
        ("days_since_last_login", True),
        ("contract_end", True),
        ("renewal_outcome", True),
        ("is_active", True),
        ("terminated_on", True),
        ("industry", False),
        ("employees", False),
        ("segment", False),
        ("region", False),
        ("trend_category", False),
        ("spend_band", False),
        ("csat_score", False),
        ("nps_score", False),
        ("AccountStatus", True),
        ("LastLoginDate", True),
        ("IsActive", True),
        ("ContractEndDate", True),
        ("AnnualRevenue", False),
    ],
)
def test_leaky_names(column, leaky):
    assert (leakage.leaky_name(column) is not None) == leaky


def test_snapshot_screen_flags_the_tenure_in_disguise():
    import numpy as np

    rng = np.random.default_rng(0)
    tenure = rng.integers(1, 60, 500).astype(float)
    customers = pd.DataFrame(
        {
            "account_id": range(500),
            "event": rng.integers(0, 2, 500),
            "duration": tenure,
            "total_charges": tenure * 50 + rng.normal(0, 20, 500),
            "monthly_charges": rng.normal(50, 10, 500),
        }
    )
    screen = leakage.screen_snapshot(customers)
    assert screen.excluded == ["total_charges"] and "tenure in disguise" in screen.left_out[0]["reason"]
    kept = leakage.screen_snapshot(customers, include="total_charges")
    assert "total_charges" in kept.kept


# -- 4. messy lines -------------------------------------------------------------------------------
def test_zero_length_lines_dropped_longer_reversal_an_error(tmp_path):
    ok = write_folder(
        tmp_path / "ok",
        {
            "subscriptions": (
                "account_id,start_date,end_date,mrr\nA,2024-01-01,2024-03-31,10\nA,2024-04-01,2024-03-31,20\n"
                "A,2024-04-01,,30\n"
            )
        },
    )
    data = cslab.load(ok)
    assert data.zero_length_lines == 1 and len(data.subscriptions) == 2
    assert any("zero-length lines" in note and "line 3" in note for note in data.notes)
    bad = write_folder(
        tmp_path / "bad", {"subscriptions": ("account_id,start_date,end_date,mrr\nA,2024-04-01,2024-03-30,20\n")}
    )
    assert "end_date before start_date by more than a day in 1 row (line 2)" in cslab.validate(bad).format()


def test_one_currency_read_mixed_currencies_refused(tmp_path):
    one = write_folder(
        tmp_path / "one",
        {
            "subscriptions": (
                "account_id,start_date,end_date,mrr,currency\nA,2024-01-01,,10,eur\nB,2024-01-01,,20,EUR\n"
            )
        },
    )
    assert cslab.load(one).currency == "EUR"
    mixed = write_folder(
        tmp_path / "mixed",
        {
            "subscriptions": (
                "account_id,start_date,end_date,mrr,currency\nA,2024-01-01,,10,EUR\nB,2024-01-01,,20,GBP\n"
                "C,2024-01-01,,20,EUR\n"
            )
        },
    )
    result = CliRunner().invoke(app, ["validate", str(mixed)])
    assert result.exit_code == 2
    assert "column currency: more than one currency: EUR (2 rows), GBP (1 rows)" in result.output


def test_mid_month_last_date_moves_as_of_back(tmp_path):
    folder = write_folder(
        tmp_path / "d", {"subscriptions": ("account_id,start_date,end_date,mrr\nA,2024-01-01,,10\nB,2024-05-17,,20\n")}
    )
    data = cslab.load(folder)
    assert data.last_date() == pd.Timestamp("2024-05-17")
    assert data.default_as_of() == pd.Timestamp("2024-04-30")
    assert "2024-04-30" in data.as_of_note()
    full = write_folder(
        tmp_path / "f", {"subscriptions": ("account_id,start_date,end_date,mrr\nA,2024-01-01,,10\nB,2024-05-27,,20\n")}
    )
    assert cslab.load(full).default_as_of() == pd.Timestamp("2024-05-31")
    assert cslab.load(full).as_of_note() is None


def test_month_stamped_data_keeps_its_last_month(tmp_path):
    """Monthly lines and usage dated on the 1st describe whole months: June 1st is not mid-June."""
    subs = "account_id,start_date,end_date,mrr\n" + "".join(
        f"{a},2025-{m:02d}-01,2025-{m:02d}-{28 if m == 2 else 30 if m in (4, 6) else 31},10\n"
        for a in "ABC"
        for m in range(1, 7)
    )
    usage = "account_id,date,metric,value\n" + "".join(
        f"{a},2025-{m:02d}-01,MAU,3\n" for a in "ABC" for m in range(1, 7)
    )
    folder = write_folder(tmp_path / "d", {"subscriptions": subs, "usage": usage})
    data = cslab.load(folder)
    assert data.last_date() == pd.Timestamp("2025-06-01")
    assert data.default_as_of() == pd.Timestamp("2025-06-30") and data.as_of_note() is None


def test_accounts_columns_named_like_panel_columns_are_not_screened(tmp_path):
    """A CRM `plan` or `seats` yields to the lines' own: it is neither screened nor dropped."""
    from cslab.data.synth import generate
    from cslab.features import build_dataset

    folder = generate(n_accounts=300, n_months=18, seed=8).write(tmp_path / "book")
    accounts = pd.read_csv(folder / "accounts.csv", dtype=str, keep_default_na=False)
    accounts["plan"], accounts["seats"] = "Pro", "10"
    accounts.to_csv(folder / "accounts.csv", index=False)
    data = cslab.load(folder)
    monthly = cslab.panel(data)
    screen = leakage.screen_attributes(monthly)
    assert not {"plan", "seats"} & (set(screen.screened) | set(screen.excluded))
    dataset, _ = build_dataset(data, screen.apply(monthly), horizon_months=3)
    assert dataset["seats"].notna().any()


def test_a_flag_held_only_by_churners_is_left_out():
    """A 0/1 column set for half of the churners and nobody else records churn (AUC alone ~0.75)."""
    import numpy as np

    rng = np.random.default_rng(1)
    churned = rng.random(800) < 0.3
    customers = pd.DataFrame(
        {
            "account_id": range(800),
            "event": churned.astype(int),
            "win_flag": (churned & (rng.random(800) < 0.5)).astype(int),
            "employees": rng.integers(5, 500, 800),
        }
    )
    screen = leakage.screen_snapshot(customers)
    assert screen.excluded == ["win_flag"] and "holds nearly only churned accounts" in screen.left_out[0]["reason"]


def test_snapshot_blank_text_cells_reach_the_model(tmp_path):
    import numpy as np

    from cslab import drivers, features

    rng = np.random.default_rng(2)
    n = 400
    frame = pd.DataFrame(
        {
            "churned": rng.integers(0, 2, n),
            "months": rng.integers(1, 40, n),
            "plan": rng.choice(["basic", "pro", ""], n),
            "seats": rng.integers(1, 50, n),
        }
    )
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    data = cslab.load_customers(path, event_col="churned", duration_col="months")
    assert data.customers["plan"].map(type).isin([str, float]).all()  # np.nan, never pd.NA
    dataset = features.snapshot_dataset(data.customers)
    train, _ = drivers.stratified_split(dataset)
    drivers.ChurnModel("trees").fit(train)


def test_plan_changes_left_open_are_warned(tmp_path):
    """An export that keeps every plan change as an open line doubles MRR: the warning says so."""
    from cslab.data.synth import generate

    folder = generate(n_accounts=300, n_months=20, seed=4).write(tmp_path / "book")
    subs = pd.read_csv(folder / "subscriptions.csv", dtype=str, keep_default_na=False)
    subs["end_date"] = ""  # every line left running
    reopened = pd.concat(
        [
            subs,
            subs.assign(
                start_date=subs["start_date"].str[:4].astype(int).add(1).astype(str) + subs["start_date"].str[4:]
            ),
        ]
    )
    reopened.to_csv(folder / "subscriptions.csv", index=False)
    data = cslab.load(folder)
    monthly = cslab.panel(data)
    codes = {w["code"]: w["message"] for w in quality.data_warnings(data, monthly)}
    assert "overlapping_lines" in codes and "of the same product/plan" in codes["overlapping_lines"]
    overlaps = quality.line_overlaps(data.subscriptions)
    assert overlaps["share_accounts_same_plan_overlap"] > 0.5


# -- 5/6. the foreign book, end to end ------------------------------------------------------------
@pytest.fixture(scope="module")
def foreign_audit(tmp_path_factory):
    base = tmp_path_factory.mktemp("foreign")
    truth = write_foreign_book(base / "data", n_accounts=1500, n_months=30, seed=7)
    out = base / "out"
    result = run_audit(base / "data", out, client="Nordwerk", params=QUICK, progress=False, echo=lambda _: None)
    return truth, result, out, json.loads((out / "results.json").read_text())


def test_foreign_book_runs_and_says_what_it_decided(foreign_audit):
    truth, result, out, results = foreign_audit
    statuses = {n: (r.status, r.error) for n, r in result.runs.items()}
    assert all(s == "ok" for s, _ in statuses.values()), statuses
    assert results["metric_roles"] == METRIC_ROLES
    assert results["currency"] == "EUR"
    assert results["as_of"] == "2025-05-31"  # last date 2025-06-17: the unfinished June is left out
    codes = {w["code"] for w in results["data_warnings"]}
    assert {"zero_length_lines", "mid_month_as_of", "leaky_attributes"} <= codes
    assert "overlapping_lines" not in codes  # add-on lines of another product are legitimate
    left_out = {item["column"] for item in results["left_out_attributes"]}
    assert set(LEAKY_COLUMNS) <= left_out
    assert not {"industry", "region", "employees"} & left_out
    index = (out / "index.html").read_text()
    assert "Data warnings" in index and "Left out of the models" in index
    assert "account_tier_code" in index and "AUC" in index
    for page in out.glob("*.html"):  # every amount in the book's currency (images' base64 aside)
        text = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+", "", page.read_text())
        assert "USD" not in text, page.name
    report = (out / "01_cohort_retention.html").read_text()
    assert "Input profile" in report and "EUR" in report
    # activity types written "Business Review" are counted under the programme business_review
    assert ">nan<" not in (out / "03_cs_roi.html").read_text()
    assert "active users = &#x27;WAU&#x27;" in report or "active users = 'WAU'" in report


def test_foreign_book_planted_drivers_on_top_and_no_leak(foreign_audit):
    truth, _, _, results = foreign_audit
    churn = results["notebooks"]["02_churn_drivers"]["results"]
    top = churn["top_features"]
    assert not set(LEAKY_COLUMNS) & set(top)
    assert churn["auc"] < 0.95  # a leaked column would give ~0.99
    assert churn["auc"] > 0.70
    ranks = {driver: top.index(driver) for driver in CHURN_DRIVERS if driver in top}
    assert set(ranks) == set(CHURN_DRIVERS), top
    assert sum(rank < 5 for rank in ranks.values()) >= 2, top  # two of three in the top five
    assert max(ranks.values()) < 10, top
    expansion = results["notebooks"]["04_expansion_opportunity"]["results"]
    assert expansion["share_at_capacity"] is not None  # utilisation from WAU, not from our names
    assert results["notebooks"]["01_cohort_retention"]["results"]["nrr_12m"] < 2


def test_mixed_currency_book_exits_2(tmp_path):
    write_foreign_book(tmp_path / "d", n_accounts=200, n_months=14, second_currency="USD")
    result = CliRunner().invoke(app, ["audit", str(tmp_path / "d"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert re.search(r"more than one currency: EUR \([\d,]+ rows\), USD \([\d,]+ rows\)", result.output)
    assert "Traceback" not in result.output


# -- 6. every optional column of accounts is optional in every notebook ---------------------------
@pytest.fixture(scope="module")
def small_book(tmp_path_factory):
    from cslab.data.synth import generate

    return generate(n_accounts=1000, n_months=24, seed=21).write(tmp_path_factory.mktemp("optional") / "book")


def _copy_with_accounts(book: Path, folder: Path, change) -> Path:
    import shutil

    shutil.copytree(book, folder)
    accounts = pd.read_csv(folder / "accounts.csv", dtype=str, keep_default_na=False)
    change(accounts).to_csv(folder / "accounts.csv", index=False)
    return folder


@pytest.mark.parametrize("column", ["name", "signup_date", "segment", "industry", "region", "csm_id", "employees"])
def test_each_optional_accounts_column_is_optional(small_book, column, tmp_path):
    """The notebooks that model account attributes run without each optional column: 02 always,
    04 too for the columns it reads by name (segment for peers and NRR parts, name and csm_id for
    the pipeline); the blanks test below runs all four."""
    from cslab.data.contract import TABLES

    assert column in TABLES["accounts"].optional
    folder = _copy_with_accounts(small_book, tmp_path / "d", lambda a: a.drop(columns=column))
    only = ["02_churn_drivers"] + (["04_expansion_opportunity"] if column in {"segment", "name", "csm_id"} else [])
    result = run_audit(
        folder,
        tmp_path / "out",
        only=only,
        params={"shap_sample": 150, "cox_sample": 2000},
        progress=False,
        echo=lambda _: None,
    )
    statuses = {n: (r.status, r.error) for n, r in result.runs.items()}
    assert all(status == "ok" for status, _ in statuses.values()), statuses


def test_blanks_in_every_text_attribute(small_book, tmp_path):
    """A fifth of every text attribute blank (as CRM exports have them): every notebook still runs."""
    import numpy as np

    rng = np.random.default_rng(3)

    def blank(accounts):
        for column in ("name", "segment", "industry", "region", "csm_id"):
            accounts.loc[rng.random(len(accounts)) < 0.2, column] = ""
        return accounts

    folder = _copy_with_accounts(small_book, tmp_path / "d", blank)
    result = run_audit(folder, tmp_path / "out", params=QUICK, progress=False, echo=lambda _: None)
    statuses = {n: (r.status, r.error) for n, r in result.runs.items()}
    assert all(status == "ok" for status, _ in statuses.values()), statuses


def test_near_copies_of_a_signal_do_not_make_the_outcome_model_singular():
    import numpy as np

    from cslab.effects import _design

    rng = np.random.default_rng(0)
    minutes = rng.gamma(2, 30, 500)
    rows = pd.DataFrame(
        {
            "usage_minutes": minutes,
            "usage_hours": minutes / 60 + 1e-9 * rng.random(500),
            "tickets_90d": rng.poisson(1, 500).astype(float),
        }
    )
    assert list(_design(rows, list(rows.columns), [])) == ["usage_minutes", "tickets_90d"]


def test_implausible_nrr_is_warned_with_its_likely_cause(tmp_path):
    """Each plan change kept as an open line of the same plan triples MRR: NRR 300% is flagged."""
    lines = ["account_id,start_date,end_date,mrr,plan"]
    for i in range(20):
        for start in ("2023-01-01", "2023-06-01", "2023-09-01"):
            lines.append(f"C{i:03d},{start},,100,Pro")
    folder = write_folder(tmp_path / "d", {"subscriptions": "\n".join(lines) + "\n"})
    data = cslab.load(folder)
    monthly = cslab.panel(data, as_of="2024-01-31")
    codes = {w["code"]: w["message"] for w in quality.data_warnings(data, monthly, as_of_given=True)}
    assert "NRR is 300%" in codes["implausible_nrr"]
    assert "overlapping lines of the same plan are summed" in codes["implausible_nrr"]
    assert "overlapping_lines" in codes and "short_history" not in codes


def test_summary_says_roles_and_warnings(tmp_path):
    write_foreign_book(tmp_path / "d", n_accounts=200, n_months=14)
    result = CliRunner().invoke(app, ["summary", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert "active users = 'WAU'" in result.output
    assert "data warning: mid_month_as_of:" in result.output
    assert "data warning: zero_length_lines:" in result.output


def test_a_legacy_category_of_old_accounts_is_not_mistaken_for_a_churn_record():
    """Every 2019 signup has left: their legacy plan holds only churners because of age, not churn."""
    import numpy as np

    from cslab.leakage import _churner_category

    rng = np.random.default_rng(4)
    old = np.r_[np.ones(60, bool), np.zeros(440, bool)]
    label = np.where(old, 1, (rng.random(500) < 0.2).astype(int))
    plan = pd.Series(np.where(old, "Legacy", rng.choice(["Pro", "Team"], 500)))
    expected = pd.Series(label).groupby(old).transform("mean").to_numpy()
    assert _churner_category(label, plan, 10, 0.95) == ("Legacy", 1.0, 60)  # naive: flagged
    assert _churner_category(label, plan, 10, 0.95, expected) is None  # its age explains it
