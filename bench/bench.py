"""`make bench`: the pipeline as its users feel it, on generated data in the Kaggle schema.

Measures (each figure at least 3 times; the median with min and max is reported):
  1. fixed overhead: a new process's session start plus the run of a day with one tiny file (tables already exist),
     against a bare session start plus one trivial Delta write;
  2. throughput: a daily run at 100k, 1M and 5M lines, per stage, lines/s, and the driver's peak RSS;
  3. floor ratio: the pipeline's run time over Spark reading the same CSVs with an explicit schema and writing them
     once to Delta, with no transformation;
  4. DuckDB ratio: the pipeline's run time over the same transformations in DuckDB SQL (bench/duckdb_pipeline.sql);
     its gold totals must equal the pipeline's;
  5. growth with history: one new day into tables holding 30 and 365 days (rows per day fixed), with the MERGE's
     numTargetFilesRemoved / numTargetRowsCopied and the files added;
  6. layout: silver's file count and median file size after 30 daily runs, before and after OPTIMIZE;
  7. catch-up: 365 landing days as one catch-up, as one landing day, and day by day;
  8. profile: where a warm tiny day's and a big day's time goes, by stage, by Delta commit (table by table) and by
     Spark job.

Every Spark measurement runs in a worker process of its own (`bench.py _worker SPEC`), so that its session start and
its peak RSS are its own. Results: bench/results/latest.json and the table in bench/README.md.
"""
from __future__ import annotations
import argparse, json, os, shutil, statistics, subprocess, sys, threading, time
from datetime import date, timedelta
from pathlib import Path

T_START = time.time()
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT/"bench"/"results"
MARK = "BENCH_RESULT "
PROGRESS = "BENCH_PROGRESS " # a worker's stderr lines that the benchmark shows as they come

# ---------------------------------------------------------------------------------------------------------------- workers
def _descendants(pid: int) -> list[int]:
    kids = []
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try:
            ppid = int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError): continue
        if ppid == pid: kids += [int(p)] + _descendants(int(p))
    return kids

def _hwm(pid: int) -> int:
    "Peak resident set size (VmHWM) of a process, bytes."
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"): return int(line.split()[1]) * 1024
    except OSError: pass
    return 0

def driver_peak_rss() -> dict:
    "Peak RSS of this Python process and of the driver JVM it started (local mode: the JVM is the driver)."
    py, jvm = _hwm(os.getpid()), sum(_hwm(p) for p in _descendants(os.getpid()))
    return {"python_bytes": py, "jvm_bytes": jvm, "total_bytes": py + jvm}

def progress(msg: str):
    "A worker's progress line: `spawn` shows it while the worker runs (a 5M section runs 40 minutes in one worker)."
    print(PROGRESS + msg, file=sys.stderr, flush=True)

def _spark(wh: str, ui: bool=False):
    from ecom_pipeline.spark import get_spark
    if not ui: return get_spark(wh, master="local[2]", shuffle_partitions=4)
    import socket
    with socket.socket() as s: # a free port for the UI, so that its REST API is found
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    return get_spark(wh, master="local[2]", shuffle_partitions=4, ui=True, extra_conf={"spark.ui.port": str(port)})

def _run(spark, root: str, wh: str, d: date, **kw) -> dict:
    from ecom_pipeline.config import PipelineConfig
    from ecom_pipeline.pipeline import run_daily
    from ecom_pipeline.alerts import AlertConfig
    cfg = PipelineConfig(source_root=root, warehouse=wh, max_quarantine_rate=0.5, on_no_data="ignore")
    t0 = time.time()
    s = run_daily(spark, cfg, d, log=lambda m: None, alerts=AlertConfig(), **kw)
    return {"day": d.isoformat(), "seconds": time.time() - t0, "stages": s.seconds, "lines": s.lines_read,
            "order_lines": s.order_lines, "status": s.status}

def _merge_metrics(spark, table: str) -> dict:
    "operationMetrics of the table's latest MERGE, and the files the latest commit added."
    h = spark.sql(f"DESCRIBE HISTORY {table}").orderBy("version", ascending=False).collect()
    m = next((r for r in h if r.operation == "MERGE"), None)
    om = dict(m.operationMetrics) if m else {}
    return {k: int(om.get(k, 0)) for k in ("numTargetFilesRemoved", "numTargetFilesAdded", "numTargetRowsCopied",
                                            "numTargetRowsUpdated", "numTargetRowsInserted")}

def _files(spark, table: str) -> dict:
    files = spark.table(table).inputFiles()
    sizes = sorted(os.path.getsize(f.removeprefix("file:")) for f in files)
    return {"files": len(sizes), "median_file_bytes": int(statistics.median(sizes)) if sizes else 0, "bytes": sum(sizes)}

