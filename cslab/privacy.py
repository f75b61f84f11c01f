"""Pseudonymous audits: account names, account ids and CSM ids replaced by stable keyed pseudonyms.

``cslab audit DATA --anonymize`` writes a pseudonymised copy of the validated input into a temporary
folder outside the audit folder and runs every notebook on that copy. Every output (HTML reports,
CSV tables, executed notebooks, ``results.json``, figure labels) is computed from the copy, so it can
only ever carry pseudonyms.

A pseudonym is an HMAC-SHA256 of the original value under a secret key:

- account ids become ``ACC-`` + 12 hex digits, the same in every table (foreign keys stay intact);
- account names become ``Account`` + the same 12 hex digits as the account's id;
- CSM ids become ``CSM-`` + 8 hex digits.

The same key gives the same pseudonyms in every run, so two audits of the same client can be
compared, and whoever holds the key and the original export can map a pseudonym back (hash the
original ids and look it up); without the key a pseudonym cannot be reversed or guessed from a list
of candidate names.

Where the key comes from, in order: the ``key`` argument (``--anonymize-key``), the environment
variable ``CSLAB_ANONYMIZE_KEY``, or a key file (``--anonymize-key-file``, by default
``<data folder>.cslab-key`` beside the data folder, or ``<file>.cslab-key`` beside a customers
file), created with a random key the first time. The key is never written inside the data folder
(input files and the folder stay untouched) nor into the audit folder.

Only names, account ids and CSM ids are replaced. Other attributes of ``accounts`` are kept as they
are (they are features of the models); the audit lists every extra text column it keeps verbatim so
that a column such as ``contact_email`` can be dropped from the export before the audit.

Examples
--------
>>> p = Pseudonymizer(b"0123456789abcdef0123456789abcdef")
>>> p.account_ids(pd.Series(["A1", "A2", "A1"])).str.len().tolist()
[16, 16, 16]
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cslab.errors import CSLabError

__all__ = [
    "KEY_ENV",
    "KEY_SUFFIX",
    "MIN_KEY_LENGTH",
    "AnonymizationError",
    "Pseudonymizer",
    "AnonymizedInput",
    "key_file_for",
    "resolve_key",
    "anonymize_folder",
    "anonymize_customers",
]

KEY_ENV = "CSLAB_ANONYMIZE_KEY"
KEY_SUFFIX = ".cslab-key"
#: a short key could be found by trying every key against a guessed id; 16 characters rule that out
MIN_KEY_LENGTH = 16

# Columns pseudonymised, per kind. The account's name is derived from its id's pseudonym.
_ACCOUNT, _CSM = "account", "csm"
_PREFIX = {_ACCOUNT: ("ACC-", 12), _CSM: ("CSM-", 8)}


class AnonymizationError(CSLabError):
    """No usable pseudonym key (too short, unreadable, or no place to save a new one)."""


# --------------------------------------------------------------------------------------------
# The key
# --------------------------------------------------------------------------------------------
def key_file_for(source: str | Path) -> Path:
    """Default key file of an input: a sibling named ``<folder or file name>.cslab-key``.

    Examples
    --------
    >>> key_file_for("/exports/acme").as_posix()
    '/exports/acme.cslab-key'
    >>> key_file_for("/exports/churn.csv").as_posix()
    '/exports/churn.csv.cslab-key'
    """
    source = Path(source).resolve()
    return source.parent / f"{source.name}{KEY_SUFFIX}"


def _checked(key: str | bytes, origin: str) -> bytes:
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    raw = raw.strip()
    if len(raw) < MIN_KEY_LENGTH:
        raise AnonymizationError(
            f"the pseudonym key from {origin} has {len(raw)} characters; "
            f"use at least {MIN_KEY_LENGTH} (e.g. `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`)"
        )
    return raw


def resolve_key(
    source: str | Path, key: str | bytes | None = None, key_file: str | Path | None = None
) -> tuple[bytes, str]:
    """The pseudonym key and where it came from (for one line on the console, never the report).

    Parameters
    ----------
    source : path
        The data folder (or customers file) being audited; the default key file sits beside it.
    key : str or bytes, optional
        The key itself (``--anonymize-key``). Else ``$CSLAB_ANONYMIZE_KEY``, else the key file.
    key_file : path, optional
        Key file to read, or to create with a random key when absent (default
        :func:`key_file_for` ``(source)``). It may not lie inside the data folder.

    Raises
    ------
    AnonymizationError
        A key shorter than :data:`MIN_KEY_LENGTH`, a key file inside the data folder, or a key file
        that can be neither read nor created.

    Examples
    --------
    >>> key, origin = resolve_key("data/demo", key="a" * 32)
    >>> origin
    'the --anonymize-key option'
    """
    if key is not None and (not isinstance(key, str) or key.strip()):
        return _checked(key, "the --anonymize-key option"), "the --anonymize-key option"
    if os.environ.get(KEY_ENV, "").strip():
        return _checked(os.environ[KEY_ENV], f"${KEY_ENV}"), f"${KEY_ENV}"
    source = Path(source).resolve()
    path = Path(key_file).resolve() if key_file else key_file_for(source)
    if source.is_dir() and path.is_relative_to(source):
        raise AnonymizationError(
            f"the key file {path} would lie inside the data folder; keep it outside (the default is beside the folder)"
        )
    if path.exists():
        try:
            return _checked(path.read_text(encoding="utf-8"), str(path)), f"key file {path}"
        except (OSError, UnicodeDecodeError) as exc:
            raise AnonymizationError(f"cannot read the key file {path} ({exc})") from exc
    new = secrets.token_hex(32)
    try:
        # O_EXCL: two audits started at once must not overwrite each other's new key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return resolve_key(source, key=None, key_file=path)
    except OSError as exc:
        raise AnonymizationError(
            f"cannot create the key file {path} ({exc.strerror}); give a key "
            f"with --anonymize-key or ${KEY_ENV}, or a writable "
            "--anonymize-key-file"
        ) from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(new + "\n")
    return new.encode("utf-8"), f"key file {path} (new: keep it to get the same pseudonyms next time)"


# --------------------------------------------------------------------------------------------
# Pseudonyms
# --------------------------------------------------------------------------------------------
class Pseudonymizer:
    """Stable keyed pseudonyms for account ids, account names and CSM ids.

    Parameters
    ----------
    key : bytes or str
        The secret key (at least :data:`MIN_KEY_LENGTH` characters).

    Notes
    -----
    Each kind of id is hashed in its own domain (an account and a CSM with the same id get unrelated
    pseudonyms). Digests are cut to 12 (accounts) or 8 (CSMs) hex digits; if two different ids of a
    table would share a pseudonym, every pseudonym of that call gets 4 more digits, so pseudonyms are
    always one-to-one.

    Examples
    --------
    >>> p = Pseudonymizer("k" * 16)
    >>> ids = pd.Series(["A00001"])
    >>> p.account_ids(ids).iloc[0] == Pseudonymizer("k" * 16).account_ids(ids).iloc[0]
    True
    """

    def __init__(self, key: bytes | str):
        self.key = _checked(key, "the caller")

    def _digest(self, kind: str, value: str) -> str:
        return hmac.new(self.key, f"cslab:{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def mapping(self, values: pd.Series | list, kind: str) -> dict[str, str]:
        """Original -> pseudonym for every distinct non-blank value (one-to-one)."""
        prefix, width = _PREFIX[kind]
        distinct = sorted({str(v).strip() for v in pd.Series(values).dropna()} - {""})
        digests = {v: self._digest(kind, v) for v in distinct}
        while True:
            short = {v: d[:width] for v, d in digests.items()}
            if len(set(short.values())) == len(short) or width >= 64:
                return {v: prefix + s for v, s in short.items()}
            width += 4

    @staticmethod
    def _apply(values: pd.Series, mapping: dict[str, str]) -> pd.Series:
        text = values.astype("string").str.strip()
        return text.map(mapping).astype(object).where(text.notna() & text.ne(""), None)

    def account_ids(self, values: pd.Series, mapping: dict[str, str] | None = None) -> pd.Series:
        """Account ids as ``ACC-<hex>``; blanks stay blank."""
        return self._apply(values, mapping or self.mapping(values, _ACCOUNT))

    def csm_ids(self, values: pd.Series, mapping: dict[str, str] | None = None) -> pd.Series:
        """CSM ids as ``CSM-<hex>``; blanks (no CSM) stay blank."""
        return self._apply(values, mapping or self.mapping(values, _CSM))

    @staticmethod
    def names(names: pd.Series, pseudonymous_ids: pd.Series) -> pd.Series:
        """Account names as ``Account <hex>``, the hex digits of the account's id pseudonym."""
        given = names.astype("string").str.strip()
        fake = "Account " + pseudonymous_ids.astype("string").str.removeprefix(_PREFIX[_ACCOUNT][0])
        return fake.astype(object).where(given.notna() & given.ne("") & fake.notna(), None)


