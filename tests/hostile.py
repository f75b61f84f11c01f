"""Hostile inputs: a corpus of malformed data folders, each made from a small generated book.

Nothing here is committed as data: :func:`build` writes the generated book
(``cslab.data.synth.generate``) into a folder and bends one thing in it. Each case says what the kit
must do with it:

* ``invalid``: ``cslab validate`` and ``cslab audit`` exit 2, and every ``expect`` string appears in
  their output (file, column, count and example lines);
* ``fixed``: odd but usable; ``cslab validate`` exits 0 and says what it fixed (the ``expect``
  strings), and the loaded tables equal those of the untouched book.

Most cases change data rows 3, 10 and 17 of a table, which a spreadsheet shows on lines 5, 12 and
19 (the header is line 1): ``LINES`` is how the report must name them.

Examples
--------
>>> from tests.hostile import CASES, build
>>> folder = build("negative_mrr", tmp_path / "case")  # doctest: +SKIP
>>> CASES["negative_mrr"].expect  # doctest: +SKIP
('error: subscriptions.csv: column mrr: negative in 3 rows (lines 5, 12, 19)',)
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import random
import shutil
import sys
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from cslab.data.synth import generate

__all__ = ["Case", "CASES", "BOOK", "AS_OF", "ROWS", "LINES", "build", "write_book", "run_cli"]

BOOK = {"n_accounts": 150, "n_months": 18, "seed": 11}
AS_OF = "2024-06-30"  # the book's last day: 18 months from 2023-01
LATE = "2025-10-15"  # after the book's as-of, before today: a mistyped year
ROWS = (3, 10, 17)  # data rows most cases change ...
LINES = "in 3 rows (lines 5, 12, 19)"  # ... and how the report names them
BLANK_LINES = 1_000_000


@dataclass(frozen=True)
class Case:
    """One hostile input: how to make it from a book folder and what the kit must answer."""

    name: str
    mutate: Callable[[Path], None]
    outcome: Literal["invalid", "fixed"]
    expect: tuple[str, ...]
    doc: str = ""


CASES: dict[str, Case] = {}


def case(outcome: Literal["invalid", "fixed"], *expect: str):
    """Register the decorated mutation as a case of the corpus."""

    def register(mutate: Callable[[Path], None]) -> Callable[[Path], None]:
        CASES[mutate.__name__] = Case(mutate.__name__, mutate, outcome, expect, (mutate.__doc__ or "").strip())
        return mutate

    return register


@functools.lru_cache(maxsize=1)
def _book():
    return generate(**BOOK)


def write_book(folder: Path) -> Path:
    """Write the untouched generated book into ``folder``."""
    return _book().write(folder)


def build(name: str, folder: Path, base: Path | None = None) -> Path:
    """Write case ``name`` into ``folder`` (a copy of ``base`` when given, else a fresh book)."""
    folder = Path(folder)
    if base is not None:
        shutil.copytree(base, folder)
    else:
        write_book(folder)
    CASES[name].mutate(folder)
    return folder


# --------------------------------------------------------------------------------------------
# Editing a book's CSV files as text tables
# --------------------------------------------------------------------------------------------
def _read(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)


def _write(folder: Path, table: str, frame: pd.DataFrame, **kw) -> None:
    frame.to_csv(folder / f"{table}.csv", index=False, **kw)


def _set(folder: Path, table: str, column: str, values, rows=ROWS) -> None:
    frame = _read(folder, table)
    frame.loc[list(rows), column] = values
    _write(folder, table, frame)


def _drop_column(folder: Path, table: str, column: str) -> None:
    _write(folder, table, _read(folder, table).drop(columns=[column]))


def _text(folder: Path, table: str) -> str:
    return (folder / f"{table}.csv").read_text(encoding="utf-8")


def _shift_days(values: pd.Series, days: int) -> pd.Series:
    return (pd.to_datetime(values) + pd.Timedelta(days=days)).dt.strftime("%Y-%m-%d")


# --------------------------------------------------------------------------------------------
# Missing required columns, one per table
# --------------------------------------------------------------------------------------------
def _missing(table: str, column: str) -> None:
    def mutate(folder: Path) -> None:
        _drop_column(folder, table, column)

    mutate.__name__ = f"missing_{table}_{column}"
    mutate.__doc__ = f"{table}.csv without its required column {column}."
    case("invalid", f"error: {table}.csv: column {column}: required column missing")(mutate)


for _table, _column in [
    ("subscriptions", "account_id"),
    ("subscriptions", "start_date"),
    ("subscriptions", "mrr"),
    ("accounts", "account_id"),
    ("usage", "value"),
    ("cs_activities", "activity_type"),
    ("tickets", "opened_at"),
    ("outcomes", "committed_date"),
    ("cs_costs", "cost"),
]:
    _missing(_table, _column)


@case("invalid", "no subscriptions file")
def missing_subscriptions_file(folder):
    """No subscriptions table at all: the one required table."""
    (folder / "subscriptions.csv").unlink()


@case("invalid", "error: subscriptions.csv.gz: a second file for table subscriptions (also subscriptions.csv)")
def two_files_for_one_table(folder):
    """subscriptions.csv and subscriptions.csv.gz side by side: which one is meant?"""
    (folder / "subscriptions.csv.gz").write_bytes(gzip.compress((folder / "subscriptions.csv").read_bytes()))


# --------------------------------------------------------------------------------------------
# Wrong types
# --------------------------------------------------------------------------------------------
@case("invalid", f"error: subscriptions.csv: column mrr: not a number {LINES}")
def text_in_mrr(folder):
    """MRR written with a currency sign and thousands separator, as n/a, as a word."""
    _set(folder, "subscriptions", "mrr", ["$1,200", "n/a", "twelve"])


@case("invalid", f"error: subscriptions.csv: column seats: not a number {LINES}")
def text_in_seats(folder):
    _set(folder, "subscriptions", "seats", ["ten", "5 seats", "?"])


@case("invalid", f"error: usage.csv: column value: not a number {LINES}")
def text_in_usage_value(folder):
    _set(folder, "usage", "value", ["lots", "12abc", "nan"])


@case("invalid", f"error: cs_costs.csv: column cost: not a number {LINES}")
def text_in_cs_costs(folder):
    _set(folder, "cs_costs", "cost", ["12k", "N/A", "€5000"])


@case("invalid", f"error: subscriptions.csv: column mrr: empty {LINES}")
def blank_mrr(folder):
    _set(folder, "subscriptions", "mrr", "")


# --------------------------------------------------------------------------------------------
# Unparseable and impossible dates
# --------------------------------------------------------------------------------------------
@case("invalid", f"error: subscriptions.csv: column start_date: unparseable date {LINES}")
def unparseable_start_date(folder):
    """30 February, month 13, a word."""
    _set(folder, "subscriptions", "start_date", ["2024-02-30", "2023-13-01", "someday"])


@case("invalid", f"error: usage.csv: column date: unparseable date {LINES}")
def unparseable_usage_date(folder):
    _set(folder, "usage", "date", ["n/a", "2024-00-10", "yesterday"])


@case("invalid", f"error: tickets.csv: column opened_at: unparseable date {LINES}")
def unparseable_ticket_date(folder):
    _set(folder, "tickets", "opened_at", ["tomorrow", "2023-02-29", "2023-01-32"])


@case("invalid", f"error: outcomes.csv: column committed_date: unparseable date {LINES}")
def unparseable_outcome_date(folder):
    _set(folder, "outcomes", "committed_date", ["Q3 2023", "TBD", "2023-06-31"])


@case("invalid", f"error: subscriptions.csv: column end_date: end_date before start_date by more than a day {LINES}")
def end_before_start(folder):
    subs = _read(folder, "subscriptions")
    subs.loc[list(ROWS), "end_date"] = _shift_days(subs.loc[list(ROWS), "start_date"], -30)
    _write(folder, "subscriptions", subs)


@case("invalid", f"error: tickets.csv: column closed_at: closed_at before opened_at {LINES}")
def closed_before_opened(folder):
    tickets = _read(folder, "tickets")
    tickets.loc[list(ROWS), "closed_at"] = _shift_days(tickets.loc[list(ROWS), "opened_at"], -5)
    _write(folder, "tickets", tickets)


@case(
    "invalid",
    f"error: subscriptions.csv: column start_date: impossible date before 1980-01-01 "
    f"(a placeholder such as 1900-01-01?) {LINES}",
)
def start_date_in_1900(folder):
    _set(folder, "subscriptions", "start_date", "1900-01-01")


@case(
    "invalid",
    f"error: cs_activities.csv: column date: impossible date before 1980-01-01 "
    f"(a placeholder such as 1900-01-01?) {LINES}",
)
def activity_in_1900(folder):
    _set(folder, "cs_activities", "date", ["1900-01-01", "1899-12-31", "1901-07-04"])


@case(
    "invalid",
    f"error: accounts.csv: column signup_date: impossible date before 1980-01-01 "
    f"(a placeholder such as 1900-01-01?) {LINES}",
)
def signup_at_unix_epoch(folder):
    _set(folder, "accounts", "signup_date", "1970-01-01")


_AFTER = f"date after the data's as-of ({AS_OF}; later than 2024-07-31) {LINES}"


@case("invalid", f"error: cs_activities.csv: column date: {_AFTER}")
def activity_after_as_of(folder):
    """Three activities dated 2025 in a book that ends in June 2024 (a mistyped year)."""
    _set(folder, "cs_activities", "date", LATE)


@case("invalid", f"error: tickets.csv: column opened_at: {_AFTER}")
def ticket_after_as_of(folder):
    tickets = _read(folder, "tickets")
    tickets.loc[list(ROWS), ["opened_at", "closed_at"]] = [LATE, ""]
    _write(folder, "tickets", tickets)


@case("invalid", f"error: usage.csv: column date: {_AFTER}")
def usage_after_as_of(folder):
    _set(folder, "usage", "date", "2025-10-31")


@case("invalid", f"error: outcomes.csv: column achieved_date: {_AFTER}")
def outcome_achieved_after_as_of(folder):
    _set(folder, "outcomes", "achieved_date", LATE)


@case("invalid", f"error: outcomes.csv: column committed_date: {_AFTER}")
def outcome_committed_in_2099(folder):
    _set(folder, "outcomes", "committed_date", "2099-01-01")


@case(
    "invalid",
    "error: subscriptions.csv: column start_date: mixed date formats: dates written like ",
    f"not YYYY-MM-DD (day and month order cannot be told apart) {LINES}",
)
def mixed_date_formats_subscriptions(folder):
    """Three start dates written DD/MM/YYYY among ISO dates."""
    subs = _read(folder, "subscriptions")
    subs.loc[list(ROWS), "start_date"] = pd.to_datetime(subs.loc[list(ROWS), "start_date"]).dt.strftime("%d/%m/%Y")
    _write(folder, "subscriptions", subs)


@case(
    "invalid",
    "error: usage.csv: column date: mixed date formats: dates written like ",
    f"not YYYY-MM-DD (day and month order cannot be told apart) {LINES}",
)
def mixed_date_formats_usage(folder):
    """Three usage dates written MM/DD/YYYY among ISO dates."""
    usage = _read(folder, "usage")
    usage.loc[list(ROWS), "date"] = pd.to_datetime(usage.loc[list(ROWS), "date"]).dt.strftime("%m/%d/%Y")
    _write(folder, "usage", usage)


@case(
    "invalid",
    "error: tickets.csv: column opened_at: dates written like ",
    "error: tickets.csv: column closed_at: dates written like ",
    "not YYYY-MM-DD (day and month order cannot be told apart) in ",
)
def european_dates_tickets(folder):
    """Every ticket date written DD.MM.YYYY (a European spreadsheet export)."""
    tickets = _read(folder, "tickets")
    for column in ("opened_at", "closed_at"):
        dates = pd.to_datetime(tickets[column].where(tickets[column].ne("")))
        tickets[column] = dates.dt.strftime("%d.%m.%Y").fillna("")
    _write(folder, "tickets", tickets)


# --------------------------------------------------------------------------------------------
# Impossible numbers, duplicates, orphans
# --------------------------------------------------------------------------------------------
@case("invalid", f"error: subscriptions.csv: column mrr: negative {LINES}")
def negative_mrr(folder):
    _set(folder, "subscriptions", "mrr", ["-250", "-0.01", "-1e3"])


@case("invalid", f"error: subscriptions.csv: column seats: negative {LINES}")
def negative_seats(folder):
    _set(folder, "subscriptions", "seats", "-3")


@case("invalid", f"error: subscriptions.csv: column mrr: number too large (1e15 or more, or infinite) {LINES}")
def huge_mrr(folder):
    _set(folder, "subscriptions", "mrr", ["1e308", "99999999999999999999", "1e309"])


@case("invalid", f"error: subscriptions.csv: column seats: number too large (1e15 or more, or infinite) {LINES}")
def huge_seats(folder):
    _set(folder, "subscriptions", "seats", "99999999999999999999")


@case("invalid", f"error: usage.csv: column value: number too large (1e15 or more, or infinite) {LINES}")
def huge_usage_value(folder):
    _set(folder, "usage", "value", ["1e308", "99999999999999999999", "inf"])


@case("invalid", f"error: accounts.csv: column account_id: duplicate values {LINES}")
def duplicate_account_ids(folder):
    accounts = _read(folder, "accounts")
    accounts.loc[[ROWS[1], ROWS[2]], "account_id"] = accounts.loc[ROWS[0], "account_id"]
    _write(folder, "accounts", accounts)


@case(
    "invalid",
    f"error: subscriptions.csv: column account_id: account ids not in accounts (e.g. ZZ901, ZZ902, ZZ903) {LINES}",
)
def orphan_subscriptions(folder):
    _set(folder, "subscriptions", "account_id", ["ZZ901", "ZZ902", "ZZ903"])


@case("invalid", f"error: usage.csv: column account_id: account ids not in accounts (e.g. ZZ901, ZZ902, ZZ903) {LINES}")
def orphan_usage(folder):
    _set(folder, "usage", "account_id", ["ZZ901", "ZZ902", "ZZ903"])


@case("invalid", f"error: cs_activities.csv: column account_id: account ids not in accounts (e.g. ZZ901) {LINES}")
def orphan_cs_activities(folder):
    _set(folder, "cs_activities", "account_id", "ZZ901")


@case(
    "invalid",
    "error: subscriptions.csv: column account_id: account ids not in accounts",
    f"; 3 match an account id but for upper/lower case, and ids are case-sensitive {LINES}",
)
def ids_differing_in_case(folder):
    """Three subscription lines whose account id is written in lower case (a00003 for A00003).

    Ids are compared exactly: CRM keys such as Salesforce's 15-character ids differ only in case,
    so folding case could merge two customers. They are orphans, and the line says why.
    """
    subs = _read(folder, "subscriptions")
    subs.loc[list(ROWS), "account_id"] = subs.loc[list(ROWS), "account_id"].str.lower()
    _write(folder, "subscriptions", subs)


# --------------------------------------------------------------------------------------------
# Files that are not CSV text
# --------------------------------------------------------------------------------------------
@case("invalid", "error: subscriptions.csv: is empty")
def empty_subscriptions(folder):
    (folder / "subscriptions.csv").write_bytes(b"")


@case("invalid", "error: usage.csv: is empty")
def empty_usage(folder):
    (folder / "usage.csv").write_bytes(b"\n\n")


@case("invalid", "error: accounts.csv: has a header but no data rows")
def header_only_accounts(folder):
    (folder / "accounts.csv").write_text(_text(folder, "accounts").split("\n", 1)[0] + "\n")


@case("invalid", "error: usage.csv: has a header but no data rows")
def header_only_usage(folder):
    (folder / "usage.csv").write_text("account_id,date,metric,value\n")


@case("invalid", "error: subscriptions.csv: is a zip archive or an Excel workbook (.xlsx), not a CSV")
def xlsx_named_csv(folder):
    """An Excel workbook saved as subscriptions.csv (a zip of XML files)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/worksheets/sheet1.xml", _text(folder, "subscriptions"))
    (folder / "subscriptions.csv").write_bytes(buffer.getvalue())


