"""Two runs of one date at once: one wins, the other fails naming it. Runs of different dates at once: both succeed, gold exact."""
import threading, time
from datetime import date, timedelta
import oracle
import pytest
from ecom_pipeline.config import PipelineConfig
from ecom_pipeline.pipeline import RunInProgressError, held_claims, run_daily
from ecom_pipeline.sample_data import generate

pytestmark = pytest.mark.slow # threads running whole days at once: make slow-test

def _run_together(spark, cfg, dates):
    "Start one run per date in its own thread at the same moment; return each one's summary or exception."
    barrier, out = threading.Barrier(len(dates)), [None] * len(dates)
    def go(i, d):
        barrier.wait()
        try: out[i] = run_daily(spark, cfg, d, log=lambda m: None)
        except Exception as e: out[i] = e
    threads = [threading.Thread(target=go, args=(i, d)) for i, d in enumerate(dates)]
    for th in threads: th.start()
    for th in threads: th.join(600)
    return out

def test_same_date_at_once_one_wins_and_different_dates_do_not_conflict(spark, clean_lakehouse, tmp_path, monkeypatch):
    import ecom_pipeline.pipeline as p
    days = [date(2018, 4, 2) + timedelta(days=i) for i in range(4)]
    gen = generate(str(tmp_path), days[0], len(days), rows_per_day=150, seed=21)
    cfg = PipelineConfig(source_root=str(tmp_path), warehouse=spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    t = cfg.tables
    run_daily(spark, cfg, days[0], log=lambda m: None)
    slow = p.ingest_days
    def slow_ingest(*a, **k): # hold the claim long enough that the two runs surely overlap
        time.sleep(3); return slow(*a, **k)
    monkeypatch.setattr(p, "ingest_days", slow_ingest)

    a, b = _run_together(spark, cfg, [days[1], days[1]])
    won = [r for r in (a, b) if not isinstance(r, Exception)]
    lost = [r for r in (a, b) if isinstance(r, Exception)]
    assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], RunInProgressError), (a, b)
    assert won[0].status == "succeeded" and f"another run of {days[1]} is in progress: run {won[0].run_id}" in str(lost[0])
    bronze_day = spark.table(t.order_transactions).where(f"landing_date = DATE'{days[1]}'")
    assert bronze_day.count() == won[0].lines_read == bronze_day.select("source_file", "line_number").distinct().count()
    runs = {r.status for r in spark.table(t.name("logs", "pipeline_runs")).where(f"run_date = DATE'{days[1]}'").collect()}
    assert runs == {"succeeded", "failed"}

    c, d = _run_together(spark, cfg, days[2:])             # different dates: same silver month, same gold tables
    assert [getattr(r, "status", r) for r in (c, d)] == ["succeeded", "succeeded"]

    # nothing doubled or lost: gold equals plain-Python totals over every file
    lines = []
    for day in days:
        for f in sorted((tmp_path/f"{day:%Y/%m/%d}").glob("*.csv")):
            lines += oracle.read_file(str(f), day, f.read_bytes())
    assert spark.table(t.order_transactions).count() == gen.lines
    recs = oracle.latest(lines)
    exp = oracle.sales_metrics(recs.values())
    got = {(r.order_date, r.product_category): r.asDict() for r in spark.table(t.sales_metrics).collect()}
    assert set(got) == set(exp)
    for k, e in exp.items():
        assert {c: got[k][c] for c in e} == e, k
    assert spark.table(t.orders_cleaned).count() == len(recs)
    claims = spark.table(t.name("logs", "run_claims")).collect()
    assert len(claims) == 4 and not held_claims(spark, t)  # every claim released: each run's ended row frees its date
