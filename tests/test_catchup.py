"""One set of landing days three ways: one by one, as one catch-up (in several batches), and as a rebuild from bronze.
Silver, the dimensions and every gold table must be equal on their business columns, and each day keeps its own
quarantine, threshold and run row. The catch-up's gold is also checked against plain-Python totals. The daily runs (about
120 lines a day) evaluate interpreted and the rebuild compiled (`ecom_pipeline.spark.execution_for`), and the rebuild goes
the way of big runs, through the scratch table of checked lines (`silver_stage.SCRATCH_MIN_LINES` lowered for it): their
equality covers both."""
import csv
from datetime import date, timedelta
from pathlib import Path
import oracle
import pytest
from ecom_pipeline.alerts import AlertConfig
from ecom_pipeline.config import SCHEMAS, PipelineConfig, Tables
from ecom_pipeline.sample_data import Messiness, generate
from ecom_pipeline.sources import KAGGLE_ECOMMERCE

DAYS = [date(2018, 4, 1) + timedelta(days=i) for i in range(4)]
# columns that name a run or a load time, not the data: they differ between the three ways by design
NOT_BUSINESS = {"run_id", "updated_at", "bronze_ingested_at", "clv_scored_at", "logged_at"}

def _land(root: Path):
    gen = generate(str(root), DAYS[0], len(DAYS), rows_per_day=120, seed=21,
                   messiness=Messiness(duplicate_rate=0.04, correction_rate=0.05, malformed_rate=0.02, late_rate=0.08))
    # day 3 is over the 5% threshold: a second file whose quantities are all words
    day4 = root/f"{DAYS[2]:%Y/%m/%d}"
    src = next(day4.glob("*.csv")).read_text().splitlines()
    q = list(KAGGLE_ECOMMERCE.columns).index("Quantity")
    bad = [src[0]] + [",".join(f if i != q else "many" for i, f in enumerate(l.split(","))) for l in src[1:40] if l.count(",") == len(KAGGLE_ECOMMERCE.columns) - 1]
    (day4/"zz_bad_quantities.csv").write_text("\n".join(bad) + "\n")
    # customer 99001 orders as a Guest on the first day and as a Member on the last (and a line of the first day with no
    # login type, landed late on the last day, that must not open a version in the past)
    cols = list(KAGGLE_ECOMMERCE.columns)
    first = next(r for r in csv.reader(next((root/f"{DAYS[0]:%Y/%m/%d}").glob("*.csv")).read_text().splitlines()[1:])
                 if len(r) == len(cols) and r[cols.index("Quantity")].isdigit())
    def member_line(d, login, time):
        r = list(first)
        r[cols.index("Order_Date")], r[cols.index("Time")] = f"{d.month}/{d.day}/{d.year}", time
        r[cols.index("Customer_Id")], r[cols.index("Customer_Login_type")] = "99001", login
        return r
    for d, rows in ((DAYS[0], [member_line(DAYS[0], "Guest", "10:00:00")]),
                    (DAYS[3], [member_line(DAYS[3], "Member", "09:00:00"), member_line(DAYS[0], "", "11:00:00")])):
        with open(root/f"{d:%Y/%m/%d}"/"zz_member.csv", "w", newline="") as fh:
            w = csv.writer(fh); w.writerow(cols); w.writerows(rows)
    return gen, len(bad) - 1

def _snapshot(spark, t: Tables) -> dict:
    out = {}
    for name in t.derived_tables:
        cols = sorted(c for c in spark.table(name).columns if c not in NOT_BUSINESS)
        out[name.rsplit(".", 1)[1]] = sorted(tuple(r) for r in spark.table(name).select(*cols).collect())
    return out

def _quarantine(spark, t: Tables) -> dict:
    return {(r.landing_date, r.rule): r["count"] for r in spark.table(t.etl_errors).groupBy("landing_date", "rule").count().collect()}

def _reset(spark):
    for sch in SCHEMAS: spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.{sch} CASCADE")