def worker(spec: dict) -> dict:
    kind, wh = spec["kind"], spec.get("warehouse")
    if kind == "bare": # a bare Delta session and one trivial Delta write, from process start
        spark = _spark(wh)
        t_session = time.time() - T_START
        spark.range(1).write.format("delta").mode("overwrite").save(str(Path(wh)/"_trivial"))
        return {"seconds": time.time() - T_START, "session_seconds": t_session}
    if kind == "prepare": # create the tables with a tiny first day (not timed)
        spark = _spark(wh)
        return _run(spark, spec["root"], wh, date.fromisoformat(spec["day"]))
    if kind == "overhead": # session start + a tiny day into existing tables, from process start
        spark = _spark(wh)
        t_session = time.time() - T_START
        r = _run(spark, spec["root"], wh, date.fromisoformat(spec["day"]))
        secs = time.time() - T_START
        warm = _run(spark, spec["root"], wh, date.fromisoformat(spec["warm_day"])) if spec.get("warm_day") else None
        return {"seconds": secs, "session_seconds": t_session, "run": r, "warm": warm}
    if kind == "throughput": # days of N lines, each in its own month, into existing tables; then the bare floor
        spark = _spark(wh)
        runs, floors = [], []
        for i, (d, files) in enumerate(zip(spec["days"], spec["files"]), 1):
            runs.append(_run(spark, spec["root"], wh, date.fromisoformat(d)))
            if spec.get("floor"): floors.append(floor(spark, files, str(Path(wh)/f"_floor_{d}")))
            progress(f"day {i}/{len(spec['days'])}: {runs[-1]['lines']:,} lines in {runs[-1]['seconds']:.1f} s"
                     + (f", bare floor {floors[-1]['seconds']:.1f} s" if floors else ""))
        return {"runs": runs, "floors": floors, "rss": driver_peak_rss(),
                "gold": gold_totals(spark, [date.fromisoformat(d) for d in spec["days"]]) if spec.get("gold") else None}
    if kind == "history": # one landing day holding N days of order history, then new days one by one
        spark = _spark(wh)
        build = _run(spark, spec["root"], wh, date.fromisoformat(spec["history_day"]))
        progress(f"history built: {build['lines']:,} lines in {build['seconds']:.1f} s")
        from ecom_pipeline.config import Tables
        t = Tables("spark_catalog")
        runs = []
        for d in spec["days"]:
            r = _run(spark, spec["root"], wh, date.fromisoformat(d))
            r["merge"] = _merge_metrics(spark, t.orders_cleaned)
            r["silver_files"] = _files(spark, t.orders_cleaned)["files"]
            runs.append(r)
            progress(f"new day {len(runs)}/{len(spec['days'])}: {r['seconds']:.1f} s")
        return {"build": build, "runs": runs, "silver_rows": spark.table(t.orders_cleaned).count()}
    if kind == "layout": # 30 daily runs, then OPTIMIZE
        spark = _spark(wh)
        from ecom_pipeline.config import PipelineConfig
        from ecom_pipeline.maintenance import maintain
        runs = []
        for d in spec["days"]:
            runs.append(_run(spark, spec["root"], wh, date.fromisoformat(d)))
            if len(runs) % 10 == 0 or len(runs) == len(spec["days"]): progress(f"{len(runs)}/{len(spec['days'])} daily runs")
        cfg = PipelineConfig(source_root=spec["root"], warehouse=wh)
        before = _files(spark, cfg.tables.orders_cleaned)
        t0 = time.time()
        maintain(spark, cfg, log=lambda m: None)
        return {"runs": runs, "before": before, "after": _files(spark, cfg.tables.orders_cleaned),
                "optimize_seconds": time.time() - t0}
    if kind == "catchup": # the landing days as one catch-up into an empty lakehouse
        spark = _spark(wh)
        from ecom_pipeline.alerts import AlertConfig
        from ecom_pipeline.config import PipelineConfig
        from ecom_pipeline.pipeline import catch_up
        cfg = PipelineConfig(source_root=spec["root"], warehouse=wh, max_quarantine_rate=0.5, on_no_data="ignore")
        days = [date.fromisoformat(d) for d in spec["days"]]
        t0 = time.time()
        out = catch_up(spark, cfg, days, log=lambda m: None, alerts=AlertConfig(),
                       progress=lambda n, total, lines: progress(f"catch-up: {n}/{total} days, {lines:,} lines"))
        secs = time.time() - t0
        batches = {}
        for x in out: batches.setdefault(x.batch, x.seconds)
        return {"seconds": secs, "lines": sum(x.lines_read for x in out), "failed": sum(x.status != "succeeded" for x in out),
                "batches": list(batches.values()), "gold": gold_totals(spark, days) if spec.get("gold") else None}
    if kind == "days": # landing days one by one (the first of them also creates the tables)
        spark = _spark(wh)
        days = [date.fromisoformat(d) for d in spec["days"]]
        runs = []
        for i, d in enumerate(days, 1):
            runs.append(_run(spark, spec["root"], wh, d))
            if i % 5 == 0 or i == len(days): progress(f"day by day: {i}/{len(days)}, last {runs[-1]['seconds']:.1f} s")
        return {"runs": runs, "gold": gold_totals(spark, days) if spec.get("gold") else None}
    if kind == "profile": # days in one process (the first creates the tables); the later ones profiled
        spark = _spark(wh, ui=True)
        days = [date.fromisoformat(d) for d in spec["days"]]
        _run(spark, spec["root"], wh, days[0])
        return {"days": [profile_day(spark, spec["root"], wh, d) for d in days[1:]]}
    raise ValueError(kind)

def _versions(spark) -> dict:
    "Each table's latest Delta version (the lakehouse's tables, by name)."
    from ecom_pipeline.config import Tables
    from ecom_pipeline.pipeline import all_table_names
    out = {}
    for t in all_table_names(Tables("spark_catalog")):
        try: out[".".join(t.split(".")[-2:])] = spark.sql(f"DESCRIBE HISTORY {t} LIMIT 1").first().version
        except Exception: pass # not there yet
    return out

def _jobs(spark) -> list[dict]:
    "The session's Spark jobs so far, from the UI's REST API (the worker's session has the UI on)."
    import urllib.request
    url = f"http://127.0.0.1:{spark.conf.get('spark.ui.port')}/api/v1/applications/{spark.conf.get('spark.app.id')}/jobs"
    return json.load(urllib.request.urlopen(url, timeout=30))

def _job_seconds(j: dict) -> float:
    from datetime import datetime
    f = lambda x: datetime.strptime(x.replace("GMT", ""), "%Y-%m-%dT%H:%M:%S.%f")
    return (f(j["completionTime"]) - f(j["submissionTime"])).total_seconds() if j.get("completionTime") else 0.0

