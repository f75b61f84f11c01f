"""`make bench`: wall time and peak memory of every stage of the kit on generated books of several sizes.

For each size (default 3,000, 30,000 and 100,000 accounts over 36 months) the book is generated with
the kit's own generator (:func:`cslab.data.synth.generate`) and written as Parquet; its usage, one row
per account, month and metric, is spread over ``--usage-rows-per-month`` dated rows of the same value
(default 5: about 20 million usage rows at 100,000 accounts; every monthly mean, so every figure, is
the generator's). Then each stage runs alone in a child process:

* ``load``      ``cslab.load`` (reading and validation);
* ``panel``     load, then ``cslab.panel`` (the step's own time is reported apart);
* ``features``  load, panel, then ``cslab.features.build_dataset`` (churn within 3 months, notebook 02's
  default; the step's own time is reported apart);
* ``usage``     ``UsageTable.monthly`` against the floor: a plain DuckDB ``GROUP BY`` over the same
  Parquet file (``avg(value)`` by account, month and metric, fetched into pandas as ``monthly`` is),
  each timed twice after a warm-up read, the faster kept;
* ``nb:<name>`` each notebook of the audit alone (``cslab run``);
* ``audit``     the whole audit (``cslab audit``).

Peak memory is the resident memory of the whole process tree (papermill, the kernels, the bootstrap
workers), polled every 0.2 s: memory-mapped pages shared by several processes count once per process,
and a peak shorter than 0.2 s can be missed. CPU is the user + system time of the stage's processes
(children waited for), and ``cores`` is CPU over wall time. A probe starts a kernel as the audit does,
with the thread variables (OMP_NUM_THREADS ...) unset, and lists its OpenMP/BLAS thread pools.

Writes ``--out`` (default benchmarks/RESULTS.md) after every stage, so an interrupted run keeps what
it measured; the stages take the caller's environment (set OMP_NUM_THREADS=1 etc. to share a machine).

    .venv/bin/python benchmarks/bench.py [--sizes 3000,30000,100000] [--months 36] [--skip-audit]
                                         [--out benchmarks/RESULTS.md] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from cslab.audit.running import THREAD_VARIABLES

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
MARKER = "BENCH-RESULT "

# The targets
AUDIT_LARGE_ACCOUNTS = 100_000
AUDIT_LARGE_SECONDS = 600
AUDIT_LARGE_GB = 6.0
DEMO_ACCOUNTS = 3_000
DEMO_AUDIT_SECONDS = 90
GENERATE_LARGE_SECONDS = 300
USAGE_FLOOR_RATIO = 2.0
SCALING_SLACK = 1.2  # 10x the accounts may cost at most 12x the time: time ratio <= 1.2 x account ratio


# --------------------------------------------------------------------------------------------
# The stages, run in a child process: `bench.py --child STAGE BOOK ...`; the last stdout line
# starting with MARKER is the stage's JSON result.
# --------------------------------------------------------------------------------------------
def _report(**values) -> None:
    print(MARKER + json.dumps(values), flush=True)


def _write_book(book, out: Path, rows_per_month: int) -> dict:
    """The generated tables as Parquet (usage spread over ``rows_per_month`` rows of each month),
    plus truth.json; truth_panel.csv is left out (nothing in the audit reads it)."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    for name, frame in book.tables.items():
        if name != "usage":
            frame.to_parquet(out / f"{name}.parquet", index=False)
    (out / "truth.json").write_text(json.dumps(book.truth, indent=2))
    usage = book.tables["usage"]  # noqa: F841 - read by DuckDB by name
    step = 28 // rows_per_month  # the last row of each month keeps the generator's date (the month's end)
    path = str(out / "usage.parquet").replace("'", "''")
    with duckdb.connect() as con:
        con.execute(
            f"COPY (SELECT account_id, CAST(date AS DATE) - CAST(({rows_per_month - 1} - k) * {step} AS INTEGER) "
            f"AS date, metric, value FROM usage, range({rows_per_month}) r(k) ORDER BY account_id, date, metric) "
            f"TO '{path}' (FORMAT parquet)"
        )
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()[0]
    return {"usage_rows": int(rows), "mb": sum(p.stat().st_size for p in out.iterdir()) / 1e6}


