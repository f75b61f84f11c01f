"""One way to open DuckDB: an in-memory connection without the progress bar.

DuckDB draws a progress bar on stderr for any query longer than two seconds; at 100,000 accounts
the usage checks take that long, and the bar would land in the notebooks' outputs and the CLI's.
"""

from __future__ import annotations

import duckdb

__all__ = ["connect"]


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that draws no progress bar.

    Examples
    --------
    >>> with connect() as con:
    ...     con.execute("SELECT 40 + 2").fetchone()
    (42,)
    """
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # a session setting: the config dict refuses it
    return con
