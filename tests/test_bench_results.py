"""The benchmark's bookkeeping (no Spark): a run of some sections keeps the other sections' figures of
bench/results/latest.json, each marked with the commit it measured, and the README line says which is which; a worker's
progress is shown while it runs, and a failed worker's cause is found in its stderr."""
import json, sys, textwrap, time
from pathlib import Path
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]/"bench"))
import bench  # noqa: E402

def previous_run() -> dict:
    "A latest.json of a full run on commit abc1234 (figures shaped like the real ones, values made up)."
    st = lambda v: {"median": v, "min": v, "max": v, "n": 1, "values": [v]}
    size = lambda secs: {"lines": [100], "run_seconds": st(secs), "lines_per_second": st(100 / secs),
                         "stage_seconds": {"total": st(secs)}, "driver_peak_rss": {"total_bytes": 2**30},
                         "duckdb_seconds": st(1.0), "duckdb_ratio": secs}
    return {"reps": 3, "overhead": {"bare_seconds": st(10.0), "pipeline_seconds": st(50.0)}, "overhead_ratio": 5.0,
            "throughput": {"100k": size(40.0), "1m": {**size(150.0), "floor_seconds": st(5.0), "floor_ratio": 30.0},
                           "5m": size(700.0)},
            "history": {k: {"history_days": int(k), "rows_per_day": 50, "run_seconds": st(secs),
                            "merge": [{"numTargetFilesRemoved": 0, "numTargetFilesAdded": 1, "numTargetRowsCopied": 0}]}
                        for k, secs in (("30", 20.0), ("365", 25.0))},
            "layout": {"daily_runs": 30, "before": {"files": 30, "median_file_bytes": 1000},
                       "after": {"files": 1, "median_file_bytes": 30000}},
            "provenance": {s: {"commit": "abc1234", "date": "2026-11-28", "reps": 3, "seconds": 600.0} for s in bench.SECTIONS}}

@pytest.fixture()
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "code_version", lambda: "def5678")
    (tmp_path/"latest.json").write_text(json.dumps(previous_run()))
    return tmp_path

def fresh(reps=3) -> dict:
    return {"reps": reps, "throughput": {}, "history": {}, "provenance": {}}

def test_a_partial_run_keeps_the_other_sections(results):
    res = fresh()
    bench.carry_forward(res, ["1m", "history"], quick=False, reps=3)
    # the sections not run are carried with their old commit; the ones run are not carried (they are measured again)
    assert set(res["throughput"]) == {"100k", "5m"} and res["history"] == {}
    assert res["overhead_ratio"] == 5.0 and res["layout"]["daily_runs"] == 30
    assert res["provenance"]["100k"]["commit"] == "abc1234" and res["provenance"]["1m"]["commit"] == "def5678"
    # until the sections run are measured, the README line names only what the table holds
    assert "1m" not in bench.provenance_line(res) and "history" not in bench.provenance_line(res)
    res["throughput"]["1m"] = previous_run()["throughput"]["1m"]
    line = bench.provenance_line(res)
    assert "1m on def5678" in line and "overhead, 100k, layout, 5m on abc1234" in line, line

def test_the_5m_over_1m_ratio_needs_both_sizes_measured_on_one_commit(results):
    res = fresh()
    bench.carry_forward(res, ["100k", "1m"], quick=False, reps=3) # 5m carried from abc1234, 1m measured on def5678
    res["throughput"]["1m"] = previous_run()["throughput"]["1m"]
    bench.ratios(res)
    assert "scaling_5m_vs_1m" not in res and res["floor_ratio_1m"] == 30.0
    assert "| **scaling_5m_vs_1m** (lines/s at 5M / at 1M) | not computed: 1m measured on def5678, 5m on abc1234" in bench.summary_table(res)
    res = fresh()
    bench.carry_forward(res, ["overhead"], quick=False, reps=3) # both carried from abc1234: 100/700 over 100/150 lines/s
    bench.ratios(res)
    assert res["scaling_5m_vs_1m"] == pytest.approx(150 / 700)

def test_a_full_or_quick_run_carries_nothing(results):
    for sections, quick in ((list(bench.SECTIONS), False), (["1m"], True)):
        res = fresh()
        bench.carry_forward(res, sections, quick=quick, reps=3)
        assert res["throughput"] == {} and "overhead" not in res and "layout" not in res
        assert bench.provenance_line(res) == "" # one commit: nothing to say

def test_the_table_lists_sizes_in_order_whatever_was_carried(results):
    res = fresh()
    bench.carry_forward(res, ["100k"], quick=False, reps=3) # 1m and 5m carried first, 100k measured last
    res["throughput"]["100k"] = previous_run()["throughput"]["100k"]
    rows = [r for r in bench.summary_table(res).splitlines() if ": run, s" in r]
    assert [r.split(":")[0] for r in rows] == ["| 100k", "| 1m", "| 5m"]

def test_the_minutes_in_all_are_those_of_the_figures_held_not_of_the_last_run(results):
    res = fresh()
    bench.carry_forward(res, ["1m"], quick=False, reps=3)
    res["throughput"]["1m"], res["total_seconds"] = previous_run()["throughput"]["1m"], 905.0
    res["provenance"]["1m"]["seconds"] = 900.0
    assert bench.measuring_seconds(res) == 5 * 600.0 + 900.0 # five sections carried, one measured now
    del res["provenance"]["layout"]["seconds"] # a section carried from a results file that did not time it
    assert bench.measuring_seconds(res) == 905.0 # then only this run's time can be said