def profile_day(spark, root: str, wh: str, d: date) -> dict:
    "One daily run with its Delta commits per table, its Spark jobs (count, seconds, the costliest kinds) and its stages."
    v0, j0 = _versions(spark), {j["jobId"] for j in _jobs(spark)}
    r = _run(spark, root, wh, d)
    v1, jobs = _versions(spark), [j for j in _jobs(spark) if j["jobId"] not in j0]
    kinds = {}
    for j in jobs: # a job's description names the Delta operation or the line of ecom_pipeline that started it
        k = " ".join((j.get("description") or j.get("name") or "?").split())[:100]
        n, secs = kinds.get(k, (0, 0.0)); kinds[k] = (n + 1, secs + _job_seconds(j))
    r["commits"] = {t: v1[t] - v0.get(t, -1) for t in v1 if v1[t] != v0.get(t, -1)}
    r["jobs"], r["job_seconds"] = len(jobs), sum(secs for _, secs in kinds.values())
    r["job_kinds"] = sorted(([k, n, round(s, 2)] for k, (n, s) in kinds.items()), key=lambda x: -x[2])[:15]
    progress(f"profiled {d}: {r['lines']:,} lines in {r['seconds']:.1f} s, {sum(r['commits'].values())} commits, {len(jobs)} jobs")
    return r

KAGGLE_SCHEMA = ("Order_Date STRING, Time STRING, Aging DOUBLE, Customer_Id STRING, Gender STRING, Device_Type STRING, "
                 "Customer_Login_type STRING, Product_Category STRING, Product STRING, Sales DOUBLE, Quantity DOUBLE, "
                 "Discount DOUBLE, Profit DOUBLE, Shipping_Cost DOUBLE, Order_Priority STRING, Payment_method STRING")

def floor(spark, files: list[str], path: str) -> dict:
    "The bare floor: read the CSVs with an explicit schema and write them once to Delta."
    t0 = time.time()
    spark.read.csv(files, header=True, schema=KAGGLE_SCHEMA).write.format("delta").mode("overwrite").save(path)
    return {"seconds": time.time() - t0}

def gold_totals(spark, days: list[date]) -> dict:
    "(order_date, category) -> [orders, units, net_revenue] of gold, for the order dates of the landing days' months."
    months = {(d.year, d.month) for d in days}
    out = {}
    for r in spark.table("spark_catalog.analytics.sales_metrics").collect():
        if (r.order_date.year, r.order_date.month) in months:
            out[f"{r.order_date}|{r.product_category}"] = [r.orders, r.units, str(r.net_revenue)]
    return out

