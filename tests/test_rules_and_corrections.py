"""Each quarantine rule on its own line; corrections and duplicates across days; reruns change nothing."""
from datetime import date
from decimal import Decimal
from pathlib import Path
import pytest
from conftest import run_quiet
from ecom_pipeline.config import PipelineConfig

HEADER = ("Order_Date,Time,Aging,Customer_Id,Gender,Device_Type,Customer_Login_type,Product_Category,Product,"
          "Sales,Quantity,Discount,Profit,Shipping_Cost,Order_Priority,Payment_method")

def line(date="1/2/2018", time="10:56:33", cust="37077", cat="Fashion", prod="Jeans", sales="100", qty="2", disc="0.1",
         aging="8", profit="20", pay="credit_card"):
    return f"{date},{time},{aging},{cust},Female,Web,Member,{cat},{prod},{sales},{qty},{disc},{profit},2,Medium,{pay}"

def write(root: Path, d: date, name: str, rows, crlf=True):
    p = root/f"{d:%Y/%m/%d}"/name
    p.parent.mkdir(parents=True, exist_ok=True)
    nl = "\r\n" if crlf else "\n"
    p.write_text(nl.join([HEADER] + rows) + nl)
    return p

def cfg_for(root, spark, **kw):
    return PipelineConfig(source_root=str(root), warehouse=spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"), **kw)

def test_every_quarantine_rule_catches_its_own_line(spark, clean_lakehouse, tmp_path):
    d = date(2018, 1, 2)
    full = line()
    rows = {
        2: (line(), None),
        3: (full.rsplit(",", 1)[0], "malformed_line"),                       # 15 fields: Spark would pad with null
        4: (full + ",extra", "malformed_line"),                              # 17 fields: Spark would truncate
        5: (line(prod='"Jeans'), "malformed_line"),                          # broken quoting
        6: (line(date="2/30/2018"), "order_date_invalid"),
        7: (line(date=""), "order_date_invalid"),
        8: (line(time="24:00:00"), "order_time_invalid"),
        9: (line(time=""), "order_time_invalid"),
        10: (line(cust=""), "customer_id_missing"),
        11: (line(qty=""), "quantity_invalid"),
        12: (line(qty="1.5"), "quantity_invalid"),
        13: (line(qty="0"), "quantity_invalid"),
        14: (line(qty="-3"), "quantity_invalid"),
        15: (line(sales=""), "unit_price_invalid"),
        16: (line(sales="abc"), "unit_price_invalid"),
        17: (line(sales="-5"), "unit_price_invalid"),
        18: (line(sales="1" + "0" * 29), "unit_price_invalid"),            # 30 digits: no silent null, no overflow
        19: (line(disc="1.5"), "discount_out_of_range"),
        20: (line(disc="-0.1"), "discount_out_of_range"),
        21: (line(prod='"Sofa, 3 seats"', cust="99"), None),                 # a quoted comma is fine
        22: (line(disc="", cust="98", aging=""), None),                      # missing Discount is 0; missing Aging only warns
    }
    write(tmp_path, d, "orders.csv", [rows[n][0] for n in sorted(rows)])
    cfg = cfg_for(tmp_path, spark, max_quarantine_rate=1.0)                  # a day of nearly only bad lines, on purpose
    s = run_quiet(spark, cfg, d)
    got = {r.line_number: r.rule for r in spark.table(cfg.tables.etl_errors).collect()}
    assert got == {n: rule for n, (_, rule) in rows.items() if rule}
    errs = {r.line_number: r for r in spark.table(cfg.tables.etl_errors).collect()}
    assert errs[3].reason == "malformed line: wrong number of fields: expected 16, found 15"
    assert errs[6].reason.endswith(": 2/30/2018") and errs[6].raw_record == rows[6][0]
    silver = {r.customer_id: r for r in spark.table(cfg.tables.orders_cleaned).collect()}
    assert set(silver) == {"37077", "99", "98"}
    assert silver["99"].product_name == "Sofa, 3 seats"
    assert (silver["98"].discount_rate, silver["98"].net_amount, silver["98"].aging_days) == (Decimal("0"), Decimal("200.00"), None)
    assert (s.quarantined, s.order_lines, s.duplicates) == (18, 3, 0)
    assert s.warnings_by_rule["aging_missing"] == 1

def test_corrections_and_duplicates_across_days_and_reruns(spark, clean_lakehouse, tmp_path):
    d1, d2 = date(2018, 1, 2), date(2018, 1, 3)
    a = line(cust="1", prod="Jeans", sales="100", qty="1", disc="0.1")       # 100.00 - 10.00 = 90.00
    b = line(cust="2", prod="Shirts", sales="50.5", qty="3", disc="0.3")    # 151.50 - 45.45 = 106.05
    write(tmp_path, d1, "orders.csv", [a, b, a])                             # a twice in one file
    a_fixed = line(cust="1", prod="Jeans", sales="100", qty="4", disc="0.25")  # re-sent next day: 400.00 - 100.00 = 300.00
    c = line(date="1/3/2018", cust="1", prod="Tyre", sales="19.99", qty="3", disc="0.5")  # 59.97 - 29.99 (29.985 half up) = 29.98
    write(tmp_path, d2, "orders.csv", [c, a_fixed], crlf=False)
    cfg = cfg_for(tmp_path, spark)
    t = cfg.tables

    def snapshot():
        return (sorted(map(tuple, spark.table(t.orders_cleaned).collect())), sorted(map(tuple, spark.table(t.sales_metrics).collect())),
                sorted(map(tuple, spark.table(t.customer_lifetime_value).collect())),
                sorted(map(tuple, spark.table(t.daily_customer_sales).collect())), spark.table(t.order_transactions).count(),
                spark.table(t.etl_errors).count(), spark.table(t.ingested_files).count())

    s1 = run_quiet(spark, cfg, d1)
    assert (s1.bronze_rows, s1.duplicates, s1.order_lines) == (3, 1, 2)
    net = {r.customer_id: r.net_amount for r in spark.table(t.orders_cleaned).collect()}
    assert net == {"1": Decimal("90.00"), "2": Decimal("106.05")}
    after_d1 = snapshot()
    for _ in range(2):
        s = run_quiet(spark, cfg, d1)
        assert (s.files_new, s.files_skipped, s.rows_inserted, s.rows_updated) == (0, 1, 0, 0)
        assert snapshot() == after_d1

    s2 = run_quiet(spark, cfg, d2)
    assert (s2.rows_inserted, s2.rows_updated) == (1, 1)
    rows = {(r.customer_id, r.product_name): r for r in spark.table(t.orders_cleaned).collect()}
    assert rows[("1", "Jeans")].quantity == 4 and rows[("1", "Jeans")].net_amount == Decimal("300.00")
    assert rows[("1", "Tyre")].discount_amount == Decimal("29.99") and rows[("1", "Tyre")].net_amount == Decimal("29.98")
    gold = {(r.order_date, r.product_category): r for r in spark.table(t.sales_metrics).collect()}
    assert gold[(d1, "ALL")].net_revenue == Decimal("300.00") + Decimal("106.05")
    assert (gold[(d1, "ALL")].orders, gold[(d1, "ALL")].units) == (2, 7)
    assert gold[(d2, "Fashion")].net_revenue == gold[(d2, "ALL")].net_revenue == Decimal("29.98")
    clv = {r.customer_id: r for r in spark.table(t.customer_lifetime_value).collect()}
    assert (clv["1"].lifetime_orders, clv["1"].lifetime_net_revenue, clv["1"].avg_order_value) == (2, Decimal("329.98"), Decimal("164.99"))
    after_d2 = snapshot()
    run_quiet(spark, cfg, d1)                                                # the older day again: the correction stays
    assert snapshot() == after_d2

@pytest.mark.slow # make slow-test: keeps make test under 15 minutes
def test_changed_file_under_same_key_supersedes_old_lines(spark, clean_lakehouse, tmp_path):
    d = date(2018, 1, 2)
    write(tmp_path, d, "orders.csv", [line(cust="1", qty="1")])
    cfg = cfg_for(tmp_path, spark)
    run_quiet(spark, cfg, d)
    write(tmp_path, d, "orders.csv", [line(cust="1", qty="5")])             # same key, new content and ETag
    s = run_quiet(spark, cfg, d)
    assert (s.files_new, s.lines_read, s.bronze_rows, s.rows_updated) == (1, 1, 1, 1)
    assert [r.quantity for r in spark.table(cfg.tables.orders_cleaned).collect()] == [5]
    assert spark.table(cfg.tables.order_transactions).count() == 2          # bronze keeps both versions
    assert spark.table(cfg.tables.ingested_files).count() == 2

@pytest.mark.slow # make slow-test: the bad corpus (test_bad_input.py) holds a gzip, a BOM, a header-only file and _SUCCESS too
def test_gzip_bom_header_only_and_markers(spark, clean_lakehouse, tmp_path):
    import gzip
    d = date(2018, 1, 5)
    day = tmp_path/f"{d:%Y/%m/%d}"
    day.mkdir(parents=True)
    (day/"a_bom.csv").write_bytes(("\ufeff" + HEADER + "\r\n" + line(cust="1") + "\r\n").encode("utf-8"))
    (day/"b.csv.gz").write_bytes(gzip.compress((HEADER + "\n" + line(cust="2") + "\n" + line(cust="3") + "\n").encode()))
    (day/"c_header_only.csv").write_text(HEADER + "\r\n")
    (day/"_SUCCESS").write_text("")
    cfg = cfg_for(tmp_path, spark)
    s = run_quiet(spark, cfg, d)
    assert (s.files_found, s.files_new, s.ignored, s.lines_read, s.quarantined) == (3, 3, ["_SUCCESS"], 3, 0)
    assert sorted(r.customer_id for r in spark.table(cfg.tables.orders_cleaned).collect()) == ["1", "2", "3"]
    ledger = {Path(r.file_key).name: r.line_count for r in spark.table(cfg.tables.ingested_files).collect()}
    assert ledger == {"a_bom.csv": 1, "b.csv.gz": 2, "c_header_only.csv": 0}

def test_failed_run_is_recorded_with_its_reason(spark, clean_lakehouse, tmp_path):
    "A day whose lines are all quarantined fails; its pipeline_runs row says why, and silver is not touched."
    from ecom_pipeline.pipeline import QuarantineRateExceeded
    d = date(2018, 1, 6)
    write(tmp_path, d, "bad_quantities.csv", [line(cust="1", qty="-1"), line(cust="2", qty="x")])
    cfg = cfg_for(tmp_path, spark)
    with pytest.raises(QuarantineRateExceeded, match=r"100.0% of the 2 lines of 2018-01-06 quarantined"):
        run_quiet(spark, cfg, d)
    runs = spark.table(cfg.tables.name("logs", "pipeline_runs")).collect()
    assert [(r.run_date, r.status) for r in runs] == [(d, "failed")]
    assert "QuarantineRateExceeded: 100.0% of the 2 lines" in runs[0].error_message and runs[0].finished_at
    assert spark.table(cfg.tables.order_transactions).count() == 2 and spark.table(cfg.tables.etl_errors).count() == 2 # kept
    assert spark.table(cfg.tables.orders_cleaned).count() == 0 # nothing half-written