@pytest.fixture(scope="module")
def three_ways(spark, tmp_path_factory):
    from ecom_pipeline.pipeline import catch_up, rebuild, run_daily
    root = tmp_path_factory.mktemp("catchup")/"landing"
    gen, bad = _land(root)
    wh = str(spark.conf.get("spark.sql.warehouse.dir")).removeprefix("file:")
    cfg = PipelineConfig(source_root=str(root), warehouse=wh)
    t, quiet, none = cfg.tables, (lambda m: None), AlertConfig()
    _reset(spark)
    one_by_one = []
    for d in DAYS:
        try: one_by_one.append(run_daily(spark, cfg, d, log=quiet, alerts=none))
        except Exception as e: one_by_one.append(e)
    a = _snapshot(spark, t), _quarantine(spark, t), {r.run_date: r.status for r in spark.table("spark_catalog.logs.pipeline_runs").collect()}
    _reset(spark)
    batches = catch_up(spark, cfg, DAYS, log=quiet, alerts=none, max_lines_per_batch=300) # about 120 lines a day: 2 batches
    b = _snapshot(spark, t), _quarantine(spark, t), {r.run_date: r.status for r in spark.table("spark_catalog.logs.pipeline_runs").collect()}
    runs = spark.table("spark_catalog.logs.pipeline_runs").collect()
    dq = spark.table("spark_catalog.logs.data_quality_results").collect()
    import ecom_pipeline.silver_stage as silver_stage
    was, silver_stage.SCRATCH_MIN_LINES = silver_stage.SCRATCH_MIN_LINES, 0 # the rebuild writes and reads the scratch table
    try: rb = rebuild(spark, cfg, log=quiet, max_lines_per_batch=300) # two batches: one with the failed day, one without
    finally: silver_stage.SCRATCH_MIN_LINES = was
    c = _snapshot(spark, t)
    return dict(gen=gen, bad=bad, one_by_one=one_by_one, a=a, b=b, c=c, catch_up=batches, runs=runs, dq=dq, rebuild=rb, cfg=cfg, root=root)

def test_catch_up_equals_one_by_one(three_ways):
    (a_tables, a_q, a_status), (b_tables, b_q, b_status) = three_ways["a"], three_ways["b"]
    assert set(a_tables) == {"orders_cleaned", "products", "customers", "sales_metrics", "sales_metrics_by_currency",
                             "customer_lifetime_value", "daily_customer_sales", "promotion_performance"}
    for name in a_tables:
        assert a_tables[name] == b_tables[name], name
    assert len(a_tables["orders_cleaned"]) > 300 and len(a_tables["customers"]) > 50
    cols = sorted(c for c in ("customer_key", "source_system", "customer_id", "login_type", "device_type", "valid_from", "valid_to", "is_current"))
    member = sorted((r[cols.index("login_type")], r[cols.index("valid_to")] is None) for r in a_tables["customers"]
                    if r[cols.index("customer_id")] == "99001")
    assert member == [("guest", False), ("member", True)] # a Guest who became a Member: two versions
    assert a_q == b_q and a_status == b_status
    # the day over the threshold failed alone, in both ways; the others succeeded
    assert a_status == {d: ("failed" if d == DAYS[2] else "succeeded") for d in DAYS}
    assert b_q[(DAYS[2], "quantity_invalid")] >= three_ways["bad"]

def test_catch_up_days_keep_their_own_records(three_ways):
    summaries, runs, dq = three_ways["catch_up"], three_ways["runs"], three_ways["dq"]
    assert [s.run_date for s in summaries] == DAYS and len({s.run_id for s in summaries}) == len(DAYS)
    assert len({s.batch for s in summaries}) == 2 # the batch bound held
    assert sorted(r.run_date for r in runs) == DAYS
    failed = next(s for s in summaries if s.run_date == DAYS[2])
    assert failed.status == "failed" and "quarantined" in failed.error_message and failed.order_lines == 0
    for s in summaries: # each day's quality rows add up to its own quarantine
        rows = [r for r in dq if r.run_id == s.run_id]
        assert rows and all(r.rows_checked == s.bronze_rows for r in rows)
        assert sum(r.rows_failed for r in rows if r.criticality == "error") == s.quarantined
    one = {s.run_date: s for s in three_ways["one_by_one"] if not isinstance(s, Exception)}
    for s in summaries:
        if s.run_date in one:
            o = one[s.run_date]
            assert (s.lines_read, s.bronze_rows, s.quarantined, s.duplicates, s.order_lines, s.quarantined_by_rule) == \
                   (o.lines_read, o.bronze_rows, o.quarantined, o.duplicates, o.order_lines, o.quarantined_by_rule), s.run_date