# --------------------------------------------------------------------------------------------
# Pseudonymised copies of the input
# --------------------------------------------------------------------------------------------
@dataclass
class AnonymizedInput:
    """What :func:`anonymize_folder` / :func:`anonymize_customers` wrote."""

    path: Path  # the folder (or customers file) to run the notebooks on
    n_accounts: int = 0
    n_csms: int = 0
    n_names: int = 0
    #: extra text columns of ``accounts`` (or of the customers table) copied verbatim
    kept_text_columns: list[str] = field(default_factory=list)


_CONTRACT_ACCOUNT_COLUMNS = {
    "account_id",
    "name",
    "signup_date",
    "segment",
    "industry",
    "region",
    "csm_id",
    "employees",
}


def _text_columns(frame: pd.DataFrame, known: set[str]) -> list[str]:
    return [
        c
        for c in frame.columns
        if c not in known
        and not pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_datetime64_any_dtype(frame[c])
    ]


def anonymize_folder(src, dst: str | Path, key: bytes | str) -> AnonymizedInput:
    """Write a pseudonymised copy of a data folder (every table of the contract) into ``dst``.

    Account ids are replaced consistently in every table (``usage`` in DuckDB, never row by row),
    account names and CSM ids wherever they occur. The copy holds the validated, typed tables: CSV
    for each table, Parquet for ``usage``; files that are not tables (``truth.json``, notes) are not
    copied. ``src`` is never modified.

    Parameters
    ----------
    src : path or CSData
        The data folder, or its already loaded :class:`cslab.data.CSData`.
    dst : path
        Folder to write into (created; should lie outside the audit folder).
    key : bytes or str
        The pseudonym key (see :func:`resolve_key`).

    Examples
    --------
    >>> copy = anonymize_folder("data/demo", "/tmp/demo-anon", key)  # doctest: +SKIP
    >>> cslab.load(copy.path).accounts["account_id"].iloc[0]  # doctest: +SKIP
    'ACC-3f9a1c2b5d7e'
    """
    from cslab import duck
    from cslab.data import CSData, load
    from cslab.data.contract import TABLE_NAMES

    data = src if isinstance(src, CSData) else load(src)
    if data.subscriptions is None:
        raise AnonymizationError(
            "anonymize_folder needs a data folder; use anonymize_customers for a one-row-per-customer table"
        )
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    pseudo = Pseudonymizer(key)
    frames = {name: getattr(data, name) for name in TABLE_NAMES if name != "usage" and getattr(data, name) is not None}
    ids = [f["account_id"] for f in frames.values() if "account_id" in f]
    if data.usage is not None:
        ids.append(data.usage.query("SELECT DISTINCT account_id FROM usage")["account_id"])
    accounts = pseudo.mapping(pd.concat(ids, ignore_index=True), _ACCOUNT)
    csms = pseudo.mapping(
        pd.concat(
            [f["csm_id"] for f in frames.values() if "csm_id" in f] or [pd.Series([], dtype=object)], ignore_index=True
        ),
        _CSM,
    )
    result = AnonymizedInput(dst, n_accounts=len(accounts), n_csms=len(csms))
    for name, frame in frames.items():
        out = frame.copy()
        if "account_id" in out:
            out["account_id"] = pseudo.account_ids(out["account_id"], accounts)
        if "csm_id" in out:
            out["csm_id"] = pseudo.csm_ids(out["csm_id"], csms)
        if name == "accounts":
            if "name" in out:
                out["name"] = pseudo.names(out["name"], out["account_id"])
                result.n_names = int(out["name"].notna().sum())
            result.kept_text_columns = [f"accounts.{c}" for c in _text_columns(out, _CONTRACT_ACCOUNT_COLUMNS)]
        if name == "subscriptions" and data.currency:
            out["currency"] = data.currency  # the one currency read on loading (dropped then)
        out.to_csv(dst / f"{name}.csv", index=False)
    source = Path(data.source) / "cslab.toml"
    if source.is_file():  # explicit metric roles hold metric names, not identities
        shutil.copyfile(source, dst / "cslab.toml")
    if data.usage is not None:
        target = str(dst / "usage.parquet").replace("'", "''")
        with duck.connect() as con:
            con.register("pseudonyms", pd.DataFrame({"original": list(accounts), "pseudonym": list(accounts.values())}))
            con.execute(
                "COPY (SELECT p.pseudonym AS account_id, u.date, u.metric, u.value "
                f"FROM (SELECT row_number() OVER () AS row_, * FROM ({data.usage.relation_sql()})) u "
                "LEFT JOIN pseudonyms p ON u.account_id = p.original ORDER BY u.row_) "
                f"TO '{target}' (FORMAT PARQUET)"
            )
    return result


