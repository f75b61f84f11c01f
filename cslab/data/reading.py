"""Reading table files: finding them, telling their text encoding and delimiter, parsing them
with pandas, and checking them against the contract's schemas. Every problem goes to the
:class:`~cslab.data.validation.ValidationReport`."""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from cslab.data.contract import COMPANION_FILES, DATE_FORMAT_MESSAGE, TABLES, TableSpec, as_id, parse_dates, schema_for
from cslab.data.validation import MAX_EXAMPLES, ValidationReport, shown

__all__ = ["SUFFIXES", "date_format_message"]

SUFFIXES = (".csv", ".csv.gz", ".parquet")
_SNIFF_BYTES = 1 << 16


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------
_SURROGATE = re.compile("[\udc80-\udcff]")


def _table_files(folder: Path, report: ValidationReport) -> dict[str, Path]:
    """Map each table name to its file; warn about files that are not tables."""
    files: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        suffix = next((s for s in SUFFIXES if path.name.lower().endswith(s)), None)
        stem = path.name[: -len(suffix)] if suffix else None
        if stem in TABLES:
            if stem in files:
                report.add(path.name, f"a second file for table {stem} (also {files[stem].name}); keep one")
            else:
                files[stem] = path
        elif path.name not in COMPANION_FILES:
            report.add(path.name, "not a table of the data contract; ignored", severity="warning")
    return files