# ---------------------------------------------------------------------------------------------------------------- driver
def spawn(spec: dict, timeout: int=7200) -> dict:
    "Run one worker process; its progress lines are shown as they come, its result is the last MARK line of stdout."
    env = {**os.environ, "ECOM_DRIVER_MEMORY": spec.get("driver_memory") or os.environ.get("ECOM_DRIVER_MEMORY", "2g")}
    p = subprocess.Popen([sys.executable, __file__, "_worker", json.dumps(spec)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    out, err, timed_out = [], [], []
    reader = threading.Thread(target=lambda: out.extend(p.stdout), daemon=True)
    killer = threading.Timer(timeout, lambda: (timed_out.append(True), p.kill()))
    reader.start(); killer.start()
    for l in p.stderr:
        err.append(l)
        if l.startswith(PROGRESS): say("    " + l[len(PROGRESS):].rstrip())
    p.wait(); killer.cancel(); reader.join()
    stdout, stderr = "".join(out), "".join(err)
    line = next((l for l in reversed(stdout.splitlines()) if l.startswith(MARK)), None)
    if p.returncode != 0 or line is None:
        log = RESULTS/f"worker-{spec['kind']}-failed.log"
        RESULTS.mkdir(parents=True, exist_ok=True); log.write_text(stderr)
        # the exception lines (Python's and the JVM's "Caused by"), not the frames: the cause is rarely in the last lines
        causes = [l for l in stderr.splitlines() if not l.lstrip().startswith(("at ", "...")) and
                  ("Error" in l or "Exception" in l or "Caused by" in l)]
        why = f"killed after {timeout} s" if timed_out else f"exit {p.returncode}"
        raise RuntimeError(f"bench worker {spec['kind']} failed ({why}); whole stderr in {log}:\n"
                           + "\n".join(causes[:15])[:4000] + "\n...\n" + stderr[-1500:])
    return json.loads(line[len(MARK):])

def say(msg: str): print(f"[bench {time.time() - T_START:7.0f}s] {msg}", file=sys.stderr, flush=True)

def stats(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs), "values": xs}

def generate_day(root: Path, d: date, rows: int, seed: int, days: int=1) -> list[str]:
    from ecom_pipeline.sample_data import CLEAN, generate
    generate(str(root), d, days, rows, seed, messiness=CLEAN)
    return [str(f) for i in range(days) for f in sorted((root/f"{d + timedelta(days=i):%Y/%m/%d}").glob("*.csv"))]

def month_days(n: int, first: date) -> list[date]:
    "n landing days, each in its own month (so one day's MERGE never meets another's rows)."
    out, d = [], first
    for _ in range(n):
        out.append(d); d = (d.replace(day=1) + timedelta(days=62)).replace(day=10)
    return out

def duckdb_run(files: list[str], db: Path, threads: int=2) -> tuple[float, dict]:
    "The DuckDB implementation on the same files: (seconds, gold totals)."
    import duckdb
    sql = (ROOT/"bench"/"duckdb_pipeline.sql").read_text().replace("{files}", json.dumps(files).replace('"', "'"))
    if db.exists(): db.unlink()
    con = duckdb.connect(str(db)); con.execute(f"SET threads = {threads}")
    t0 = time.time()
    con.execute(sql)
    secs = time.time() - t0
    gold = {f"{r[0]}|{r[1]}": [r[2], r[3], f"{r[4]:.2f}"] for r in
            con.execute("SELECT order_date, product_category, orders, units, net_revenue FROM sales_metrics").fetchall()}
    con.close()
    return secs, gold

def overhead(work: Path, reps: int, res: dict, tiny: date):
    say("fixed overhead: bare session + trivial Delta write vs session + a tiny day into existing tables")
    root = work/"overhead"/"landing"; wh = str(work/"overhead"/"wh")
    generate_day(root, tiny, 60, 1)
    days = [tiny + timedelta(days=1 + i) for i in range(2 * reps)] # each process: a first tiny day, then a second one (warm)
    for i, d in enumerate(days): generate_day(root, d, 10, 2 + i)
    spawn({"kind": "prepare", "warehouse": wh, "root": str(root), "day": tiny.isoformat()})
    bare, over = [], []
    for i in range(reps):
        bare.append(spawn({"kind": "bare", "warehouse": str(work/"overhead"/f"bare{i}")})["seconds"])
        over.append(spawn({"kind": "overhead", "warehouse": wh, "root": str(root), "day": days[2 * i].isoformat(),
                           "warm_day": days[2 * i + 1].isoformat()}))
    res["overhead"] = {"bare_seconds": stats(bare), "pipeline_seconds": stats([o["seconds"] for o in over]),
                       "pipeline_stages": [o["run"]["stages"] for o in over],
                       "warm_day_seconds": stats([o["warm"]["seconds"] for o in over]),
                       "warm_day_stages": [o["warm"]["stages"] for o in over]}
    res["overhead_ratio"] = statistics.median(o["seconds"] / b for o, b in zip(over, bare))
    # a second tiny day in the same process against the same denominator: what a day costs once the session is up
    res["warm_overhead_ratio"] = statistics.median(o["warm"]["seconds"] / b for o, b in zip(over, bare))
    say(f"  overhead ratio {res['overhead_ratio']:.2f}, warm {res['warm_overhead_ratio']:.2f} (bare {statistics.median(bare):.1f}s)")

def profile(work: Path, res: dict, tiny: date, big_lines: int):
    "Where the time goes: two warm tiny days and one big day in one process, by stage, by Delta commit and by Spark job."
    say(f"profile: a tiny day (10 lines) twice and a day of ~{big_lines:,} lines, one process, Spark's UI on")
    root = work/"profile"/"landing"; wh = str(work/"profile"/"wh")
    days = [tiny, tiny + timedelta(days=1), tiny + timedelta(days=2), tiny + timedelta(days=3)]
    generate_day(root, days[0], 60, 1)
    for i, d in enumerate(days[1:3]): generate_day(root, d, 10, 2 + i)
    generate_day(root, days[3], big_lines, 3)
    r = spawn({"kind": "profile", "warehouse": wh, "root": str(root), "days": [d.isoformat() for d in days]})
    res["profile"] = {"tiny": r["days"][1], "big": r["days"][2]} # the first tiny day after the prepare day warms the session
    shutil.rmtree(work/"profile", ignore_errors=True)

SECTIONS = ("overhead", "100k", "1m", "history", "layout", "catchup", "profile", "5m")
# issue #22's targets, each a top-level key of latest.json measured in the same run
TARGETS = [("floor_ratio_1m", "<=", 8), ("duckdb_ratio_1m", "<=", 8), ("overhead_ratio", "<=", 2.5), ("warm_overhead_ratio", "<=", 1.5),
           ("history_ratio_365_vs_30", "<=", 1.15), ("scaling_5m_vs_1m", ">=", 0.8), ("catchup_ratio_365", "<=", 1.5),
           ("catchup_speedup", ">=", 50)]

def target(key: str) -> str:
    "The target of a top-level figure as the table shows it (`≤ 8`), or empty."
    return next((f"{'≤' if op == '<=' else '≥'} {v}" for k, op, v in TARGETS if k == key), "")

def main(argv=None):
    ap = argparse.ArgumentParser(prog="make bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes and one repetition, to try the benchmark itself (minutes)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each figure (default 3)")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated subset of {','.join(SECTIONS)} (default: all, in that order); the sections not "
                    "run keep their figures from bench/results/latest.json, marked with the commit they measured")
    ap.add_argument("--heap-5m", default=None, help="driver heap (ECOM_DRIVER_MEMORY) of the 5M section (default: the default "
                    "heap, $ECOM_DRIVER_MEMORY or 2g, as the other sections; scaling_5m_vs_1m compares like with like); the "
                    "driver's peak RSS is reported either way")
    ap.add_argument("--work", default=str(ROOT/"bench"/"work"), help="scratch folder (deleted at the start)")
    a = ap.parse_args(argv)
    sections = [x for x in a.sections.split(",") if x]
    if set(sections) - set(SECTIONS): ap.error(f"unknown section(s): {', '.join(sorted(set(sections) - set(SECTIONS)))}")
    reps = 1 if a.quick else a.reps
    sizes = {"100k": 20_000, "1m": 60_000, "5m": 120_000} if a.quick else {"100k": 100_000, "1m": 1_000_000, "5m": 5_000_000}
    hist_rows, hist_days = (500, {"30": 30, "365": 60}) if a.quick else (5_000, {"30": 30, "365": 365})
    work = Path(a.work)
    shutil.rmtree(work, ignore_errors=True); work.mkdir(parents=True)
    res = {"machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]}, "quick": a.quick, "reps": reps,
           "throughput": {}, "history": {}, "provenance": {}}
    carry_forward(res, sections, a.quick, reps)
    tiny = date(2018, 12, 1)

    # 1. fixed overhead
    if "overhead" in sections:
        overhead(work, reps, res, tiny)

    # 2-4. throughput, floor, DuckDB
    def run_size(label: str, n: int, heap: str|None=None):
        say(f"throughput {label}: generating {reps} day(s) of ~{n:,} lines")
        root = work/f"t{label}"/"landing"; wh = str(work/f"t{label}"/"wh")
        generate_day(root, tiny, 60, 1)
        days = month_days(reps, date(2019, 1, 10))
        files = [generate_day(root, d, n, 100 + i) for i, d in enumerate(days)]
        spawn({"kind": "prepare", "warehouse": wh, "root": str(root), "day": tiny.isoformat()})
        say(f"  running {reps} day(s)")
        r = spawn({"kind": "throughput", "warehouse": wh, "root": str(root), "days": [d.isoformat() for d in days],
                   "files": files, "floor": label == "1m", "gold": True, "driver_memory": heap})
        runs = r["runs"]
        entry = {"lines": [x["lines"] for x in runs], "run_seconds": stats([x["seconds"] for x in runs]),
                 "lines_per_second": stats([x["lines"] / x["seconds"] for x in runs]),
                 "stage_seconds": {k: stats([x["stages"].get(k, 0.0) for x in runs]) for k in runs[0]["stages"]},
                 "driver_peak_rss": r["rss"], "driver_memory": heap or os.environ.get("ECOM_DRIVER_MEMORY", "2g")}
        duck = [duckdb_run(f, work/f"t{label}"/"duck.db") for f in files]
        mismatch = [k for (s, g) in duck for k in g if g[k] != r["gold"].get(k)] + \
                   [k for k in r["gold"] if not any(k in g for _, g in duck)]
        if mismatch: raise AssertionError(f"DuckDB gold differs from the pipeline's at {label}: {mismatch[:5]}")
        entry["duckdb_seconds"] = stats([s for s, _ in duck])
        entry["duckdb_ratio"] = statistics.median(x["seconds"] / s for x, (s, _) in zip(runs, duck))
        entry["duckdb_gold_rows_checked"] = sum(len(g) for _, g in duck)
        if r["floors"]:
            entry["floor_seconds"] = stats([f["seconds"] for f in r["floors"]])
            entry["floor_ratio"] = statistics.median(x["seconds"] / f["seconds"] for x, f in zip(runs, r["floors"]))
        res["throughput"][label] = entry
        say(f"  {label}: run {entry['run_seconds']['median']:.1f}s, {entry['lines_per_second']['median']:,.0f} lines/s, "
            f"peak RSS {r['rss']['total_bytes'] / 2**30:.2f} GiB, DuckDB ratio {entry['duckdb_ratio']:.1f}"
            + (f", floor ratio {entry['floor_ratio']:.2f}" if "floor_ratio" in entry else ""))
        shutil.rmtree(work/f"t{label}", ignore_errors=True)
        save()

    timed_until = [T_START]
    def save():
        "Write what is measured so far (a long run that is stopped keeps its figures)."
        ratios(res)
        res["sections_done"] = [x for x in sections if has_section(res, x)]
        res["total_seconds"] = time.time() - T_START
        for x in res["sections_done"]: # save() runs after each section: what it took is the time since the last one ended
            if "seconds" not in res["provenance"][x]:
                res["provenance"][x]["seconds"], timed_until[0] = time.time() - timed_until[0], time.time()
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS/("quick.json" if a.quick else "latest.json")).write_text(json.dumps(res, indent=1, sort_keys=True, default=str) + "\n")
        if not a.quick: write_readme(res, summary_table(res))

    save()
    for label in ("100k", "1m"):
        if label in sections: run_size(label, sizes[label])

    # 5. growth with history
    for label, ndays in (hist_days.items() if "history" in sections else []):
        say(f"history {label}: one landing day holding {ndays} days x {hist_rows:,} lines, then {reps} new day(s)")
        root = work/f"h{label}"/"landing"; wh = str(work/f"h{label}"/"wh")
        first = date(2020, 1, 1)
        hist_day = first + timedelta(days=ndays)
        generate_day(root, first, hist_rows, 7, days=ndays)
        target = root/f"{hist_day:%Y/%m/%d}"; target.mkdir(parents=True, exist_ok=True)
        for i in range(ndays): # the history lands as one day folder: one run builds it
            src = root/f"{first + timedelta(days=i):%Y/%m/%d}"
            for f in src.glob("*.csv"): f.rename(target/f"{first + timedelta(days=i):%Y%m%d}_{f.name}")
        new = [hist_day + timedelta(days=1 + i) for i in range(reps)]
        for i, d in enumerate(new): generate_day(root, d, hist_rows, 50 + i)
        r = spawn({"kind": "history", "warehouse": wh, "root": str(root), "history_day": hist_day.isoformat(),
                   "days": [d.isoformat() for d in new]})
        res["history"][label] = {"history_days": ndays, "rows_per_day": hist_rows, "silver_rows": r["silver_rows"],
                                 "build_seconds": r["build"]["seconds"], "run_seconds": stats([x["seconds"] for x in r["runs"]]),
                                 "merge": [x["merge"] for x in r["runs"]], "silver_files": [x["silver_files"] for x in r["runs"]],
                                 "stage_seconds": [x["stages"] for x in r["runs"]]}
        say(f"  {label}: new day {res['history'][label]['run_seconds']['median']:.1f}s")
        shutil.rmtree(work/f"h{label}", ignore_errors=True)
        save()

    # 6. layout after 30 daily runs
    if "layout" in sections:
        days = [date(2021, 3, 1) + timedelta(days=i) for i in range(30 if not a.quick else 8)]
        say(f"layout: {len(days)} daily runs, then OPTIMIZE")
        root = work/"layout"/"landing"; wh = str(work/"layout"/"wh")
        generate_day(root, days[0], 2_000 if not a.quick else 300, 9, days=len(days))
        r = spawn({"kind": "layout", "warehouse": wh, "root": str(root), "days": [d.isoformat() for d in days]})
        res["layout"] = {"daily_runs": len(days), "before": r["before"], "after": r["after"], "optimize_seconds": r["optimize_seconds"],
                         "run_seconds": stats([x["seconds"] for x in r["runs"]])}
        save()

    # 7. catch-up: a year of landing days (a) as one catch-up, (b) landed as one day, (c) day by day for 30 days, x 365/30
    if "catchup" in sections:
        ndays, rows = (365, 5_000) if not a.quick else (40, 500)
        first = date(2022, 1, 1)
        days = [first + timedelta(days=i) for i in range(ndays)]
        say(f"catch-up: {ndays} landing days x {rows:,} lines: (a) one catch-up, (b) landed as one day, (c) day by day for 30 days")
        root = work/"catchup"/"landing"
        generate_day(root, first, rows, 11, days=ndays)
        a_runs = []
        for rep in range(reps):
            a_runs.append(spawn({"kind": "catchup", "warehouse": str(work/"catchup"/f"wh_a{rep}"), "root": str(root),
                                 "days": [d.isoformat() for d in days]}))
            shutil.rmtree(work/"catchup"/f"wh_a{rep}", ignore_errors=True)
            say(f"  (a) catch-up of {a_runs[-1]['lines']:,} lines: {a_runs[-1]['seconds']:.1f} s")
        # (b) the same files in one day folder (names keep their day, so none collide)
        one = root.parent/"landing_one"; one_day = first + timedelta(days=ndays + 30)
        target = one/f"{one_day:%Y/%m/%d}"; target.mkdir(parents=True)
        for d in days:
            for f in (root/f"{d:%Y/%m/%d}").glob("*.csv"): os.link(f, target/f"{d:%Y%m%d}_{f.name}")
        shutil.copytree(root/"reference", one/"reference", dirs_exist_ok=True) if (root/"reference").is_dir() else None
        b_runs = []
        for rep in range(reps):
            r = spawn({"kind": "days", "warehouse": str(work/"catchup"/f"wh_b{rep}"), "root": str(one), "days": [one_day.isoformat()]})
            b_runs.append(r["runs"][0]); shutil.rmtree(work/"catchup"/f"wh_b{rep}", ignore_errors=True)
            say(f"  (b) one day of {b_runs[-1]['lines']:,} lines: {b_runs[-1]['seconds']:.1f} s")
        # (c) day by day, the first 30 days, and the catch-up of the same 30 days: their gold must be equal
        c = spawn({"kind": "days", "warehouse": str(work/"catchup"/"wh_c"), "root": str(root),
                   "days": [d.isoformat() for d in days[:30]], "gold": True})
        c30 = spawn({"kind": "catchup", "warehouse": str(work/"catchup"/"wh_c30"), "root": str(root),
                     "days": [d.isoformat() for d in days[:30]], "gold": True})
        if c["gold"] != c30["gold"] or not c["gold"]:
            diff = sorted(set(c["gold"].items()) ^ set(c30["gold"].items()))[:5]
            raise AssertionError(f"the catch-up's gold differs from day by day's over the first 30 days: {diff}")
        per_day = [x["seconds"] for x in c["runs"][1:]] # the first day also creates the tables
        a_med, b_med = statistics.median(x["seconds"] for x in a_runs), statistics.median(x["seconds"] for x in b_runs)
        c_est = statistics.median(per_day) * ndays
        res["catchup"] = {"landing_days": ndays, "lines_per_day": rows, "lines": a_runs[0]["lines"],
                          "catch_up_seconds": stats([x["seconds"] for x in a_runs]), "batches": len(a_runs[0]["batches"]),
                          "batch_stage_seconds": a_runs[0]["batches"],
                          "one_day_seconds": stats([x["seconds"] for x in b_runs]), "one_day_stages": b_runs[0]["stages"],
                          "day_by_day_seconds_per_day": stats(per_day), "day_by_day_estimate_seconds": c_est,
                          "gold_rows_checked_30_days": len(c["gold"])}
        res["catchup_ratio_365"], res["catchup_speedup"] = a_med / b_med, c_est / a_med
        say(f"  catch-up {a_med:.0f} s, one day {b_med:.0f} s (ratio {res['catchup_ratio_365']:.2f}), day by day ~{c_est:.0f} s "
            f"(speed-up {res['catchup_speedup']:.0f}x); gold of 30 days equal ({len(c['gold']):,} rows)")
        shutil.rmtree(work/"catchup", ignore_errors=True)
        save()

    if "profile" in sections:
        profile(work, res, tiny, 60_000 if a.quick else 1_000_000)
        save()

    if "5m" in sections: run_size("5m", sizes["5m"], a.heap_5m) # the longest, last
    shutil.rmtree(work, ignore_errors=True)

    res["targets"] = {f"{k} {op} {v}": (res[k] <= v if op == "<=" else res[k] >= v) for k, op, v in TARGETS if k in res}
    save()
    say(f"results in {RESULTS/('quick.json' if a.quick else 'latest.json')}")
    table = summary_table(res)
    print(table)
    if not a.quick: write_readme(res, table)

