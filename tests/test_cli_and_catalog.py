"""The console script as a user runs it, and tables found by name from new processes."""
import os, subprocess, sys
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent

def cli(*args, **kw):
    return subprocess.run([str(BIN/"ecom-pipeline"), *args], capture_output=True, text=True, timeout=600, **kw)

@pytest.mark.parametrize("cmd", [[], ["generate"], ["land"], ["run"], ["backfill"], ["maintain"], ["dashboard"], ["demo"]])
def test_help_explains_each_command(cmd):
    r = cli(*cmd, "--help")
    assert r.returncode == 0 and "usage: ecom-pipeline" in r.stdout
    assert len(r.stdout.splitlines()) >= 5

def test_bad_arguments_fail_with_one_clear_line(tmp_path):
    r = cli("run", "--date", "2018-13-01")
    assert r.returncode == 2 and "run_date '2018-13-01'" in r.stderr
    r = cli("run", "--date", "2018-01-02", "--source", str(tmp_path), "--catalog", "x; DROP TABLE raw.order_transactions")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == ["ecom-pipeline run: FAILED: ValueError: catalog 'x; DROP TABLE raw.order_transactions' "
                                             "is not a valid identifier: use letters, digits and _ only, not starting with a digit"]

NOTEBOOK = """
import sys
from ecom_pipeline.spark import get_spark
spark = get_spark(sys.argv[1], master="local[1]")
def seen():
    by_name = spark.sql("SELECT count(*) AS n FROM spark_catalog.processed.orders_cleaned").first().n
    days = spark.sql("SELECT count(DISTINCT landing_date) AS n FROM spark_catalog.raw.order_transactions").first().n
    return by_name, days
print("open", *seen(), flush=True)
# the data scientist writes a table of their own while the scheduled runs go on
spark.sql("CREATE SCHEMA IF NOT EXISTS spark_catalog.sandbox")
spark.table("spark_catalog.processed.orders_cleaned").groupBy("customer_id").count().write.format("delta").saveAsTable("spark_catalog.sandbox.lines_per_customer")
print("wrote", flush=True)
sys.stdin.readline() # stays open until the test has run two more days
by_path = spark.read.format("delta").load(sys.argv[1] + "/processed.db/orders_cleaned").count()
tables = sorted(r.tableName for r in spark.sql("SHOW TABLES IN spark_catalog.analytics").collect())
print("after", *seen(), by_path, ",".join(tables), flush=True)
"""