def child(stage: str, book: Path, args: argparse.Namespace) -> None:
    if stage == "generate":
        from cslab.data.synth import generate

        t0 = time.perf_counter()
        generated = generate(n_accounts=args.accounts, n_months=args.months, seed=args.seed)
        t1 = time.perf_counter()
        written = _write_book(generated, book, args.usage_rows_per_month)
        _report(simulate_s=t1 - t0, write_s=time.perf_counter() - t1, **written)
        return
    if stage == "threads":
        _report(pools=_kernel_pools())
        return
    import cslab

    t0 = time.perf_counter()
    data = cslab.load(book)
    load_s = time.perf_counter() - t0
    if stage == "load":
        _report(load_s=load_s, usage_rows=data.usage.n_rows)
    elif stage in ("panel", "features"):
        t0 = time.perf_counter()
        monthly = cslab.panel(data)
        panel_s = time.perf_counter() - t0
        if stage == "panel":
            _report(load_s=load_s, step_s=panel_s, rows=len(monthly))
            return
        from cslab.features import build_dataset

        t0 = time.perf_counter()
        dataset, scoring = build_dataset(data, monthly, horizon_months=3)
        _report(load_s=load_s, panel_s=panel_s, step_s=time.perf_counter() - t0, rows=len(dataset) + len(scoring))
    elif stage == "usage":
        import duckdb

        path = str(data.usage.path).replace("'", "''")
        floor_sql = (
            "SELECT account_id, date_trunc('month', date) AS month, metric, avg(value) AS value "
            f"FROM read_parquet('{path}') GROUP BY ALL"
        )

        def floor():
            with duckdb.connect() as con:
                return con.sql(floor_sql).df()

        floor()  # warm-up: the file in the page cache for both
        kit_s, floor_s = [], []
        for _ in range(2):
            t0 = time.perf_counter()
            rows = len(data.usage.monthly())
            kit_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            floor_rows = len(floor())
            floor_s.append(time.perf_counter() - t0)
        _report(kit_s=min(kit_s), floor_s=min(floor_s), rows=rows, floor_rows=floor_rows)
    else:
        raise SystemExit(f"unknown stage {stage!r}")


