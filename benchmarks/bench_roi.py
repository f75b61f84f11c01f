"""Benchmark: notebook 03 (CS ROI) on a large generated book — wall time and peak memory.

Generates a book with ``cslab synth``'s generator (default 100,000 accounts over 36 months, CSV), then
runs notebook 03 with papermill in a child process and samples the resident memory of the whole
process tree (papermill, the kernel, the bootstrap workers) every half second. Issue 12's target: the
notebook completes within 6 GB at 100,000 accounts (it estimates the effects on a random sample of
``max_accounts`` accounts, 10,000 by default, and says so).

    .venv/bin/python benchmarks/bench_roi.py [--accounts 100000] [--bootstrap 200]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from cslab.config import NOTEBOOKS_DIR
from cslab.data.synth import generate


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "book"
        t0 = time.perf_counter()
        generate(n_accounts=args.accounts, n_months=36, seed=1).write(folder)
        print(f"generate {args.accounts:,} accounts: {time.perf_counter() - t0:.1f} s", flush=True)
        command = [
            sys.executable,
            "-m",
            "papermill",
            str(NOTEBOOKS_DIR / "03_cs_roi.ipynb"),
            str(Path(tmp) / "out.ipynb"),
            "-p",
            "data_dir",
            str(folder),
            "-p",
            "tables_dir",
            str(Path(tmp) / "tables"),
            "-p",
            "n_bootstrap",
            str(args.bootstrap),
            "--no-progress-bar",
        ]
        t0 = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        watched, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            peak = max(peak, tree_rss(watched))
            time.sleep(0.5)
        seconds = time.perf_counter() - t0
        status = "ok" if child.returncode == 0 else f"FAILED ({child.stderr.read()[-500:]})"
        print(
            f"notebook 03: {status} in {seconds:.0f} s, peak memory of the process tree {peak / 1e9:.2f} GB", flush=True
        )


if __name__ == "__main__":
    main()