def _what_binary(head: bytes) -> str | None:
    """What a file that is not UTF-8 text is, when its first bytes tell (else ``None``)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(head):
        return "is UTF-16 text (Excel's 'Unicode text'), not UTF-8; save it as CSV UTF-8"
    if head.startswith(b"PK\x03\x04"):
        return "is a zip archive or an Excel workbook (.xlsx), not a CSV; export it as CSV UTF-8"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "is an Excel 97-2003 workbook (.xls), not a CSV; export it as CSV UTF-8"
    if head.startswith(b"PAR1"):
        return "is a Parquet file; name it .parquet"
    if head.startswith(b"\x1f\x8b"):
        return "is gzip-compressed; name it .csv.gz"
    if b"\x00" in head:
        return "is not a text file (binary content); export it as CSV"
    return None


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 without a byte-order mark: every other byte of ASCII text is zero."""
    sample = head[:4096]
    if len(sample) < 8:
        return False
    return max(sample[0::2].count(0), sample[1::2].count(0)) > 0.3 * (len(sample) // 2)


def _cells(line: str, sep: str) -> list[str]:
    """The cells of one CSV line (quotes understood; a stray carriage return tolerated)."""
    line = line.rstrip("\r")
    try:
        return next(csv.reader([line], delimiter=sep), [])
    except csv.Error:
        return line.split(sep)


def _not_utf8(raw: bytes, exc: UnicodeDecodeError, file: str, report: ValidationReport) -> None:
    """Report the lines (and columns) of a file's bytes that are not UTF-8, in one line."""
    lines = raw.decode("utf-8", errors="surrogateescape").split("\n")
    bad = [i + 1 for i, line in enumerate(lines) if _SURROGATE.search(line)]
    first = bad[0] if bad else raw[: exc.start].count(b"\n") + 1
    _report_not_utf8(
        file,
        report,
        raw[exc.start],
        first,
        len(bad),
        bad[:MAX_EXAMPLES],
        lines[0],
        [lines[n - 1] for n in bad[:200] if n > 1],
    )


def _not_utf8_stream(path: Path, report: ValidationReport) -> bool:
    """The same for a file too large to hold (usage), read line by line. True when reported."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    header, examples, samples, n_bad, byte = "", [], [], 0, 0
    try:
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    text = raw.decode("utf-8", errors="surrogateescape")
                    byte = byte or raw[exc.start]
                    n_bad += 1
                    if len(examples) < MAX_EXAMPLES:
                        examples.append(number)
                    if len(samples) < 200 and number > 1:
                        samples.append(text)
                if number == 1:
                    header = text.removeprefix("\ufeff")
    except (OSError, EOFError):
        return False
    if n_bad:
        _report_not_utf8(path.name, report, byte, examples[0], n_bad, examples, header, samples)
    return bool(n_bad)


def _report_not_utf8(
    file: str,
    report: ValidationReport,
    byte: int,
    first: int,
    n_bad: int,
    examples: list[int],
    header: str,
    samples: list[str],
) -> None:
    """One line: the first bad byte and its line; with more lines, how many, where, which column."""
    if n_bad <= 1:
        report.add(file, f"is not valid UTF-8 (byte 0x{byte:02x} on line {first}); save it as UTF-8")
        return
    sep = _sniff(header)[0]
    names = [h.strip() for h in _cells(header, sep)]
    columns: list[str] = []
    for line in samples:
        for i, value in enumerate(_cells(line, sep)):
            if i < len(names) and _SURROGATE.search(value) and names[i] not in columns:
                columns.append(names[i])
    shown_lines = ", ".join(map(str, examples)) + (", ..." if n_bad > len(examples) else "")
    where = f"; column {', '.join(shown(c) for c in columns[:3])}" if columns else ""
    try:
        "".join(samples).encode("utf-8", errors="surrogateescape").decode("cp1252")
        guess = " (it reads as Latin-1 / Windows-1252)"
    except UnicodeDecodeError:
        guess = ""
    report.add(
        file,
        f"is not valid UTF-8 (byte 0x{byte:02x} on line {first}; {n_bad:,} lines in "
        f"all: {shown_lines}{where}); save it as UTF-8{guess}",
    )


def _read_text(path: Path, report: ValidationReport, limit: int | None = None) -> str | None:
    """Read a (possibly gzipped) CSV as UTF-8 text; report binary, empty and non-UTF-8 files."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read() if limit is None else handle.read(limit)
    except (OSError, EOFError) as exc:
        report.add(
            path.name,
            f"cannot be read ({type(exc).__name__}: {exc.strerror or exc})"
            if isinstance(exc, OSError)
            else f"cannot be read ({exc})",
        )
        return None
    if not raw.strip():
        report.add(path.name, "is empty")
        return None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        report.add(path.name, "starts with a UTF-8 byte-order mark; removed", severity="fixed")
    binary = _what_binary(raw[:_SNIFF_BYTES])
    if binary:
        report.add(path.name, binary)
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if limit is not None and exc.start > len(raw) - 4:
            return raw[: exc.start].decode("utf-8")  # a character cut by the sniff limit
        if limit is None:
            _not_utf8(raw, exc, path.name, report)
        elif not _not_utf8_stream(path, report):
            report.add(path.name, "is not valid UTF-8; save it as UTF-8")
        return None


def cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A table read from Parquet or a database as the checks take it: date and number columns keep
    their types, every other column becomes Python objects with ``None`` where missing.

    Typed columns need no parsing (the checks and :func:`~cslab.data.contract.typed` pass them
    through), which is most of the reading time of a large table; a column of dates stored as
    ``date`` (Python ``datetime.date`` objects in pandas) becomes a datetime column. Nullable
    integers become objects so that integer ids stay ``"123"``, not ``"123.0"``.

    Examples
    --------
    >>> import datetime
    >>> frame = pd.DataFrame({"day": [datetime.date(2024, 1, 31), None], "n": [1.5, None], "id": pd.array([7, None])})
    >>> cells(frame).dtypes.astype(str).tolist()
    ['datetime64[ns]', 'float64', 'object']
    """
    out = {}
    for name, column in frame.items():
        dtype = column.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iuf":  # numpy numbers, never bools
            out[name] = column
            continue
        if dtype == np.dtype(object) and pd.api.types.infer_dtype(column, skipna=True) in ("date", "datetime"):
            try:
                column = pd.to_datetime(column)
            except (pd.errors.OutOfBoundsDatetime, OverflowError, ValueError):
                column = column.map(str).where(column.notna(), None)
            dtype = column.dtype
        if pd.api.types.is_datetime64_any_dtype(dtype):
            # nanoseconds, as CSV dates parse (Parquet and DuckDB give microseconds), local time
            # where a zone is given; dates beyond pandas' range stay text, for the checks to report
            naive = column.dt.tz_localize(None) if getattr(column.dt, "tz", None) else column
            try:
                out[name] = naive.astype("datetime64[ns]")
                continue
            except (pd.errors.OutOfBoundsDatetime, OverflowError):
                column = naive.astype(str).where(naive.notna(), None)
        out[name] = column.astype(object).where(column.notna(), None)
    return pd.DataFrame(out, index=frame.index)


def _sniff(header: str) -> tuple[str, bool]:
    """Separator of a CSV from its header line; a ';' file may use decimal commas."""
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    sep = max(counts, key=counts.get)
    return (sep if counts[sep] else ","), sep == ";"


def _layout(text: str, sep: str) -> tuple[list[int], list[int], list[int]]:
    """Where the records of a CSV are: first line and number of cells of each, the blank lines.

    A record may span lines (a quoted cell holding a line break), so a record's line is the line
    a spreadsheet shows it on, not its position among the records.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    starts: list[int] = []
    widths: list[int] = []
    blank: list[int] = []
    line = 1
    for record in reader:
        if not record or (len(record) == 1 and not record[0].strip()):
            blank.append(line)
        else:
            starts.append(line)
            widths.append(len(record))
        line = reader.line_num + 1
    return starts, widths, blank


def _read_table(path: Path, report: ValidationReport, keep_lines: bool = False) -> tuple[pd.DataFrame | None, bool]:
    """Read a CSV or Parquet table with every column as text. Returns (frame, decimal_comma).

    Blank lines and rows of empty cells are skipped (and reported as fixed). With ``keep_lines``
    the frame's index is the file line of each row minus 2 (the header is line 1), so that row
    positions in a report are the lines a spreadsheet shows even after blank lines; otherwise
    the index is 0, 1, 2, ...
    """
    file = path.name
    if path.name.lower().endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure is a problem to report
            report.add(file, f"is not a readable Parquet file ({type(exc).__name__})")
            return None, False
        return cells(frame), False
    text = _read_text(path, report)
    if text is None:
        return None, False
    header = text.lstrip("\r\n\t ").split("\n", 1)[0].rstrip("\r")
    sep, decimal_comma = _sniff(header)
    if sep == ";":
        report.add(file, "uses ';' as the separator (and decimal commas); read as such", severity="fixed")
    names = [n.strip() for n in _cells(header, sep)]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    for name in repeated:
        report.add(file, f"appears {names.count(name)} times in the header; keep one", column=name)
    if repeated:
        return None, False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(
                io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=True, index_col=False
            )
            error = ""
        except (pd.errors.ParserError, ValueError) as exc:
            frame, error = None, (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    try:  # where each record starts and how many cells it has (pandas pads short rows silently)
        starts, widths, blank = _layout(text, sep)
    except csv.Error:  # a cell longer than the csv module's limit: an unclosed quote, surely
        starts, widths, blank = [], [], []
    width = widths[0] if widths else 0
    wide = [s - 2 for s, w in zip(starts[1:], widths[1:]) if w > width]
    if "EOF inside string" in error:
        row = re.search(r"row (\d+)", error)
        line = starts[-1] if starts else (int(row.group(1)) + 1 if row else None)
        report.add(
            file, "quote never closed (the rest of the file reads as one cell)", rows=[line - 2] if line else None
        )
        return None, False
    if wide:
        report.add(file, f"more cells than the header's {width} (a separator inside an unquoted value?)", rows=wide)
        return None, False
    if frame is None or any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
        why = shown(error or "rows do not match the header", 120)
        report.add(file, f"is not a well-formed CSV ({why})")
        return None, False
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.fillna("")
    if len(starts) == len(frame) + 1:
        frame.index = pd.Index([s - 2 for s in starts[1:]])
        short = [s - 2 for s, w in zip(starts[1:], widths[1:]) if w < width]
        if short:
            report.add(
                file,
                f"rows with fewer cells than the header's {width}; the missing cells are read as empty",
                rows=short,
                severity="fixed",
            )
    empty = frame.eq("").all(axis=1) if frame.shape[1] else pd.Series(False, index=frame.index)
    skipped = list(empty[empty].index)
    if len(frame):
        last = frame.index[-1] + 2
        skipped += [b - 2 for b in blank if starts and starts[0] < b < last]
    if skipped:
        report.add(file, "blank lines skipped", rows=skipped, severity="fixed")
        frame = frame[~empty]
    if not keep_lines:
        frame = frame.reset_index(drop=True)
    return frame, decimal_comma


def date_format_message(example: object, mixed: bool) -> str:
    """The error for dates written as 15/01/2024: mixed with ISO dates, or all of them."""
    return (
        f"{'mixed date formats: ' if mixed else ''}dates written like {shown(example)}, not "
        "YYYY-MM-DD (day and month order cannot be told apart)"
    )


def _schema_problems(
    frame: pd.DataFrame,
    spec: TableSpec,
    file: str,
    decimal_comma: bool,
    report: ValidationReport,
    latest: pd.Timestamp | None = None,
    as_of: pd.Timestamp | None = None,
) -> None:
    """Validate the raw cells with the table's pandera schema; one line per column and check."""
    schema = schema_for(spec, set(frame.columns), decimal_comma, latest, as_of)
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        # A check on the whole frame (end_date before start_date) lists each failing row once per
        # column: one line per check, not per column.
        frame_level = cases["schema_context"].eq("DataFrameSchema") & ~cases["check"].isin(
            ["column_in_dataframe", "field_uniqueness"]
        )
        cases = cases.assign(column=cases["column"].where(~frame_level, cases["check"]))
        for (context, column, check), group in cases.groupby(
            ["schema_context", "column", "check"], dropna=False, sort=False
        ):
            if check == "column_in_dataframe":
                for missing in group["failure_case"]:
                    report.add(file, "required column missing", column=str(missing))
                continue
            rows = pd.to_numeric(group["index"], errors="coerce").dropna().astype(int).drop_duplicates()
            if check == "field_uniqueness":
                message = "duplicate values"
            elif context == "DataFrameSchema":
                message, column = str(check), str(check).split(" ")[0]
            else:
                message = str(check)
            if not len(rows):  # the check itself failed on these cells: say so, do not guess
                report.add(
                    file,
                    f"{message}: could not be checked ({shown(group['failure_case'].iloc[0], 80)})",
                    column=str(column),
                )
                continue
            if message == DATE_FORMAT_MESSAGE:
                example = frame.loc[rows.iloc[0], column]
                message = date_format_message(example, bool(parse_dates(frame[column]).notna().any()))
            report.add(file, message, column=str(column), rows=rows.tolist())


def _strip_ids(frame: pd.DataFrame, spec: TableSpec, file: str, report: ValidationReport) -> None:
    """Ids padded with spaces are fixed (stripped) and reported; ids differing only in case noted."""
    for column in spec.ids:
        if column in frame.columns and frame[column].dtype == object:
            text = frame[column].astype("string")
            padded = text.notna() & text.ne(text.str.strip()) & text.str.strip().ne("")
            if padded.any():
                report.add(
                    file,
                    "ids padded with spaces; spaces removed",
                    column=column,
                    rows=padded[padded].index.tolist(),
                    severity="fixed",
                )
    for column in spec.unique:
        ids = as_id(frame[column]).astype("string")
        lower = ids.str.lower()
        clash = ids.notna() & ids.groupby(lower).transform("nunique").gt(1)
        if clash.any():
            examples = ", ".join(shown(v) for v in ids[clash].unique()[:2])
            report.add(
                file,
                f"ids that differ only in case (e.g. {examples}); ids are case-"
                "sensitive, so they are read as different accounts",
                column=column,
                rows=clash[clash].index.tolist(),
                severity="warning",
            )