def _kernel_pools() -> list[dict]:
    """The OpenMP/BLAS thread pools of a kernel started as the audit starts one, after the imports
    the notebooks make."""
    from jupyter_client.manager import start_new_kernel

    from cslab.audit.running import current_kernel

    code = (
        "import json, numpy, scipy.linalg, sklearn.ensemble, threadpoolctl, cslab, cslab.drivers, cslab.bootstrap\n"
        "print(json.dumps([{k: p.get(k) for k in ('user_api', 'internal_api', 'num_threads')}"
        " for p in threadpoolctl.threadpool_info()]))"
    )
    texts: list[str] = []

    def hook(msg) -> None:
        if msg["msg_type"] == "stream":
            texts.append(msg["content"]["text"])

    with current_kernel() as name:
        manager, client = start_new_kernel(kernel_name=name)
        try:
            client.execute_interactive(code, output_hook=hook, timeout=180)
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    return json.loads("".join(texts).strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# The parent: runs each stage as a child process tree and watches it
# --------------------------------------------------------------------------------------------
def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in family:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def measure(command: list[str], logs: Path, env: dict | None = None) -> dict:
    """Run ``command``; its wall time, the peak resident memory of its process tree, its CPU time,
    its exit code and its MARKER result (stdout and stderr go to ``logs``.out/.err)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(f"{logs}.out", "w") as out, open(f"{logs}.err", "w") as err:
        child_process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        watched, peak = psutil.Process(child_process.pid), 0
        while child_process.poll() is None:
            peak = max(peak, tree_rss(watched))
            time.sleep(0.2)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result: dict = {}
    for line in Path(f"{logs}.out").read_text().splitlines():
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER) :])
    error = ""
    if child_process.returncode != 0:
        lines = Path(f"{logs}.err").read_text().replace("\r", "\n").splitlines()
        tail = [line.strip() for line in lines if line.strip() and not line.startswith("Executing")][-2:]
        error = " | ".join(tail)[-300:]
    return {
        "wall": wall,
        "peak_gb": peak / 1e9,
        "cpu": cpu,
        "rc": child_process.returncode,
        "error": error,
        "result": result,
    }


def _notebook_status(out: Path) -> dict:
    """Each notebook's status and seconds from an audit folder's results.json ({} when absent)."""
    try:
        notebooks = json.loads((out / "results.json").read_text())["notebooks"]
    except (OSError, ValueError, KeyError):
        return {}
    return {
        name: {"status": run.get("status"), "seconds": run.get("seconds"), "error": str(run.get("error") or "")[:160]}
        for name, run in notebooks.items()
    }


def _notebook_text(notebooks: dict) -> str:
    parts = []
    for name, run in notebooks.items():
        text = f"{name.split('_')[0]} {run['status']}"
        if run.get("seconds") is not None:
            text += f" {run['seconds']:.0f} s"
        if run["status"] != "ok" and run.get("error"):
            text += f" ({run['error']})"
        parts.append(text)
    return ", ".join(parts)


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine() -> dict:
    import duckdb
    import numpy
    import pandas

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    commit = _git("rev-parse", "--short=12", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cores": usable,
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gb": psutil.virtual_memory().total / 1e9,
        "cpu": platform.processor() or platform.machine(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "commit": commit + (" (with uncommitted changes)" if dirty and dirty != "?" else ""),
        "versions": f"pandas {pandas.__version__}, numpy {numpy.__version__}, duckdb {duckdb.__version__}",
        "threads_env": ", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARIABLES if v in os.environ) or "none set",
    }


def notebooks() -> list[str]:
    from cslab.audit import NOTEBOOKS

    return list(NOTEBOOKS)


# --------------------------------------------------------------------------------------------
# RESULTS.md
# --------------------------------------------------------------------------------------------
def _s(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f}"


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("**pass**" if ok else "**FAIL**")


def _stage_time(runs: dict, size: int, stage: str, key: str = "wall") -> float | None:
    run = runs.get(size, {}).get(stage)
    if not run or run["rc"] != 0:
        return None
    return run[key] if key in run else run["result"].get(key)


def _not_ok(run: dict) -> str:
    """The notebooks of an audit that did not run to the end, for a target's measured column."""
    notebooks = run["result"].get("notebooks", {})
    not_ok = [f"{name.split('_')[0]} {r['status']}" for name, r in notebooks.items() if r["status"] != "ok"]
    return f" (not complete: {', '.join(not_ok)})" if not_ok else ""


def targets(runs: dict, args: argparse.Namespace, info: dict) -> list[tuple[str, str, str]]:
    rows = []
    large = [n for n in runs if n >= AUDIT_LARGE_ACCOUNTS]
    size = min(large) if large else None
    months_note = "" if args.months == 36 else f" (run with {args.months} months, not 36)"
    audit = runs.get(size, {}).get("audit") if size else None
    ok_audit = audit["rc"] == 0 if audit else None
    rows.append(
        (
            f"whole audit, {AUDIT_LARGE_ACCOUNTS:,} accounts: at most {AUDIT_LARGE_SECONDS // 60} minutes{months_note}",
            f"{audit['wall']:.0f} s" + ("" if ok_audit else " (failed)") + _not_ok(audit) if audit else "",
            _verdict(ok_audit and audit["wall"] <= AUDIT_LARGE_SECONDS if audit else None),
        )
    )
    rows.append(
        (
            f"whole audit, {AUDIT_LARGE_ACCOUNTS:,} accounts: peak memory at most {AUDIT_LARGE_GB:g} GB",
            f"{audit['peak_gb']:.2f} GB" if audit else "",
            _verdict(audit["peak_gb"] <= AUDIT_LARGE_GB if audit else None),
        )
    )
    generated = runs.get(size, {}).get("generate") if size else None
    rows.append(
        (
            f"generating and writing {AUDIT_LARGE_ACCOUNTS:,} accounts: under {GENERATE_LARGE_SECONDS // 60} minutes",
            f"{generated['wall']:.0f} s, {generated['peak_gb']:.2f} GB" if generated else "",
            _verdict(generated["rc"] == 0 and generated["wall"] <= GENERATE_LARGE_SECONDS if generated else None),
        )
    )
    demo = runs.get(DEMO_ACCOUNTS, {}).get("audit")
    rows.append(
        (
            f"demo audit ({DEMO_ACCOUNTS:,} accounts): at most {DEMO_AUDIT_SECONDS} s{months_note}",
            f"{demo['wall']:.0f} s" + _not_ok(demo) if demo else "",
            _verdict(demo["rc"] == 0 and demo["wall"] <= DEMO_AUDIT_SECONDS if demo else None),
        )
    )
    for n in sorted(runs):
        usage = runs[n].get("usage")
        if usage and usage["rc"] == 0:
            ratio = usage["result"]["kit_s"] / max(usage["result"]["floor_s"], 1e-9)
            rows.append(
                (
                    f"usage aggregation, {n:,} accounts: at most {USAGE_FLOOR_RATIO:g}x the plain GROUP BY",
                    f"{ratio:.2f}x",
                    _verdict(ratio <= USAGE_FLOOR_RATIO),
                )
            )
    sizes = sorted(runs)
    for stage in ("panel", "features"):
        for small, big in zip(sizes[:-1], sizes[1:]):
            a, b = _stage_time(runs, small, stage, "step_s"), _stage_time(runs, big, stage, "step_s")
            r = big / small
            rows.append(
                (
                    f"{stage}: {big:,}/{small:,} accounts ({r:.1f}x) costs at most {SCALING_SLACK * r:.1f}x the time",
                    f"{b / a:.2f}x ({a:.2f} s to {b:.2f} s)" if a and b else "",
                    _verdict(b / a <= SCALING_SLACK * r if a and b else None),
                )
            )
    pools = info.get("pools")
    limit = max(1, (info["cores"] or 1) // 2)
    if pools is None:
        rows.append(("OpenMP/BLAS threads of a kernel capped (two notebooks never oversubscribe)", "", _verdict(None)))
    else:
        biggest = max((p["num_threads"] or 0 for p in pools), default=0)
        text = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in pools) or "no pools loaded"
        rows.append(
            (
                f"OpenMP/BLAS threads of an audit kernel (thread variables unset) at most {limit} on {info['cores']} "
                "cores, so two notebooks never oversubscribe",
                text,
                _verdict(biggest <= limit),
            )
        )
    return rows


def write_results(path: Path, runs: dict, args: argparse.Namespace, info: dict, order: list[str]) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `benchmarks/bench.py` (`make bench`) on {info['date']}.",
        "",
        f"- Machine: {info['cores']} usable cores ({info['logical_cores']} logical, {info['physical_cores']} "
        f"physical), {info['ram_gb']:.1f} GB RAM, {info['cpu']}, {info['os']}",
        f"- Python {info['python']}; {info['versions']}; cslab commit {info['commit']}",
        f"- Thread variables of the run: {info['threads_env']}",
        f"- Books: the kit's generator, {args.months} months, seed {args.seed}, Parquet; usage spread over "
        f"{args.usage_rows_per_month} rows per account, month and metric (same monthly means)",
        "",
        "Wall: seconds of the stage's process from start to exit (interpreter start and imports included). "
        "Step: the stage's own step measured inside it (load, `cslab.panel`, `build_dataset`, "
        "`UsageTable.monthly`). Peak: resident memory of the whole process tree, polled every 0.2 s. "
        "Cores: CPU time over wall time.",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in targets(runs, args, info)]
    for n in sorted(runs):
        stages = runs[n]
        lines += ["", f"## {n:,} accounts", ""]
        gen = stages.get("generate")
        if gen and gen["rc"] == 0:
            r = gen["result"]
            lines += [
                f"{r['usage_rows']:,} usage rows; {r['mb']:.1f} MB of Parquet; simulated in {r['simulate_s']:.1f} s, "
                f"written in {r['write_s']:.1f} s.",
                "",
            ]
        lines += ["| stage | wall s | step s | peak GB | CPU s | cores | notes |", "|---|---:|---:|---:|---:|---:|---|"]
        for stage in order:
            run = stages.get(stage)
            if run is None:
                continue
            r = run["result"]
            step = {"load": r.get("load_s"), "usage": r.get("kit_s")}.get(stage, r.get("step_s"))
            notes = []
            if run["rc"] != 0:  # the notebooks' own errors follow when there are any
                notes.append(f"FAILED (exit {run['rc']})" + ("" if r.get("notebooks") else f": {run['error']}"))
            if "rows" in r and stage != "usage":
                notes.append(f"{r['rows']:,} rows")
            if "panel_s" in r:
                notes.append(f"load {r['load_s']:.1f} s, panel {r['panel_s']:.1f} s")
            elif "load_s" in r and stage != "load":
                notes.append(f"load {r['load_s']:.1f} s")
            if r.get("notebooks"):
                notes.append(_notebook_text(r["notebooks"]))
            if stage == "usage" and run["rc"] == 0:
                ratio = r["kit_s"] / max(r["floor_s"], 1e-9)
                notes.append(
                    f"plain DuckDB GROUP BY (the floor) {r['floor_s']:.2f} s; ratio {ratio:.2f}x; "
                    f"{r['rows']:,} account-month-metric rows"
                )
            lines.append(
                f"| {stage} | {_s(run['wall'])} | {'' if step is None else f'{step:.2f}'} | {run['peak_gb']:.2f} | "
                f"{run['cpu']:.0f} | {run['cpu'] / max(run['wall'], 1e-9):.2f} | {'; '.join(notes)} |"
            )
    sizes = sorted(runs)
    if len(sizes) > 1:
        lines += [
            "",
            "## Scaling (time of the step itself)",
            "",
            "| step | "
            + " | ".join(f"{b:,}/{a:,} accounts ({b / a:.1f}x)" for a, b in zip(sizes[:-1], sizes[1:]))
            + " |",
            "|---|" + "---:|" * (len(sizes) - 1),
        ]
        for stage in ("panel", "features"):
            cells = []
            for a, b in zip(sizes[:-1], sizes[1:]):
                ta, tb = _stage_time(runs, a, stage, "step_s"), _stage_time(runs, b, stage, "step_s")
                cells.append(f"{tb / ta:.2f}x" if ta and tb else "")
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    if info.get("pools_error"):
        lines += ["", f"Thread probe failed: {info['pools_error']}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,30000,100000", help="accounts of each book, comma-separated")
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--usage-rows-per-month", type=int, default=5, help="usage rows per account, month, metric")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument("--workdir", type=Path, help="where the books go (kept); default: a temporary folder")
    parser.add_argument("--skip-audit", action="store_true", help="skip the notebooks and the whole audit")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "BOOK"), help=argparse.SUPPRESS)
    parser.add_argument("--accounts", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.usage_rows_per_month <= 28:
        parser.error("--usage-rows-per-month must be 1 to 28")
    if args.child:
        child(args.child[0], Path(args.child[1]), args)
        return
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cslab-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    info = machine()
    names = [] if args.skip_audit else notebooks()
    order = ["generate", "load", "panel", "features", "usage", *(f"nb:{n}" for n in names), "audit"]
    me = [sys.executable, str(HERE)]
    print(
        f"cslab bench: sizes {', '.join(f'{n:,}' for n in sizes)} x {args.months} months; {info['cores']} cores, "
        f"{info['ram_gb']:.0f} GB; threads: {info['threads_env']}; work folder {workdir}",
        flush=True,
    )
    runs: dict[int, dict] = {}
    try:
        print("thread pools of an audit kernel (thread variables unset) ...", end=" ", flush=True)
        bare = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
        probe = measure([*me, "--child", "threads", str(workdir)], workdir / "threads", env=bare)
        if probe["rc"] == 0:
            info["pools"] = probe["result"]["pools"]
            print(", ".join(f"{p['internal_api']} {p['num_threads']}" for p in info["pools"]), flush=True)
        else:
            info["pools_error"] = probe["error"]
            print(f"failed: {probe['error']}", flush=True)
        for n in sizes:
            book = workdir / f"book-{n}"
            logs = workdir / f"logs-{n}"
            logs.mkdir(exist_ok=True)
            runs[n] = {}
            options = ["--months", str(args.months), "--seed", str(args.seed)]
            options += ["--usage-rows-per-month", str(args.usage_rows_per_month), "--accounts", str(n)]
            commands = {
                "generate": [*me, "--child", "generate", str(book), *options],
                "load": [*me, "--child", "load", str(book)],
                "panel": [*me, "--child", "panel", str(book)],
                "features": [*me, "--child", "features", str(book)],
                "usage": [*me, "--child", "usage", str(book)],
            }
            cslab = [sys.executable, "-m", "cslab.cli"]
            for name in names:
                out = workdir / f"run-{n}-{name}"
                commands[f"nb:{name}"] = [*cslab, "run", name, str(book), "--out", str(out), "--force"]
            if not args.skip_audit:
                commands["audit"] = [*cslab, "audit", str(book), "--out", str(workdir / f"audit-{n}"), "--force"]
            for stage in order:
                if stage not in commands:
                    continue
                print(f"[{n:,} accounts] {stage} ...", end=" ", flush=True)
                run = measure(commands[stage], logs / stage.replace(":", "-"))
                if "--out" in commands[stage]:  # a notebook or the audit: each notebook's status
                    run["result"]["notebooks"] = _notebook_status(Path(commands[stage][-2]))
                runs[n][stage] = run
                r = run["result"]
                extra = ""
                if stage == "generate" and run["rc"] == 0:
                    extra = f"; {r['usage_rows']:,} usage rows, {r['mb']:.1f} MB"
                elif stage == "usage" and run["rc"] == 0:
                    extra = f"; monthly {r['kit_s']:.2f} s vs GROUP BY {r['floor_s']:.2f} s"
                elif "step_s" in r:
                    extra = f"; step {r['step_s']:.2f} s"
                elif r.get("notebooks"):
                    extra = f"; {_notebook_text(r['notebooks'])}"
                status = "ok" if run["rc"] == 0 else f"FAILED (exit {run['rc']})"
                if run["rc"] != 0 and not r.get("notebooks"):
                    status += f": {run['error']}"
                print(f"{status} in {run['wall']:.1f} s, peak {run['peak_gb']:.2f} GB{extra}", flush=True)
                write_results(args.out, runs, args, info, order)
                if stage == "generate" and run["rc"] != 0:
                    break  # nothing to measure without the book
            for folder in [*workdir.glob(f"run-{n}-*"), workdir / f"audit-{n}"]:  # reports take room
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    write_results(args.out, runs, args, info, order)
    print(f"wrote {args.out}")
    for a, b, c in targets(runs, args, info):
        print(f"  {c.strip('*'):>12}  {a}: {b}")


if __name__ == "__main__":
    main()