def test_rebuild_from_bronze_equals_one_by_one(three_ways):
    a_tables, c_tables = three_ways["a"][0], three_ways["c"]
    for name in a_tables:
        assert a_tables[name] == c_tables[name], name
    rb = three_ways["rebuild"]
    assert rb.landing_days == len(DAYS) and list(rb.failed_days) == [DAYS[2]]

def test_catch_up_gold_matches_plain_python(three_ways, spark):
    lines = []
    for d in DAYS:
        if d == DAYS[2]: continue # the failed day's lines stay out
        for f in sorted((three_ways["root"]/f"{d:%Y/%m/%d}").glob("*.csv")):
            lines += oracle.read_file(str(f), d, f.read_bytes())
    recs = oracle.latest(lines)
    exp = oracle.sales_metrics(recs.values())
    (_, _, _) = three_ways["b"]
    got = {(r.order_date, r.product_category): r.net_revenue for r in spark.table(three_ways["cfg"].tables.sales_metrics).collect()}
    assert got == {k: v["net_revenue"] for k, v in exp.items()}

def test_a_rebuild_leaves_the_live_tables_alone_while_a_run_goes_on(three_ways, spark):
    """No lock keeps processes apart: a run that holds a landing day (here, another process's claim) or files that landed
    in bronze after the rebuild read it stop the rebuild before it replaces anything live."""
    from datetime import datetime
    from ecom_pipeline.pipeline import RebuildInterrupted, _check_quiet, _version, claim_run_date, rebuild, release_claim
    cfg, t = three_ways["cfg"], three_ways["cfg"].tables
    before = _snapshot(spark, t)
    v = _version(spark, t.order_transactions)
    with pytest.raises(RebuildInterrupted, match="files landed in bronze since it started"):
        _check_quiet(spark, t, v - 1)
    other = date(2018, 5, 1)
    claim_run_date(spark, cfg, other, "run-elsewhere", datetime.utcnow(), log=lambda m: None, pid=0)
    try:
        with pytest.raises(RebuildInterrupted, match=f"run run-elsewhere holds landing day {other}. Nothing live was changed"):
            rebuild(spark, cfg, log=lambda m: None) # refused at the start
        with pytest.raises(RebuildInterrupted, match=f"run run-elsewhere holds landing day {other}"):
            _check_quiet(spark, t, v) # and before the swap, had the run begun meanwhile
    finally: release_claim(spark, cfg, other, "run-elsewhere", log=lambda m: None)
    assert _snapshot(spark, t) == before and _version(spark, t.order_transactions) == v
    _check_quiet(spark, t, v) # nothing held, bronze as read: the swap may go on

