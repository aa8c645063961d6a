"""Hostile and odd landed files, over a local folder and over S3: nothing lost, nothing leaked, one bad file never blocks a day.

Each case of the day below is a class of input, with more than one instance where the class has several. For each file the
test knows where every line must end: in bronze (and then silver or the quarantine), or the file is rejected whole with one
row in `logs.etl_errors` and a ledger reason naming the rule and the limit. The day's good files are loaded beside them."""
import gzip, json, os, shutil, subprocess, sys
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
import pytest
from conftest import run_quiet
from test_rules_and_corrections import HEADER, line
from ecom_pipeline.config import PipelineConfig
from ecom_pipeline.pipeline import run_daily

DAY = date(2018, 3, 6)
BAD = Path(__file__).parent/"data"/"bad"
ODD = ("03_utf8_bom.csv", "04_crlf.csv", "05_latin1.csv", "06_quoted_comma.csv", "07_quoted_newline.csv", "17_extra_column.csv",
       "19_gzipped.csv.gz") # odd but readable files of the bad-input corpus: their lines end where EXPECTED.csv says
SECRET = "SECRET-TOKEN-7d1f0c" # the content of a file outside the landing root: it must appear nowhere
LIMITS = dict(max_line_bytes=64 * 1024, max_columns=200, max_decompressed_bytes=500_000, max_file_bytes=1_000_000)
MAX_RATE = 0.5 # the corpus's odd files hold a few lines that are quarantined on purpose

def csv_bytes(rows, before=b"", header=HEADER) -> bytes:
    return before + ("\n".join([header] + rows) + "\n").encode()

def good_rows(prefix: str, n: int, cat="Fashion"):
    return [line(date=f"{DAY.month}/{DAY.day}/{DAY.year}", time=f"10:{i:02d}:00", cust=f"{prefix}{i}", cat=cat, prod=f"Jeans {prefix}")
            for i in range(n)]

def hostile_day() -> dict:
    """{file name: (bytes, outcome)}: outcome `loaded` (every data line in bronze), `empty`, or the rule that rejects it whole."""
    long_field = line(date=f"{DAY.month}/{DAY.day}/{DAY.year}", cust="LF1", prod='"' + "x" * 20_000 + '""quoted"" end"')
    return {
        "good.csv": (csv_bytes(good_rows("G", 6) + good_rows("A", 2, cat="ALL")), "loaded"), # a category named ALL
        # 1. blank or whitespace-only lines before the header: the file is read, its lines numbered as they are in the file
        "blank_first.csv": (csv_bytes(good_rows("B", 3), before=b"\n"), "loaded"),
        "spaces_first.csv": (csv_bytes(good_rows("S", 2), before=b"   \r\n\t\r\n"), "loaded"),
        "only_blanks.csv": (b" \n\n\t\n", "empty"),
        "zero_bytes.csv": (b"", "empty"),
        "header_only.csv": (csv_bytes([]), "loaded"),
        # 3. names Spark's reader would expand or refuse
        "*.csv": (csv_bytes(good_rows("X", 1)), "file_name_unsafe"),
        "[g]ood.csv": (csv_bytes(good_rows("Y", 1)), "file_name_unsafe"),
        "a{b,c}.csv": (csv_bytes(good_rows("Z", 1)), "file_name_unsafe"),
        # 4. past a limit: rejected whole, the others load
        "long_field.csv": (csv_bytes([long_field]), "loaded"), # 20,000 characters in quotes: parsed, no stack overflow
        "long_line.csv": (csv_bytes(["9" * 100_000]), "line_too_long"),
        "no_newline.csv": (b"Order_Date," + b"y" * 900_000, "line_too_long"), # a header that never ends
        "wide.csv": (csv_bytes([], header=HEADER + "," + ",".join(f"c{i}" for i in range(300))), "too_many_columns"),
        "very_wide.csv": (csv_bytes([], header=",".join(f"c{i}" for i in range(100_000))), "line_too_long"),
        "nul.csv": (csv_bytes(good_rows("N", 1) + ["1/1/2018,\x00"]), "nul_byte"),
        "bomb.csv.gz": (gzip.compress(csv_bytes(["0" * 99] * 10_000), 9), "decompressed_too_large"),
        "not_gzip.csv.gz": (b"this is not gzip", "gzip_invalid"),
        "too_big.csv": (csv_bytes(good_rows("T", 1) + ["#" * 1000] * 1100), "file_too_large"),
        "unknown.csv": (b"secret,stuff\n1,2\n", "unknown_source"),
        "missing_column.csv": (csv_bytes(["1/2/2018"], header="Order_Date,Time,Customer_Id,Product_Category,Product,Sales,Discount"),
                               "missing_columns"),
        **{n: ((BAD/n).read_bytes(), "loaded") for n in ODD},
    }