@pytest.mark.slow
def test_a_notebook_session_stays_open_while_two_daily_runs_go_through(tmp_path):
    """One process per command, as a user runs them; a notebook-like session on the same warehouse stays open (and
    writes a table of its own) while two daily runs go through, then sees their lines by name; a new process finds
    every table by name, the notebook's too."""
    root, wh = tmp_path/"landing", tmp_path/"wh"
    r = cli("generate", "--out", str(root), "--start-date", "2018-02-01", "--days", "3", "--rows-per-day", "120", "--seed", "5")
    assert r.returncode == 0, r.stderr
    run = lambda d: cli("run", "--date", d, "--source", str(root), "--warehouse", str(wh), "--master", "local[2]")
    r = run("2018-02-01")
    assert r.returncode == 0, r.stderr[-3000:]
    nb = subprocess.Popen([sys.executable, "-c", NOTEBOOK, str(wh)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        opened = nb.stdout.readline().split()
        assert opened[0] == "open" and opened[2] == "1", (opened, nb.stderr.read()[-3000:] if nb.poll() is not None else "")
        for d in ("2018-02-02", "2018-02-03"): # while the notebook's session is open, and while it writes
            r = run(d)
            assert r.returncode == 0, r.stderr[-3000:]
            assert f"landing day {d}" in r.stdout and "to silver" in r.stdout and "waiting" not in r.stderr
        assert nb.stdout.readline().strip() == "wrote"
        out, err = nb.communicate("go\n", timeout=600)
    finally:
        if nb.poll() is None: nb.kill()
    assert nb.returncode == 0, err[-3000:]
    after, n_name, days, n_path, tables = out.split()
    assert int(n_name) == int(n_path) > int(opened[1]) > 50 and days == "3"
    assert tables == "customer_lifetime_value,daily_customer_sales,promotion_performance,sales_metrics,sales_metrics_by_currency"
    for schema, table in (("raw", "order_transactions"), ("processed", "orders_cleaned"), ("analytics", "sales_metrics"),
                          ("analytics", "customer_lifetime_value"), ("logs", "etl_errors"), ("sandbox", "lines_per_customer")):
        assert (wh/f"{schema}.db"/table/"_delta_log").is_dir(), f"{schema}.{table} not at DIR/<schema>.db/<table>"
    assert not (wh/"metastore_db").exists() # no catalog on disk: each session registers the folders it finds
    probe = (f"from ecom_pipeline.spark import get_spark; s = get_spark({str(wh)!r}, master='local[1]'); "
             "print(s.table('spark_catalog.sandbox.lines_per_customer').count(), "
             "s.sql('SELECT count(DISTINCT landing_date) AS n FROM spark_catalog.raw.order_transactions').first().n)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    customers, days = map(int, r.stdout.split())
    assert days == 3 and 0 < customers < int(opened[1])

def test_hostile_values_are_rejected_and_touch_nothing(tmp_path):
    "Values that reach SQL or a path are validated first: nothing is created, read or written."
    from ecom_pipeline.config import PipelineConfig, Tables
    from ecom_pipeline.landing import LocalStore
    from ecom_pipeline.pipeline import run_daily
    wh, root = tmp_path/"wh", tmp_path/"landing"
    root.mkdir()
    cases = [(["--date", "../../etc"], 2, "run_date '../../etc' is not a date in the form YYYY-MM-DD"),
             (["--date", "2018-01-02", "--catalog", "x; DROP TABLE raw.order_transactions"], 1, "is not a valid identifier"),
             (["--date", "2018-01-02", "--catalog", "spark_catalog.raw --"], 1, "is not a valid identifier"),
             (["--date", "2018-01-02", "--max-quarantine-rate", "5%"], 2, "'5%' is not a share between 0 and 1")]
    for args, code, msg in cases:
        r = cli("run", *args, "--source", str(root), "--warehouse", str(wh))
        assert (r.returncode, msg in r.stderr) == (code, True), (args, r.stderr)
    r = cli("run", "--date", "2018-01-02", "--source", str(root), "--warehouse", str(wh), env={**os.environ, "ECOM_CATALOG": "c; DROP"})
    assert r.returncode == 1 and "catalog 'c; DROP' is not a valid identifier" in r.stderr
    assert not wh.exists() and list(root.iterdir()) == []
    store = LocalStore(str(root))
    for key in ("../../etc/passwd", "/etc/passwd", "2018/01/../../../x.csv", "C:\\x.csv"):
        with pytest.raises(ValueError, match="not a relative path below the landing root"):
            store.put(key, b"x")
    assert list(root.iterdir()) == [] and not (tmp_path/"etc").exists()
    with pytest.raises(ValueError, match="table 't; DROP' is not a valid identifier"):
        Tables("spark_catalog").name("raw", "t; DROP")
    with pytest.raises(ValueError, match="run_id"):   # checked before any Spark call: spark=None is never touched
        run_daily(None, PipelineConfig(str(root), warehouse=str(wh)), "2018-01-02", run_id="x'; DROP TABLE y --")
    assert not wh.exists()

def test_maintain_and_backfill_refuse_bad_arguments_before_starting_spark():
    r = cli("maintain", "--vacuum-hours", "24")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "ecom-pipeline maintain: FAILED: ValueError: VACUUM retention 24 hours is below the minimum of 168 hours" in r.stderr
    r = cli("backfill", "--from", "2018-01-05", "--to", "2018-01-01")
    assert r.returncode == 1 and r.stderr.strip().splitlines() == ["ecom-pipeline backfill: FAILED: ValueError: --from 2018-01-05 is after --to 2018-01-01"]