def code_version() -> str:
    "The commit measured, `-dirty` when the package or the benchmark differ from it."
    run = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    sha = run("rev-parse", "--short", "HEAD") or "unknown"
    return sha + ("-dirty" if run("status", "--porcelain", "--", "ecom_pipeline", "bench/bench.py", "bench/duckdb_pipeline.sql") else "")

def carry_forward(res: dict, sections: list, quick: bool, reps: int):
    """A run of some sections keeps the other sections' figures of bench/results/latest.json, each marked with the commit
    and date it was measured on (`provenance`), so that one section can be measured again without the whole 100 minutes."""
    now = {"commit": code_version(), "date": time.strftime("%Y-%m-%d", time.gmtime()), "reps": reps}
    for s in sections: res["provenance"][s] = dict(now, reps=1 if s == "profile" else reps) # the profile runs once; each gets its own "seconds" when done
    prev_file = RESULTS/"latest.json"
    if quick or set(sections) == set(SECTIONS) or not prev_file.exists(): return
    prev = json.loads(prev_file.read_text())
    old = prev.get("provenance", {})
    unknown = {"commit": prev.get("commit", "unknown"), "date": prev.get("date", "unknown"), "reps": prev.get("reps")}
    for s in SECTIONS:
        if s in sections: continue
        if s == "overhead" and "overhead" in prev:
            res["overhead"], res["overhead_ratio"] = prev["overhead"], prev["overhead_ratio"]
            if "warm_overhead_ratio" in prev: res["warm_overhead_ratio"] = prev["warm_overhead_ratio"]
        elif s == "profile" and "profile" in prev: res["profile"] = prev["profile"]
        elif s in prev.get("throughput", {}): res["throughput"][s] = prev["throughput"][s]
        elif s == "history" and len(prev.get("history", {})) == 2: res["history"] = prev["history"]
        elif s == "layout" and "layout" in prev: res["layout"] = prev["layout"]
        elif s == "catchup" and "catchup" in prev:
            res["catchup"], res["catchup_ratio_365"], res["catchup_speedup"] = prev["catchup"], prev["catchup_ratio_365"], prev["catchup_speedup"]
        else: continue
        res["provenance"][s] = old.get(s, unknown)

