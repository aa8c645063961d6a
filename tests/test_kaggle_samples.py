"""The real Kaggle E-commerce Dataset sample (when ../shared is there): land splits it, the pipeline reads it."""
import csv, shutil
from collections import Counter
from datetime import date, datetime
import oracle
from conftest import run_quiet
from ecom_pipeline.config import PipelineConfig
from ecom_pipeline.landing import land

def _sample(kaggle_dir):
    return kaggle_dir/"mervemenekse-ecommerce-dataset"/"E-commerce_Dataset.sample2000.csv"

def test_land_splits_the_real_export_by_order_date(kaggle_dir, tmp_path):
    src = _sample(kaggle_dir)
    s = land([str(src)], str(tmp_path))
    rows = list(csv.DictReader(open(src, newline="")))
    by_day = Counter(datetime.strptime(r["Order_Date"], "%m/%d/%Y").date() for r in rows)
    assert (s.lines, s.unlanded, s.days) == (len(rows), 0, len(by_day))
    for d, n in by_day.items():
        part = (tmp_path/f"{d:%Y/%m/%d}"/src.name).read_bytes()
        assert part.startswith(src.read_bytes().split(b"\r\n")[0] + b"\r\n")   # original header and CRLF kept
        assert len(part.split(b"\r\n")) - 2 == n

def test_real_export_through_the_pipeline_matches_independent_totals(spark, clean_lakehouse, kaggle_dir, tmp_path):
    src = _sample(kaggle_dir)
    d = date(2019, 1, 1)                         # the whole export dropped as one day's file
    (tmp_path/"2019/01/01").mkdir(parents=True)
    shutil.copy(src, tmp_path/"2019/01/01"/src.name)
    cfg = PipelineConfig(source_root=str(tmp_path), warehouse=spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    s = run_quiet(spark, cfg, d)
    lines = oracle.read_file(str(tmp_path/"2019/01/01"/src.name), d, src.read_bytes())
    recs = oracle.latest(lines)
    assert s.lines_read == 2000
    assert s.quarantined == sum(1 for l in lines if l.rule) == 2   # the two lines without a Quantity
    assert s.order_lines == len(recs)
    exp = oracle.sales_metrics(recs.values())
    got = {(r.order_date, r.product_category): r for r in spark.table(cfg.tables.sales_metrics).collect()}
    assert set(got) == set(exp)
    assert sum(got[k].net_revenue for k in got if k[1] == "ALL") == sum(e["net_revenue"] for k, e in exp.items() if k[1] == "ALL")
    for k, e in exp.items():
        assert {c: got[k][c] for c in e} == e, k