@case("invalid", "error: tickets.csv: is not a text file (binary content)")
def random_bytes_csv(folder):
    (folder / "tickets.csv").write_bytes(random.Random(3).randbytes(20_000))


@case("invalid", "error: usage.csv: is not a text file (binary content)")
def png_named_usage_csv(folder):
    (folder / "usage.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)


@case("invalid", "error: accounts.csv: is UTF-16 text")
def utf16_accounts(folder):
    """accounts.csv saved as Excel's 'Unicode text': UTF-16 with a byte-order mark."""
    (folder / "accounts.csv").write_bytes(_text(folder, "accounts").encode("utf-16"))


@case("invalid", "error: usage.csv: is UTF-16 text")
def utf16_usage_no_bom(folder):
    (folder / "usage.csv").write_bytes(_text(folder, "usage").encode("utf-16-le"))


@case(
    "invalid",
    "error: accounts.csv: is not valid UTF-8 (byte 0xe9 on line 5; 3 lines in all: 5, "
    "12, 19; column name); save it as UTF-8 (it reads as Latin-1 / Windows-1252)",
)
def latin1_accounts(folder):
    """Three company names with accents, the file saved as Latin-1."""
    accounts = _read(folder, "accounts")
    accounts.loc[list(ROWS), "name"] = ["Société Générale", "Müller & Söhne GmbH", "Café Olé SA"]
    _write(folder, "accounts", accounts, encoding="latin-1")


@case("invalid", "error: usage.csv: is not valid UTF-8 (byte 0xe9 on line 5; 3 lines in all: 5, 12, 19; column metric)")
def latin1_usage(folder):
    _set(folder, "usage", "metric", "données")
    (folder / "usage.csv").write_bytes(_text(folder, "usage").encode("latin-1"))


@case(
    "invalid",
    "error: usage.csv: is not valid UTF-8 (byte 0xe9 on line 3002; 3 lines in all: 3002, 3003, 3004; column metric)",
)
def latin1_deep_in_usage(folder):
    """Latin-1 bytes only past the first 64 kB of usage.csv, which DuckDB finds while scanning."""
    usage = _read(folder, "usage")
    usage.loc[[3000, 3001, 3002], "metric"] = "données"
    (folder / "usage.csv").write_bytes(usage.to_csv(index=False).encode("latin-1"))


# --------------------------------------------------------------------------------------------
# Broken CSV layout
# --------------------------------------------------------------------------------------------
@case("invalid", f"error: accounts.csv: more cells than the header's 8 (a separator inside an unquoted value?) {LINES}")
def unquoted_comma_in_names(folder):
    """Company names holding a comma, written without quotes (a hand-made export)."""
    lines = _text(folder, "accounts").split("\n")
    for row in ROWS:
        cells = lines[row + 1].split(",")
        cells[1] = cells[1].replace(" ", ", ", 1)
        lines[row + 1] = ",".join(cells)
    (folder / "accounts.csv").write_text("\n".join(lines))


@case("invalid", "error: accounts.csv: quote never closed (the rest of the file reads as one cell) in 1 row (line 12)")
def unclosed_quote(folder):
    lines = _text(folder, "accounts").split("\n")
    cells = lines[ROWS[1] + 1].split(",")
    cells[1] = '"' + cells[1]
    lines[ROWS[1] + 1] = ",".join(cells)
    (folder / "accounts.csv").write_text("\n".join(lines))


@case("invalid", "error: subscriptions.csv: column mrr: appears 2 times in the header; keep one")
def duplicate_header(folder):
    """Two columns called mrr (the seats column renamed by mistake)."""
    text = _text(folder, "subscriptions")
    header, rest = text.split("\n", 1)
    (folder / "subscriptions.csv").write_text(header.replace("seats", "mrr") + "\n" + rest)


@case(
    "invalid",
    "fixed: subscriptions.csv: blank lines skipped in 1,000,000 rows (lines 52, 53, ",
    "error: subscriptions.csv: column mrr: negative in 1 row (line 1000102)",
)
def blank_lines_then_negative_mrr(folder):
    """A million blank lines after line 51, then a negative MRR on data row 100: its line number
    must be the one an editor shows (1,000,102), not its position among the rows."""
    lines = _text(folder, "subscriptions").split("\n")
    cells = lines[101].split(",")
    cells[3] = "-5"
    lines[101] = ",".join(cells)
    text = "\n".join(lines[:51]) + "\n" * (BLANK_LINES + 1) + "\n".join(lines[51:])
    (folder / "subscriptions.csv").write_text(text)


@case("invalid", f"error: usage.csv: more cells than the header's 4 (a separator inside an unquoted value?) {LINES}")
def usage_rows_with_extra_cells(folder):
    """Three usage rows with a fifth cell (a value written 1,5 in a ',' file)."""
    lines = _text(folder, "usage").split("\n")
    for row in ROWS:
        lines[row + 1] += ",5"
    (folder / "usage.csv").write_text("\n".join(lines))


@case("invalid", "error: usage.csv: column date: unparseable date in 1 row (line 10102)")
def usage_blank_lines_then_bad_date(folder):
    """Ten thousand empty lines in usage.csv, then a bad date on data row 100: DuckDB skips the
    empty lines, the report must still name the line an editor shows."""
    usage = _read(folder, "usage")
    usage.loc[100, "date"] = "not a date"
    lines = usage.to_csv(index=False).split("\n")
    text = "\n".join(lines[:51]) + "\n" * 10_001 + "\n".join(lines[51:])
    (folder / "usage.csv").write_text(text)


# --------------------------------------------------------------------------------------------
# Odd but usable: fixed, and the report says how
# --------------------------------------------------------------------------------------------
@case(
    "fixed",
    f"fixed: subscriptions.csv: column account_id: ids padded with spaces; spaces removed {LINES}",
    f"fixed: accounts.csv: column account_id: ids padded with spaces; spaces removed {LINES}",
    f"fixed: usage.csv: column account_id: ids padded with spaces; spaces removed {LINES}",
)
def padded_ids(folder):
    for table in ("subscriptions", "accounts", "usage"):
        frame = _read(folder, table)
        frame.loc[list(ROWS), "account_id"] = "  " + frame.loc[list(ROWS), "account_id"] + " "
        _write(folder, table, frame)


@case(
    "fixed",
    "fixed: subscriptions.csv: starts with a UTF-8 byte-order mark; removed",
    "fixed: usage.csv: starts with a UTF-8 byte-order mark; removed",
)
def byte_order_mark(folder):
    """Excel's 'CSV UTF-8' export starts with a byte-order mark."""
    for table in ("subscriptions", "usage"):
        path = folder / f"{table}.csv"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


@case(
    "fixed",
    "fixed: cs_activities.csv: uses ';' as the separator (and decimal commas); read as such",
    "fixed: usage.csv: uses ';' as the separator (and decimal commas); read as such",
)
def semicolons_and_decimal_commas(folder):
    """A European spreadsheet export: ';' between cells, ',' before decimals (hours 4,9)."""
    for table, numbers in (("cs_activities", ["hours"]), ("usage", ["value"])):
        frame = _read(folder, table)
        for column in numbers:
            frame[column] = frame[column].str.replace(".", ",", regex=False)
        _write(folder, table, frame, sep=";")


@case("fixed", "fixed: subscriptions.csv: blank lines skipped in 1,000,000 rows (lines 52, 53, ")
def million_blank_lines(folder):
    """A million blank lines in the middle of subscriptions.csv (a spreadsheet's empty rows)."""
    lines = _text(folder, "subscriptions").split("\n")
    text = "\n".join(lines[:51]) + "\n" * (BLANK_LINES + 1) + "\n".join(lines[51:])
    (folder / "subscriptions.csv").write_text(text)


@case(
    "fixed",
    "fixed: cs_activities.csv: rows with fewer cells than the header's 5; the missing cells are read as empty in ",
)
def short_rows(folder):
    """Rows whose empty trailing cells (no CSM) were left out altogether."""
    text = _text(folder, "cs_activities")
    (folder / "cs_activities.csv").write_text(
        "\n".join(line[:-1] if line.endswith(",") else line for line in text.split("\n"))
    )


@case(
    "fixed",
    "warning: accounts.csv: column account_id: ids that differ only in case (e.g. A00004, "
    "a00004); ids are case-sensitive, so they are read as different accounts in 2 rows",
)
def account_ids_differing_in_case(folder):
    """An extra account a00004 beside A00004: two accounts to the kit, and a warning says so."""
    accounts = _read(folder, "accounts")
    extra = accounts.iloc[[ROWS[0]]].assign(account_id="a00004", name="Lowercase Twin Inc")
    _write(folder, "accounts", pd.concat([accounts, extra], ignore_index=True))


# --------------------------------------------------------------------------------------------
# Running the command line on many folders in one process
# --------------------------------------------------------------------------------------------
def run_cli(argv: list[str]) -> dict:
    """Run ``cslab ARGV`` through the command's entry point (``cslab.cli.main``) in this process.

    Returns the exit code and everything written to stdout and stderr; an exception escaping the
    entry point is written to stderr as the traceback a user would see.
    """
    from cslab import cli

    out, err = io.StringIO(), io.StringIO()
    saved, code = sys.argv, 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        sys.argv = ["cslab", *argv]
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - what would reach the user as a traceback
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = saved
    return {"argv": argv, "code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


if __name__ == "__main__":
    # python -m tests.hostile JOBS.json RESULTS.json: run each job (a list of arguments to cslab)
    # and write their results. The tests start two of these, one per core, so that the kit is
    # imported twice, not twice per case.
    jobs = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps([run_cli(argv) for argv in jobs]))