def write_readme(res: dict, table: str):
    "Put the results table into bench/README.md, between its results markers."
    readme = ROOT/"bench"/"README.md"
    text = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    head, rest = text.split(start, 1)
    body = (f"{start}\nMeasured by `make bench` on {res['machine']['cores']} cores, Python {res['machine']['python']}, "
            f"{measuring_seconds(res) / 60:.0f} minutes in all (`bench/results/latest.json`)." # repetitions: by section, below
            + provenance_line(res) + "\n\n"
            + table + "\n\nTargets met: " + (", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in sorted(res.get("targets", {}).items(), key=_target_rank))
                       or f"(run in progress or stopped; sections done: {', '.join(res.get('sections_done', [])) or 'none'})") + "\n")
    text = head + body + end + rest.split(end, 1)[1]
    ps, pe = "<!-- profile:start -->", "<!-- profile:end -->"
    if "profile" in res and ps in text: # the profile's tables, in their own block further down
        head, rest = text.split(ps, 1)
        text = head + ps + "\n" + profile_tables(res) + "\n" + pe + rest.split(pe, 1)[1]
    readme.write_text(text)

def _target_rank(kv) -> int:
    "Sort key of a `targets` entry (`floor_ratio_1m <= 8`: met): the order of TARGETS, whatever order latest.json kept."
    return next((i for i, (k, _, _) in enumerate(TARGETS) if kv[0].split(" ")[0] == k), len(TARGETS))