def test_migrate_brings_an_older_lakehouse_up_to_date(spark, clean_lakehouse):
    """A lakehouse of an earlier release: a run table without `run_state` and `quality_results`, the quality results in a
    table of their own, gold without `is_all_categories` (its total row named ALL), bronze with Delta's default file
    statistics. A run refuses it until it is migrated."""
    from decimal import Decimal
    from pathlib import Path
    from ecom_pipeline.bronze import bronze_columns
    from ecom_pipeline.gold import SALES_METRICS_COLUMNS
    from ecom_pipeline.pipeline import DQ_RESULTS_COLUMNS, PIPELINE_RUNS_COLUMNS, MigrationNeeded, ensure_tables, migrate
    from ecom_pipeline.spark import create_table, ddl, register_tables
    t = Tables("spark_catalog")
    for s in SCHEMAS: spark.sql(f"CREATE SCHEMA IF NOT EXISTS spark_catalog.{s}")
    old_runs = [c for c in PIPELINE_RUNS_COLUMNS if c[0] not in ("run_state", "quality_results")]
    create_table(spark, t.name("logs", "pipeline_runs"), old_runs)
    run = {c: None for c, _ in old_runs} | {"run_id": "run-1", "run_date": date(2018, 1, 1), "status": "succeeded"}
    spark.createDataFrame([tuple(run.values())], ddl(old_runs)).write.format("delta").mode("append").saveAsTable(t.name("logs", "pipeline_runs"))
    dq = t.name("logs", "data_quality_results")
    create_table(spark, dq, DQ_RESULTS_COLUMNS)
    quality = [("run-1", date(2018, 1, 1), "quantity_invalid", "error", 120, 3), ("run-1", date(2018, 1, 1), "price_outlier", "warn", 120, 1),
               ("run-gone", date(2018, 1, 2), "quantity_invalid", "error", 80, 0)] # its run wrote no row
    spark.createDataFrame(quality, ddl(DQ_RESULTS_COLUMNS)).write.format("delta").mode("append").saveAsTable(dq)
    old = [c for c in SALES_METRICS_COLUMNS if c[0] != "is_all_categories"]
    create_table(spark, t.sales_metrics, old)
    create_table(spark, t.order_transactions, bronze_columns(), partitioned_by=("landing_year", "landing_month"))
    row = lambda cat, net: (date(2018, 1, 1), cat, "USD") + (None,) * 5 + (Decimal(net),) + (None,) * 6
    spark.createDataFrame([row("ALL", "30.00"), row("Fashion", "30.00")], ddl(old)).write.format("delta").mode("append").saveAsTable(t.sales_metrics)
    with pytest.raises(MigrationNeeded, match="ecom-pipeline migrate"):
        ensure_tables(spark, t) # what a run does first (it creates the tables the lakehouse lacks)
    done = migrate(spark, t, log=lambda m: None)
    assert any("pipeline_runs: added run_state" in d for d in done) and any("sales_metrics: added is_all_categories" in d for d in done)
    assert "run_state" in spark.table(t.name("logs", "pipeline_runs")).columns
    assert {r.product_category: r.is_all_categories for r in spark.table(t.sales_metrics).collect()} == {"ALL": True, "Fashion": False}
    assert any("order_transactions: file statistics on landing_date, source_system, source_file, ingested_at" in d for d in done)
    props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES {t.order_transactions}").collect()}
    assert props["delta.dataSkippingStatsColumns"] == "landing_date,source_system,source_file,ingested_at"
    # the quality results: each run's in its row, the view shows the same rows; the table's folder is gone
    assert any("3 rows moved into spark_catalog.logs.pipeline_runs.quality_results (1 run(s) with no row" in d for d in done), done
    assert spark.catalog.getTable(dq).tableType == "VIEW"
    assert sorted(map(tuple, spark.table(dq).collect())) == sorted(quality)
    runs = {r.run_id: r for r in spark.table(t.name("logs", "pipeline_runs")).collect()}
    assert runs["run-1"].status == "succeeded" and len(runs["run-1"].quality_results) == 2
    assert runs["run-gone"].status is None and "wrote no row" in runs["run-gone"].error_message
    wh = Path(spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    assert not (wh/"logs.db"/"data_quality_results").exists() and (wh/"logs.db"/"data_quality_results.view.sql").is_file()
    ensure_tables(spark, t) # a run goes on
    # a new process defines the view again from its file, as it registers the tables
    spark.sql(f"DROP VIEW {dq}")
    register_tables(spark)
    assert sorted(map(tuple, spark.table(dq).collect())) == sorted(quality)
    assert migrate(spark, t, log=lambda m: None) == [] # nothing left to do