def fake_worker(tmp_path, monkeypatch, body: str):
    "spawn() runs `python bench.py _worker SPEC`: point it at a script of a few lines instead (no Spark)."
    script = tmp_path/"fake_worker.py"
    script.write_text(f"import sys, time\nPROGRESS, MARK = {bench.PROGRESS!r}, {bench.MARK!r}\n" + textwrap.dedent(body))
    monkeypatch.setattr(bench, "__file__", str(script))
    monkeypatch.setattr(bench, "RESULTS", tmp_path/"results")

def test_a_workers_progress_is_shown_while_it_runs(tmp_path, monkeypatch):
    fake_worker(tmp_path, monkeypatch, """
        print("WARN a Spark log line", file=sys.stderr, flush=True)
        print(PROGRESS + "day 1/2: 10 lines", file=sys.stderr, flush=True)
        time.sleep(1.5)
        print(PROGRESS + "day 2/2: 20 lines", file=sys.stderr, flush=True)
        print("not the result")
        print(MARK + '{"runs": 2}')
    """)
    shown = []
    monkeypatch.setattr(bench, "say", lambda m: shown.append((time.monotonic(), m)))
    assert bench.spawn({"kind": "throughput"}) == {"runs": 2}
    done = time.monotonic()
    assert [m.strip() for _, m in shown] == ["day 1/2: 10 lines", "day 2/2: 20 lines"] # the Spark log is not shown
    assert done - shown[0][0] >= 1.0 # the first line came a second and a half before the worker ended, not with it

def test_a_failed_worker_keeps_its_stderr_and_names_the_cause(tmp_path, monkeypatch):
    fake_worker(tmp_path, monkeypatch, """
        print(PROGRESS + "day 1/3: 10 lines", file=sys.stderr, flush=True)
        print("Caused by: java.lang.OutOfMemoryError: GC overhead limit exceeded", file=sys.stderr)
        print("\\tat org.apache.parquet.Writer.write(Writer.java:1)\\n" * 200, file=sys.stderr)
        sys.exit(1)
    """)
    with pytest.raises(RuntimeError) as e:
        bench.spawn({"kind": "throughput"})
    assert "(exit 1)" in str(e.value) and "OutOfMemoryError: GC overhead limit exceeded" in str(e.value)
    log = (tmp_path/"results"/"worker-throughput-failed.log").read_text()
    assert log.count("Writer.java:1") == 200 and "day 1/3" in log

def test_a_worker_past_its_timeout_is_killed(tmp_path, monkeypatch):
    fake_worker(tmp_path, monkeypatch, "time.sleep(60)\n")
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="killed after 1 s"):
        bench.spawn({"kind": "history"}, timeout=1)
    assert time.monotonic() - t0 < 30

def test_the_table_shows_issue_22s_targets_and_the_new_figures(results):
    prev = previous_run()
    prev["warm_overhead_ratio"] = 3.0
    prev["overhead"]["warm_day_seconds"] = {"median": 30.0, "min": 29.0, "max": 31.0, "n": 3, "values": [29.0, 30.0, 31.0]}
    prev["profile"] = {k: {"lines": n, "seconds": s, "commits": {"processed.orders_cleaned": 1, "logs.run_claims": 2}, "jobs": j,
                           "job_seconds": s / 2, "stages": {"total": s, "silver": s / 2}, "job_kinds": [["MERGE operation", 3, 1.5]]}
                       for k, n, s, j in (("tiny", 10, 30.0, 250), ("big", 1000, 150.0, 240))}
    (results/"latest.json").write_text(json.dumps(prev))
    res = fresh()
    bench.carry_forward(res, ["history"], quick=False, reps=3) # overhead and profile carried, with the new figures
    assert res["warm_overhead_ratio"] == 3.0 and res["profile"]["big"]["jobs"] == 240
    t = res["throughput"]
    # lines/s at 5M over lines/s at 1M, computed as save() does: 100/700 over 100/150
    scaling = t["5m"]["lines_per_second"]["median"] / t["1m"]["lines_per_second"]["median"]
    assert abs(scaling - 150 / 700) < 1e-12
    res["scaling_5m_vs_1m"] = scaling
    table = bench.summary_table(res)
    row = lambda key: next(r for r in table.splitlines() if f"**{key}" in r)
    assert row("overhead_ratio").endswith("| ≤ 2.5 |") and row("warm_overhead_ratio").endswith("| ≤ 1.5 |")
    assert row("floor_ratio_1m").endswith("| ≤ 8 |") and row("1m: DuckDB ratio").endswith("| ≤ 8 |")
    assert row("scaling_5m_vs_1m").endswith("| ≥ 0.8 |") and "| 0.21 |" in row("scaling_5m_vs_1m")
    assert "a warm tiny day (10 lines): run, s; Delta commits; Spark jobs | 30.0; 3; 250" in table
    tables = bench.profile_tables(res)
    assert tables.index("A warm tiny day") < tables.index("A big day") and "| logs.run_claims | 2 |" in tables
    assert tables.index("| silver | 15.0 |") < tables.index("| total | 30.0 |") # stages in the run's order, not the file's