def measuring_seconds(res: dict) -> float:
    "What the figures in `res` took to measure: the sum of its sections' times when they are known (some may be carried)."
    held = [res["provenance"].get(s, {}) for s in SECTIONS if has_section(res, s)]
    return sum(p["seconds"] for p in held) if held and all("seconds" in p for p in held) else res["total_seconds"]

def has_section(res: dict, s: str) -> bool:
    "Whether `res` holds the figures of section `s`."
    if s in ("overhead", "layout", "catchup", "profile"): return s in res
    if s == "history": return len(res.get("history", {})) == 2
    return s in res.get("throughput", {})

def ratios(res: dict):
    "Set the top-level figures of latest.json that the sections measured so far give."
    t = res.get("throughput", {})
    if "1m" in t: res["floor_ratio_1m"], res["duckdb_ratio_1m"] = t["1m"]["floor_ratio"], t["1m"]["duckdb_ratio"]
    if "5m" in t: res["driver_peak_rss_gib_5m"] = t["5m"]["driver_peak_rss"]["total_bytes"] / 2**30
    res.pop("scaling_5m_vs_1m", None)
    if "1m" in t and "5m" in t and same_code(res, "1m", "5m"): # lines/s at 5M over lines/s at 1M: 1 is linear, less is
        # slower per line as the day grows; two sections measured on different commits would compare the code, not the sizes
        res["scaling_5m_vs_1m"] = t["5m"]["lines_per_second"]["median"] / t["1m"]["lines_per_second"]["median"]
    h = res.get("history", {})
    if "30" in h and "365" in h: res["history_ratio_365_vs_30"] = h["365"]["run_seconds"]["median"] / h["30"]["run_seconds"]["median"]

def same_code(res: dict, *sections: str) -> bool:
    "Whether these sections were measured on one commit (a run of some sections carries the others from an earlier one)."
    return len({res.get("provenance", {}).get(s, {}).get("commit") for s in sections}) == 1

def provenance_line(res: dict) -> str:
    "Which commit each section was measured on, when they differ."
    by = {}
    prov = res.get("provenance", {})
    for s, p in ((s, prov[s]) for s in SECTIONS if s in prov):
        if has_section(res, s): by.setdefault(f"{p['commit']} ({p['date']}, {'one run' if p.get('reps') == 1 else str(p.get('reps') or '?') + ' repetitions'})", []).append(s)
    if len(by) < 2: return ""
    return " Sections by the code they measured: " + "; ".join(f"{', '.join(v)} on {k}" for k, v in by.items()) + "."

STAGE_ORDER = ["setup", "ingest", "reference", "silver", "gold", "anomalies", "total"] # a run's stages, in the order they run

def by_stage(kv) -> int:
    "Sort key of a (stage, value) pair: the run's order (results read back from latest.json have their keys sorted)."
    return STAGE_ORDER.index(kv[0]) if kv[0] in STAGE_ORDER else len(STAGE_ORDER)