BAD_PROMOTIONS = ("promo_id,name,product_category,product_name,start_date,end_date,discount_rate\n"
                  "EVER,Forever,Fashion,,0001-01-01,9999-12-31,0.1\n"
                  "LONG,Long,Fashion,,2018-01-01,2019-06-30,0.1\n")
BAD_FX = "date,currency,rate_to_usd\n0001-01-01,GBP,1.5\n9999-12-31,GBP,1.6\n"

def data_lines(data: bytes) -> int:
    "Lines after the header (blank lines before the header skipped), counted as Spark's reader counts them."
    if data[:2] == b"\x1f\x8b": data = gzip.decompress(data)
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "": lines.pop()
    while lines and not lines[0].strip(): lines.pop(0)
    return max(len(lines) - 1, 0)

def check_day(spark, cfg, s, files: dict, out: str):
    "The assertions both stores share."
    t = cfg.tables
    name = lambda uri: uri.rsplit("/", 1)[-1]
    rejected = {n: o for n, (_, o) in files.items() if o not in ("loaded", "empty")}
    assert s.status == "succeeded" and s.unreadable_files == len(rejected) + 2 # + the two reference files
    ledger = {name(r.file_key): r for r in spark.table(t.ingested_files).collect()}
    assert set(ledger) == set(files)
    errors = spark.table(t.etl_errors).collect()
    by_file = Counter(name(r.source_file) for r in errors if r.rule in rejected.values())
    for n, rule in rejected.items(): # rejected whole: one row, the ledger names the rule; nothing of it in bronze
        assert ledger[n].status == "rejected" and ledger[n].reason.startswith(f"{rule}: "), (n, ledger[n])
        assert by_file[n] == 1 and next(r for r in errors if name(r.source_file) == n).rule == rule, n
    for r in errors: assert r.raw_record is None or len(r.raw_record.encode()) <= 510 # at most ~500 bytes of a header
    bronze = Counter(name(r.source_file) for r in spark.table(t.order_transactions).select("source_file").collect())
    for n, (data, outcome) in files.items(): # every data line of a loaded file is in bronze, once
        assert bronze.get(n, 0) == (data_lines(data) if outcome == "loaded" else 0), n
        if outcome == "empty": assert ledger[n].status == "empty"
    lines = {(name(r.source_file), r.line_number) for r in spark.table(t.order_transactions).collect()}
    assert {l for f, l in lines if f == "blank_first.csv"} == {3, 4, 5} and {l for f, l in lines if f == "spaces_first.csv"} == {4, 5}
    silver = spark.table(t.orders_cleaned).collect()
    assert {r.customer_id for r in silver} >= {f"{p}{i}" for p, n in (("G", 6), ("B", 3), ("S", 2), ("A", 2)) for i in range(n)}
    # the odd files of the corpus: each line in silver or quarantined by its rule, as EXPECTED.csv says
    import csv
    with open(BAD/"EXPECTED.csv", newline="") as f:
        expected = {(r["file"], int(r["line"])): r["outcome"] for r in csv.DictReader(f) if r["file"] in ODD}
    in_silver = {(name(r.source_file), r.line_number) for r in silver}
    quarantined = {(name(r.source_file), r.line_number): r.rule for r in errors}
    for k, outcome in expected.items():
        assert (k in in_silver) if outcome == "silver" else quarantined.get(k) == outcome, (k, outcome)
    # the reference files with dates in year 1 and 9999 are rejected with their line numbers; the run went on
    ref = {name(r.source_file): r.reason for r in errors if r.rule == "reference_invalid"}
    assert set(ref) == {"promotions.csv", "fx_rates.csv"}
    assert "line 2: date_out_of_range" in ref["promotions.csv"] and "line 3: window_too_long" in ref["promotions.csv"]
    assert "line 2: date_out_of_range" in ref["fx_rates.csv"] and "line 3: date_out_of_range" in ref["fx_rates.csv"]
    # 7. a category named ALL is a category: the total row is the one flagged, and it adds every category up
    gold = spark.table(t.sales_metrics).where(f"order_date = DATE'{DAY}'").collect()
    totals = [r for r in gold if r.is_all_categories]
    assert len(totals) == 1 and sorted(r.product_category for r in gold) == ["ALL", "ALL", "Fashion"]
    net = sum((r.net_amount for r in silver if r.order_date == DAY), Decimal("0.00"))
    assert totals[0].net_revenue == net == sum(r.net_revenue for r in gold if not r.is_all_categories)
    # nothing from outside the landing root, in any table or output
    for tbl in (t.order_transactions, t.etl_errors, t.ingested_files, t.orders_cleaned, t.name("logs", "pipeline_runs")):
        assert all(SECRET not in json.dumps(r.asDict(), default=str) for r in spark.table(tbl).collect()), tbl
    assert SECRET not in out and SECRET not in str(s)