def anonymize_customers(
    path: str | Path, dst: str | Path, key: bytes | str, id_col: str | None = None
) -> AnonymizedInput:
    """Write a pseudonymised copy of a one-row-per-customer table (snapshot mode) into folder ``dst``.

    The id column (when there is one; without it row numbers are the ids and nothing identifies a
    customer), and columns named ``name`` or ``csm_id``, are replaced; every other cell is copied as
    text, with the file's own separator, so the copy reads exactly like the original.

    Returns
    -------
    AnonymizedInput
        ``path`` is the new file (``dst/customers.csv``).
    """
    from cslab.data.reading import _read_table  # the snapshot loader's own reader: same parsing
    from cslab.data.validation import ValidationReport

    report = ValidationReport(str(path))
    raw, decimal_comma = _read_table(Path(path), report)
    if raw is None:
        raise AnonymizationError(f"cannot read {path}: {report.format()}")
    pseudo = Pseudonymizer(key)
    out = raw.copy()
    result = AnonymizedInput(Path(dst) / "customers.csv")
    if id_col and id_col in out:
        accounts = pseudo.mapping(out[id_col], _ACCOUNT)
        out[id_col] = pseudo.account_ids(out[id_col], accounts)
        result.n_accounts = len(accounts)
    if "csm_id" in out:
        csms = pseudo.mapping(out["csm_id"], _CSM)
        out["csm_id"] = pseudo.csm_ids(out["csm_id"], csms)
        result.n_csms = len(csms)
    if "name" in out:
        basis = out[id_col] if id_col and id_col in out else pseudo.account_ids(out["name"])
        out["name"] = pseudo.names(out["name"], basis)
        result.n_names = int(out["name"].notna().sum())
    Path(dst).mkdir(parents=True, exist_ok=True)
    out.to_csv(result.path, index=False, sep=";" if decimal_comma else ",")
    return result
