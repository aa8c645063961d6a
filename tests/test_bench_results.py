"""The benchmark's bookkeeping (no Spark): a run of some sections keeps the other sections' figures of
bench/results/latest.json, each marked with the commit it measured, and the README line says which is which."""
import json, sys
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
            "provenance": {s: {"commit": "abc1234", "date": "2026-11-28", "reps": 3} for s in bench.SECTIONS}}

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