def land_local(root: Path):
    day = root/f"{DAY:%Y/%m/%d}"
    day.mkdir(parents=True)
    files = hostile_day()
    for n, (data, _) in files.items(): (day/n).write_bytes(data)
    (root/"reference").mkdir()
    (root/"reference"/"promotions.csv").write_text(BAD_PROMOTIONS); (root/"reference"/"fx_rates.csv").write_text(BAD_FX)
    return day, files

def test_hostile_files_in_a_local_folder(spark, clean_lakehouse, tmp_path, capsys):
    root = tmp_path/"landing"
    day, files = land_local(root)
    secret = tmp_path/"outside"/"netrc"
    secret.parent.mkdir(); secret.write_text(f"machine x login me password {SECRET}\n")
    # 2. links and special files: listed as ignored, never read
    os.symlink(secret, day/"leak.csv"); os.symlink(secret, day/"leak_header.csv.gz"); os.mkfifo(day/"pipe.csv")
    os.symlink(secret.parent, day/"subdir") # a link to a folder: not a file of the day
    cfg = PipelineConfig(source_root=str(root), warehouse=spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"), max_quarantine_rate=MAX_RATE, **LIMITS)
    logged = []
    s = run_daily(spark, cfg, DAY, log=logged.append)
    out = "\n".join(logged) + capsys.readouterr().out + capsys.readouterr().err
    assert sorted(s.ignored) == ["leak.csv (a symbolic link: not read)", "leak_header.csv.gz (a symbolic link: not read)",
                                 "pipe.csv (not a regular file: not read)", "subdir (a symbolic link: not read)"]
    assert sum("not read)" in w for w in s.warnings) == 4
    check_day(spark, cfg, s, files, out)
    # a second run: nothing new, the rejected files are not read again (the ledger holds their ETags), and it still succeeds
    again = run_quiet(spark, cfg, DAY)
    assert again.status == "succeeded" and again.files_new == 0 and again.up_to_date_by == s.run_id

    # 13. a claim of a dead PID is taken over only on the same host, boot and PID namespace
    from ecom_pipeline.pipeline import RunInProgressError, claim_run_date, host_boot_id, release_claim, RUN_CLAIMS_COLUMNS
    from ecom_pipeline.spark import ddl, merge_into
    import socket
    from datetime import datetime, timedelta
    dead = subprocess.Popen([sys.executable, "-c", "pass"]); dead.wait() # a PID that no longer runs
    now, d2, t_claims = datetime(2030, 1, 1), date(2030, 1, 1), cfg.tables.name("logs", "run_claims")
    for boot, can_take in (("another-boot/1", False), (host_boot_id(), True)):
        held = spark.createDataFrame([(d2, "dead-run", socket.gethostname(), dead.pid, now, now + timedelta(hours=6), boot)],
                                     ddl(RUN_CLAIMS_COLUMNS))
        merge_into(spark, t_claims, held, "t.run_date = s.run_date")
        if can_take:
            claim_run_date(spark, cfg, d2, "new-run", now, log=lambda m: None); release_claim(spark, cfg, d2, "new-run")
        else:
            with pytest.raises(RunInProgressError, match="run dead-run"): claim_run_date(spark, cfg, d2, "new-run", now, log=lambda m: None)
    assert spark.table(t_claims).where(f"run_date = DATE'{d2}'").first().run_id is None

    # 0. a copy of the lakehouse is a lakehouse of its own: a run on the copy leaves the original as it was
    wh = Path(cfg.warehouse)
    copy = tmp_path/"copy"
    shutil.copytree(wh, copy, symlinks=True)
    logs = lambda w: {str(p.relative_to(w)): p.stat().st_size for p in w.glob("*.db/*/_delta_log/*.json")}
    before = logs(wh)
    (day/"late.csv").write_bytes(csv_bytes(good_rows("L", 2)))
    (day/"late_bomb.csv.gz").write_bytes(gzip.compress(csv_bytes(["0" * 99] * 10_000), 9)) # rejected; the run still exits 0
    r = subprocess.run([str(Path(sys.executable).parent/"ecom-pipeline"), "run", "--date", str(DAY), "--source", str(root),
                        "--warehouse", str(copy), "--max-quarantine-rate", "1"], capture_output=True, text=True, timeout=900,
                       env={**os.environ, "ECOM_SPARK_MASTER": "local[2]", **{f"ECOM_{k.upper()}": str(v) for k, v in LIMITS.items()}})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "late_bomb.csv.gz: rejected whole (decompressed_too_large)" in r.stdout + r.stderr and "SUCCEEDED" in r.stdout + r.stderr
    assert logs(wh) == before # the original's tables: not one commit more
    late = spark.read.format("delta").load(str(copy/"raw.db"/"order_transactions")).where("source_file LIKE '%late.csv'").count()
    assert late == 2 and spark.table(cfg.tables.order_transactions).where("source_file LIKE '%late.csv'").count() == 0

def test_hostile_files_on_s3(spark, clean_lakehouse, s3, tmp_path, capsys):
    "15. The same day on an S3 endpoint: an empty object, names with * and [, a gzip bomb; staged copies checked by If-Match."
    client, bucket = s3
    files = hostile_day()
    prefix = "raw/ecommerce_sales"
    for n, (data, _) in files.items(): client.put_object(Bucket=bucket, Key=f"{prefix}/{DAY:%Y/%m/%d}/{n}", Body=data)
    client.put_object(Bucket=bucket, Key=f"{prefix}/reference/promotions.csv", Body=BAD_PROMOTIONS.encode())
    client.put_object(Bucket=bucket, Key=f"{prefix}/reference/fx_rates.csv", Body=BAD_FX.encode())
    cfg = PipelineConfig(source_root=f"s3://{bucket}/{prefix}", warehouse=spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"),
                         max_quarantine_rate=MAX_RATE, **LIMITS)
    logged = []
    s = run_daily(spark, cfg, DAY, client=client, log=logged.append)
    check_day(spark, cfg, s, files, "\n".join(logged) + capsys.readouterr().out)
    assert not list((Path(cfg.warehouse)/"_staging").glob("*")) # the run's private staging folder is gone

    # 8. the dashboard's category filter is a parameter: a value that would end a quoted SQL string is just a value
    from ecom_pipeline.dashboard import PAGES, render_dashboard
    def category_rows(categories):
        ws = render_dashboard(spark, tmp_path/"dash.html", categories=categories, pages=PAGES[:1])
        return {r.widget.name: r.rows for r in ws if r.widget.dataset == "category_sales"}
    hostile = ["x\\' OR 1=1 --", "x' OR '1'='1", "ALL"]
    fashion, none = category_rows(["Fashion"]), category_rows(hostile[:2])
    assert fashion and all(n > 0 for n in fashion.values()) and all(n == 0 for n in none.values())
    assert all(n > 0 for n in category_rows(hostile).values()) # the category named ALL, and only it