def summary_table(res: dict) -> str:
    "The markdown table of bench/README.md; sections not measured are left out."
    f = lambda s, fmt="{:.1f}": f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"
    rows = ["| figure | median (min–max) | target |", "|---|---|---|"]
    if "overhead" in res:
        rows += [f"| fixed overhead: bare session + trivial Delta write, s | {f(res['overhead']['bare_seconds'])} | |",
                 f"| fixed overhead: session + a tiny day into existing tables, s | {f(res['overhead']['pipeline_seconds'])} | |",
                 f"| **overhead_ratio** | {res['overhead_ratio']:.2f} | {target('overhead_ratio')} |"]
        if "warm_overhead_ratio" in res:
            rows += [f"| a second tiny day in the same process, s | {f(res['overhead']['warm_day_seconds'])} | |",
                     f"| **warm_overhead_ratio** (that / bare session + trivial write) | {res['warm_overhead_ratio']:.2f} | "
                     f"{target('warm_overhead_ratio')} |"]
    for label, e in sorted(res.get("throughput", {}).items(), key=lambda kv: SECTIONS.index(kv[0])):
        rows.append(f"| {label}: lines in the day | {statistics.median(e['lines']):,.0f} | |")
        rows.append(f"| {label}: run, s | {f(e['run_seconds'])} | |")
        rows.append(f"| {label}: lines/s | {f(e['lines_per_second'], '{:,.0f}')} | |")
        rows.append(f"| {label}: per stage (median), s | " + ", ".join(f"{k} {v['median']:.1f}" for k, v in sorted(e["stage_seconds"].items(), key=by_stage)) + " | |")
        rows.append(f"| {label}: driver peak RSS (JVM + Python; heap {e.get('driver_memory', '2g')}), GiB | "
                    f"{e['driver_peak_rss']['total_bytes'] / 2**30:.2f} | |")
        rows.append(f"| {label}: DuckDB, s | {f(e['duckdb_seconds'])} | |")
        rows.append(f"| **{label}: DuckDB ratio** | {e['duckdb_ratio']:.1f} | {target('duckdb_ratio_1m') if label == '1m' else 'reported'} |")
        if "floor_ratio" in e:
            rows.append(f"| {label}: bare floor (CSV → Delta), s | {f(e['floor_seconds'])} | |")
            rows.append(f"| **floor_ratio_1m** | {e['floor_ratio']:.2f} | {target('floor_ratio_1m')} |")
    for h in res.get("history", {}).values():
        m = h["merge"][len(h["merge"]) // 2]
        rows.append(f"| new day ({h['rows_per_day']:,} lines) into {h['history_days']} days of history, s | {f(h['run_seconds'])} | |")
        rows.append(f"| … its MERGE: target files removed / added, rows copied | {m['numTargetFilesRemoved']} / "
                    f"{m['numTargetFilesAdded']}, {m['numTargetRowsCopied']:,} | |")
    if "history_ratio_365_vs_30" in res:
        rows.append(f"| **history_ratio_365_vs_30** | {res['history_ratio_365_vs_30']:.2f} | {target('history_ratio_365_vs_30')} |")
    if "scaling_5m_vs_1m" in res:
        rows.append(f"| **scaling_5m_vs_1m** (lines/s at 5M / at 1M) | {res['scaling_5m_vs_1m']:.2f} | {target('scaling_5m_vs_1m')} |")
    elif {"1m", "5m"} <= set(res.get("throughput", {})):
        prov = res.get("provenance", {})
        rows.append(f"| **scaling_5m_vs_1m** (lines/s at 5M / at 1M) | not computed: 1m measured on {prov.get('1m', {}).get('commit')}, "
                    f"5m on {prov.get('5m', {}).get('commit')} (`--sections=1m,5m` measures both) | {target('scaling_5m_vs_1m')} |")
    if "layout" in res:
        lay = res["layout"]
        rows.append(f"| silver after {lay['daily_runs']} daily runs: files, median file size | {lay['before']['files']}, "
                    f"{lay['before']['median_file_bytes'] / 1e3:,.0f} kB | |")
        rows.append(f"| … after OPTIMIZE | {lay['after']['files']}, {lay['after']['median_file_bytes'] / 1e3:,.0f} kB | |")
    if "catchup" in res:
        c = res["catchup"]
        rows.append(f"| catch-up: {c['landing_days']} landing days x {c['lines_per_day']:,} lines as one catch-up ({c['batches']} batch(es)), s | {f(c['catch_up_seconds'])} | |")
        rows.append(f"| … the same lines landed as one day, s | {f(c['one_day_seconds'])} | |")
        rows.append(f"| … day by day: one day, s (x {c['landing_days']}: {c['day_by_day_estimate_seconds']:,.0f} s) | {f(c['day_by_day_seconds_per_day'])} | |")
        rows.append(f"| **catchup_ratio_365** (catch-up / one day) | {res['catchup_ratio_365']:.2f} | {target('catchup_ratio_365')} |")
        rows.append(f"| **catchup_speedup** (day by day / catch-up) | {res['catchup_speedup']:.0f} | {target('catchup_speedup')} |")
    for kind, p in sorted(res.get("profile", {}).items(), key=lambda kv: kv[0] != "tiny"):
        rows.append(f"| profile, {'a warm tiny day' if kind == 'tiny' else 'a big day'} ({p['lines']:,} lines): run, s; Delta commits; "
                    f"Spark jobs | {p['seconds']:.1f}; {sum(p['commits'].values())}; {p['jobs']} | |")
    return "\n".join(rows)

def profile_tables(res: dict) -> str:
    "The profile section's tables for bench/README.md: stages, commits by table, and the costliest kinds of Spark job."
    out = []
    for kind, p in sorted(res.get("profile", {}).items(), key=lambda kv: kv[0] != "tiny"):
        out.append(f"**{'A warm tiny day' if kind == 'tiny' else 'A big day'}: {p['lines']:,} lines, {p['seconds']:.1f} s, "
                   f"{sum(p['commits'].values())} Delta commits, {p['jobs']} Spark jobs ({p['job_seconds']:.1f} s of job time)**\n")
        out.append("| stage | s |\n|---|---|\n" + "\n".join(f"| {k} | {v:.1f} |" for k, v in sorted(p["stages"].items(), key=by_stage)) + "\n")
        out.append("| table | commits |\n|---|---|\n" + "\n".join(f"| {t} | {n} |" for t, n in sorted(p["commits"].items())) + "\n")
        out.append("| Spark job (description) | jobs | s |\n|---|---|---|\n"
                   + "\n".join(f"| {k.replace('|', '/')} | {n} | {s:.1f} |" for k, n, s in p["job_kinds"][:10]) + "\n")
    return "\n".join(out)

if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_worker":
        out = worker(json.loads(sys.argv[2]))
        print(MARK + json.dumps(out, default=str), flush=True)
    else:
        main()
