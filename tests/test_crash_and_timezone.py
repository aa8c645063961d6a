"""Crash safety (SIGKILL at four points, then a rerun converges) and time-zone independence (runs in New York time = UTC gold).

Both compare a warehouse written by child processes with a reference run in this process, reading the child's tables
by path: silver without run ids and ingestion times, gold, quarantine and the ledger must be equal, value for value.
The daily runs killed at four points and their rerun run with the OS in America/New_York and that zone in
JAVA_TOOL_OPTIONS (the session pins its own JVM to UTC), the reference in UTC: the one comparison checks both (each
child process costs about a minute, so the time zone has no run of its own).
The catch-up killed and rerun runs in UTC.
"""
import os, subprocess, sys
from datetime import date
from pathlib import Path
import pytest

pytestmark = pytest.mark.slow
from conftest import run_quiet
from ecom_pipeline.config import PipelineConfig
from ecom_pipeline.sample_data import Messiness, generate

DAYS = [date(2018, 5, 7), date(2018, 5, 8)]
DRIVER = Path(__file__).with_name("crash_driver.py")
RUN_SPECIFIC = {"run_id", "bronze_ingested_at"}

@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("landing")
    generate(str(root), DAYS[0], len(DAYS), rows_per_day=200, seed=31,
             messiness=Messiness(duplicate_rate=0.03, correction_rate=0.05, malformed_rate=0.03, late_rate=0.05))
    return root

def snapshot(spark, table):
    "Content of each table that must not depend on how the runs went; `table(schema, name)` returns a DataFrame."
    silver = table("processed", "orders_cleaned")
    keep = [c for c in silver.columns if c not in RUN_SPECIFIC]
    return {
        "silver": sorted(map(tuple, silver.select(*keep).collect())),
        "sales_metrics": sorted(map(tuple, table("analytics", "sales_metrics").collect())),
        "clv": sorted(map(tuple, table("analytics", "customer_lifetime_value").collect())),
        "daily_customer_sales": sorted(map(tuple, table("analytics", "daily_customer_sales").collect())),
        "etl_errors": sorted(map(tuple, table("logs", "etl_errors").select("source_file", "line_number", "rule", "reason").collect())),
        "ledger": sorted(map(tuple, table("logs", "ingested_files").select("file_key", "etag", "line_count", "status").collect())),
        "bronze": table("raw", "order_transactions").count()}

@pytest.fixture(scope="module")
def reference(spark, landing):
    "The uninterrupted run, in this process, in UTC."
    from ecom_pipeline.config import SCHEMAS
    for s in SCHEMAS: spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.{s} CASCADE")
    cfg = PipelineConfig(source_root=str(landing), warehouse=spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    for d in DAYS: run_quiet(spark, cfg, d)
    snap = snapshot(spark, lambda s, t: spark.table(f"spark_catalog.{s}.{t}"))
    for s in SCHEMAS: spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.{s} CASCADE")
    assert snap["silver"] and snap["etl_errors"] and snap["sales_metrics"]
    return snap

def by_path(spark, wh):
    return lambda s, t: spark.read.format("delta").load(str(wh/f"{s}.db"/t))

def drive(wh, root, dates, point, env=None, catch_up=False):
    return subprocess.run([sys.executable, str(DRIVER), str(wh), str(root), ",".join(map(str, dates)), point] + (["catch-up"] if catch_up else []),
                          capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})

def check_invariants(spark, wh, after):
    "Every table readable; bronze holds no line twice; the ledger claims no file whose lines are not all in bronze."
    t = by_path(spark, wh)
    if not (wh/"raw.db"/"order_transactions"/"_delta_log").is_dir(): return
    bronze = t("raw", "order_transactions")
    assert bronze.count() == bronze.select("source_file", "source_etag", "line_number").distinct().count(), after
    counts = {(r.source_file, r.source_etag): r["count"] for r in bronze.groupBy("source_file", "source_etag").count().collect()}
    if (wh/"logs.db"/"ingested_files"/"_delta_log").is_dir():
        for r in t("logs", "ingested_files").where("status = 'ingested'").collect():
            assert counts.get((r.file_key, r.etag), 0) == r.line_count, (after, r.file_key)
    for schema, table in (("processed", "orders_cleaned"), ("analytics", "sales_metrics"), ("analytics", "customer_lifetime_value"),
                          ("analytics", "daily_customer_sales"), ("logs", "etl_errors"), ("logs", "pipeline_runs")):
        if (wh/f"{schema}.db"/table/"_delta_log").is_dir(): t(schema, table).count()

NEW_YORK = {"TZ": "America/New_York", "JAVA_TOOL_OPTIONS": "-Duser.timezone=America/New_York"}

def test_sigkill_at_four_points_then_rerun_converges_in_new_york_time(spark, landing, reference, tmp_path):
    "Daily runs killed at four points, then run again, all in New York time: the reference's UTC state."
    wh = tmp_path/"wh"
    for point in ("during_bronze_write", "before_silver", "during_merge", "during_gold"):
        r = drive(wh, landing, DAYS[:1], point, env=NEW_YORK)
        assert r.returncode == -9, (point, r.returncode, r.stderr[-2000:])
        check_invariants(spark, wh, point)
    r = drive(wh, landing, DAYS, "none", env=NEW_YORK)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "took over" not in r.stdout                                       # (progress lines are not printed)
    assert "os time zone EST/EDT" in r.stdout                                # the child ran in New York time (crash_driver)
    check_invariants(spark, wh, "final")
    got = snapshot(spark, by_path(spark, wh))
    for k in reference: assert got[k] == reference[k], f"{k}: a rerun after the kills, in New York time, differs from the UTC run"
    runs = by_path(spark, wh)("logs", "pipeline_runs").collect()
    assert sum(r.status == "succeeded" for r in runs) == 2 and len(runs) == 6
    # each killed run is recorded by the run that took its date over (none of them wrote a row of its own)
    assert all(r.status == "failed" and "ended without finishing (its process on this host is gone)" in r.error_message
               for r in runs if r.status != "succeeded")

def test_sigkill_during_a_catch_up_then_rerun_converges(spark, landing, reference, tmp_path):
    "A catch-up of every day killed in its silver MERGE, then run again: the state of the days run one by one."
    wh = tmp_path/"wh_catch_up"
    r = drive(wh, landing, DAYS, "during_merge", catch_up=True)
    assert r.returncode == -9, (r.returncode, r.stderr[-2000:])
    check_invariants(spark, wh, "catch-up killed")
    r = drive(wh, landing, DAYS, "none", catch_up=True)
    assert r.returncode == 0, r.stderr[-3000:]
    check_invariants(spark, wh, "catch-up final")
    got = snapshot(spark, by_path(spark, wh))
    for k in reference: assert got[k] == reference[k], k
    runs = by_path(spark, wh)("logs", "pipeline_runs").collect()              # per day: the killed run, as the rerun found it
    assert sorted((r.run_date, r.status) for r in runs) == sorted((d, s) for d in DAYS for s in ("failed", "succeeded"))
