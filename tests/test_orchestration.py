"""The daily run as separate Workflows tasks (state through logs.pipeline_runs, a failed stage, a repair), executed by
papermill against a moto S3 server (run records on S3, a failing run), backfill and maintenance. Gold is compared with
an independent plain-Python reading of the landing files (tests/oracle.py)."""
import json, os, subprocess, sys
from datetime import date, timedelta
from pathlib import Path
import pytest
import oracle
from conftest import ROOT

pytestmark = pytest.mark.slow

def _oracle_local(root: Path, days) -> list:
    lines = []
    for d in days:
        for f in sorted((root/f"{d:%Y/%m/%d}").glob("*.csv")):
            lines += oracle.read_file(str(f), d, f.read_bytes())
    return lines

def _oracle_s3(client, bucket, prefix, days) -> list:
    lines = []
    for d in days:
        for o in client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{d:%Y/%m/%d}/").get("Contents", []):
            if o["Key"].endswith(".csv"):
                lines += oracle.read_file(f"s3://{bucket}/{o['Key']}", d, client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
    return lines

def _assert_gold(read, lines):
    "Every sales_metrics row and every customer's lifetime value equal the oracle's."
    recs = oracle.latest(lines)
    exp = oracle.sales_metrics(recs.values())
    got = {(r.order_date, r.product_category): r.asDict() for r in read("analytics", "sales_metrics").collect()}
    assert set(got) == set(exp)
    for k, e in exp.items(): assert {c: got[k][c] for c in e} == e, k
    exp_clv = oracle.customer_lifetime_value(recs.values())
    cols = next(iter(exp_clv.values()))
    assert {r.customer_id: {c: r[c] for c in cols} for r in read("analytics", "customer_lifetime_value").collect()} == exp_clv
    assert read("processed", "orders_cleaned").count() == len(recs)

def test_stages_as_separate_tasks_a_failed_stage_and_a_repair(spark, clean_lakehouse, tmp_path):
    from ecom_pipeline.alerts import AlertConfig
    from ecom_pipeline.config import PipelineConfig
    from ecom_pipeline.pipeline import STAGES, DailyRun, QuarantineRateExceeded, RunFailed, StageOrderError, held_claims, run_daily
    from ecom_pipeline.sample_data import Messiness, generate
    root = tmp_path/"landing"
    days = [date(2018, 4, 1) + timedelta(days=i) for i in range(3)]
    generate(str(root), days[0], len(days), rows_per_day=150, seed=21,
             messiness=Messiness(duplicate_rate=0.03, correction_rate=0.05, malformed_rate=0.03))
    wh = str(spark.conf.get("spark.sql.warehouse.dir")).removeprefix("file:")
    cfg = PipelineConfig(source_root=str(root), warehouse=wh)
    strict = PipelineConfig(source_root=str(root), warehouse=wh, max_quarantine_rate=0.0)
    quiet, no_mail = (lambda m: None), AlertConfig()
    run_daily(spark, cfg, days[0], log=quiet, alerts=no_mail) # day 1 in one process

    def task(c, d, run_id, stage): # one Workflows task: a new DailyRun that knows only its parameters
        return getattr(DailyRun(spark, c, d, run_id, log=quiet, alerts=no_mail, separate=True), stage)()

    # day 2: four tasks; a later stage refuses to run before its predecessor
    with pytest.raises(StageOrderError, match="run job-2 is not in"):
        task(cfg, days[1], "job-2", "build_silver")
    task(cfg, days[1], "job-2", "ingest_bronze")
    with pytest.raises(StageOrderError, match="needs build_silver to have finished"):
        task(cfg, days[1], "job-2", "build_gold")
    for stage in STAGES[1:]: s = task(cfg, days[1], "job-2", stage)
    assert s.status == "succeeded" and s.stages_done == list(STAGES) and s.order_lines > 0

    # day 3: build_silver fails (quarantine threshold 0); Workflows skips build_gold, quality_and_alerts runs (ALL_DONE)
    task(strict, days[2], "job-3", "ingest_bronze")
    with pytest.raises(QuarantineRateExceeded):
        task(strict, days[2], "job-3", "build_silver")
    with pytest.raises(RunFailed, match="QuarantineRateExceeded"):
        task(strict, days[2], "job-3", "quality_and_alerts")
    row = spark.table("spark_catalog.logs.pipeline_runs").where("run_id = 'job-3'").first()
    assert row.status == "failed" and "quarantined" in row.error_message and row.finished_at is not None
    assert days[2] not in {r.run_date for r in held_claims(spark, strict.tables)} # released by the run's failed row
    assert spark.table("spark_catalog.processed.orders_cleaned").where("run_id = 'job-3'").count() == 0 # silver untouched
    # a repair run of the failed task and the ones after it, with the threshold raised
    for stage in STAGES[1:]: s = task(cfg, days[2], "job-3", stage)
    assert s.status == "succeeded"
    row = spark.table("spark_catalog.logs.pipeline_runs").where("run_id = 'job-3'").first()
    assert row.status == "succeeded" and row.error_message is None
    assert spark.table("spark_catalog.logs.pipeline_runs").count() == 3 # one row per run, updated in place

    _assert_gold(lambda sch, t: spark.table(f"spark_catalog.{sch}.{t}"), _oracle_local(root, days))

def test_backfill_catches_up_a_failed_day_fails_alone_and_maintenance_compacts(spark, clean_lakehouse, tmp_path):
    from ecom_pipeline.alerts import AlertConfig
    from ecom_pipeline.config import PipelineConfig
    from ecom_pipeline.maintenance import maintain
    from ecom_pipeline.orchestration import backfill, backfill_report
    from ecom_pipeline.sample_data import generate
    root = tmp_path/"landing"
    days = [date(2018, 5, 1) + timedelta(days=i) for i in range(5)]
    generate(str(root), days[0], 3, rows_per_day=60, seed=5)
    generate(str(root), days[4], 1, rows_per_day=60, seed=6) # day 4 (05-04) has no folder
    wh = str(spark.conf.get("spark.sql.warehouse.dir")).removeprefix("file:")
    cfg = PipelineConfig(source_root=str(root), warehouse=wh, on_no_data="fail")
    first = backfill(spark, cfg, days[0], days[-1], progress=False, alerts=AlertConfig(), max_lines_per_batch=150) # 2-3 days a batch
    assert [x.outcome for x in first] == ["succeeded"] * 3 + ["failed", "succeeded"] # the missing day fails alone
    report = backfill_report(first)
    assert "FAILED: 2018-05-04 (no data arrived)" in report and "4 succeeded, 0 skipped (succeeded before), 1 failed" in report

    generate(str(root), days[3], 1, rows_per_day=60, seed=7) # the late day lands; the same command takes it up
    second = backfill(spark, cfg, days[0], days[-1], progress=False, alerts=AlertConfig())
    assert [x.outcome for x in second] == ["skipped"] * 3 + ["succeeded", "skipped"]
    t = cfg.tables
    _assert_gold(lambda sch, n: spark.table(f"spark_catalog.{sch}.{n}"), _oracle_local(root, days))

    # maintenance: OPTIMIZE makes fewer files of tables written by many small runs, and changes no row
    tables = [t.orders_cleaned, t.sales_metrics, t.daily_customer_sales, t.customer_lifetime_value]
    snap = {n: sorted(map(tuple, spark.table(n).collect())) for n in tables}
    files = {n: spark.sql(f"DESCRIBE DETAIL {n}").first()["numFiles"] for n in tables}
    res = {m.table: m for m in maintain(spark, cfg, 168, log=lambda m: None)}
    for n in tables:
        after = spark.sql(f"DESCRIBE DETAIL {n}").first()["numFiles"]
        assert res[n].files_before == files[n] and res[n].files_after == after
        assert sorted(map(tuple, spark.table(n).collect())) == snap[n]
        assert res[n].files_after <= files[n]
    assert files[t.orders_cleaned] >= 2 and res[t.orders_cleaned].files_after < files[t.orders_cleaned], (files, res)
    m = spark.table("spark_catalog.logs.pipeline_runs").where("run_id LIKE 'maintenance-%'").first()
    assert m.status == "succeeded" and m.run_date is None and any("orders_cleaned" in w for w in m.warnings)
    with pytest.raises(ValueError, match="below the minimum of 168 hours"):
        maintain(spark, cfg, 24)

def _cli(*args, env=None):
    return subprocess.run([str(Path(sys.executable).parent/"ecom-pipeline"), *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "ECOM_SPARK_MASTER": "local[2]", **(env or {})}, cwd=ROOT)

def test_daily_run_notebook_under_papermill_with_s3(tmp_path, s3, spark):
    from ecom_pipeline.orchestration import DailyParameters, run_via_papermill
    from ecom_pipeline.pipeline import STAGES
    from ecom_pipeline.sample_data import generate
    client, bucket = s3
    root = f"s3://{bucket}/raw/ecommerce_sales"
    days = [date(2018, 7, 1), date(2018, 7, 2)]
    generate(root, days[0], 2, rows_per_day=120, seed=13, client=client)
    wh, records = tmp_path/"wh", f"s3://{bucket}/run-records"

    # 1. the whole run in one kernel: `ecom-pipeline run --via-papermill`, the record written to S3 by papermill
    r = _cli("run", "--date", str(days[0]), "--via-papermill", "--source", root, "--warehouse", str(wh), "--records", records)
    assert r.returncode == 0, r.stderr[-3000:]
    # nothing after the run's last line reads as a failure (Spark's shutdown hook used to print an IOException's stack trace)
    assert "Exception" not in r.stderr and "\tat " not in r.stderr and "blockmgr" not in r.stderr, r.stderr[-3000:]
    key = next(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="run-records/2018/07/01/")["Contents"])
    assert key.startswith("run-records/2018/07/01/daily_run-20180701-") and key.endswith(".ipynb") and key in r.stdout
    nb = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    p = nb["metadata"]["papermill"]
    assert p["parameters"]["run_date"] == "2018-07-01" and p["parameters"]["source_root"] == root
    assert p["parameters"]["stage"] == "all" and p["parameters"]["warehouse"] == str(wh) and not p.get("exception")
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "landing day 2018-07-01" in text and "SUCCEEDED" in text

    # 2. day 2 as the Workflows job runs it: one kernel per stage, the same run_id, the state in logs.pipeline_runs
    for stage in STAGES:
        res = run_via_papermill(DailyParameters(days[1], root, "", "dev", str(wh), stage, "job-77"), records=str(tmp_path/"records"),
                                log=lambda m: None)
        assert res.ok, res.error
    stage_records = sorted((tmp_path/"records/2018/07/02").glob("*.ipynb"))
    assert [x.name for x in stage_records] == ["daily_run-job-77.ipynb"] # each stage overwrites the run's record

    # 3. a failing run: a day without data and --on-no-data fail; the record is still written, with the error cell
    r = _cli("run", "--date", "2018-07-09", "--via-papermill", "--on-no-data", "fail", "--source", root, "--warehouse", str(wh),
             "--records", records)
    assert r.returncode == 1 and "FAILED: NoDataError" in r.stderr and "run record: s3://" in r.stderr, r.stderr[-2000:]
    key = next(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="run-records/2018/07/09/")["Contents"])
    nb = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert nb["metadata"]["papermill"]["exception"] is True
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "NoDataError"

    # gold of the two days, read by path from the warehouse the kernels wrote, equals the oracle
    read = lambda sch, t: spark.read.format("delta").load(str(wh/f"{sch}.db"/t))
    _assert_gold(read, _oracle_s3(client, bucket, "raw/ecommerce_sales", days))
    runs = {r.run_id: r for r in read("logs", "pipeline_runs").collect()}
    assert runs["job-77"].status == "succeeded" and json.loads(runs["job-77"].run_state)["environment"] == "dev"
    assert sorted(r.status for r in runs.values()) == ["failed", "succeeded", "succeeded"]
