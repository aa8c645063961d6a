"""The UCI Online Retail and Indian two-file sources, end to end, against the plain-Python oracle.

Generated exports always run (three shops in three currencies in the same day folder: Kaggle in USD, UCI in GBP, the
Indian export in INR); the real Kaggle samples run when ../shared is there. Gold is in one reporting currency (USD) and
checked against `oracle` (csv module, Decimal, the test's own rates); each currency's own figures are checked in
`sales_metrics_by_currency`.
"""
import shutil
import pytest
from collections import Counter
from datetime import date, timedelta
import oracle
from conftest import run_quiet
from ecom_pipeline.config import PipelineConfig
from ecom_pipeline.sample_data import CLEAN, generate, indian_ecommerce_csvs, uci_online_retail_csv

def _fx_text(first: date, last: date, rates: dict) -> str:
    "Rates on the 1st and 15th of each month only: the other days take the latest earlier rate (a warn rule)."
    out, d = ["date,currency,rate_to_usd"], first
    while d <= last:
        if d.day in (1, 15): out += [f"{d},{cur},{rate(d)}" for cur, rate in rates.items()]
        d += timedelta(days=1)
    return "\n".join(out) + "\n"

def _check_gold(spark, cfg, recs: dict, fx: dict):
    "Silver and gold against the oracle's records (all days so far)."
    t = cfg.tables
    oracle.to_usd(recs.values(), fx)
    silver = spark.table(t.orders_cleaned).collect()
    assert len(silver) == len(recs)
    assert Counter(r.source_system for r in silver) == Counter(r["source"] for r in recs.values())
    assert sum(r.net_amount_usd for r in silver) == sum(r["net_usd"] for r in recs.values())
    assert (sum(r.is_return for r in silver), sum(r.is_non_product for r in silver), sum(r.customer_id is None for r in silver)) == \
           (sum(r["is_return"] for r in recs.values()), sum(r["non_product"] for r in recs.values()),
            sum(r["customer_id"] is None for r in recs.values()))
    exp = oracle.reporting_metrics(recs.values())
    got = {(r.order_date, r.product_category): r for r in spark.table(t.sales_metrics).collect()}
    assert set(got) == set(exp)
    for k, e in exp.items():
        assert {c: got[k][c] for c in e} == e, k
    exp_cur = oracle.by_currency_metrics(recs.values())
    got_cur = {(r.order_date, r.currency, r.product_category): r for r in spark.table(t.sales_metrics_by_currency).collect()}
    assert set(got_cur) == set(exp_cur)
    for k, e in exp_cur.items():
        assert {c: got_cur[k][c] for c in e} == e, k
    clv = {(r.source_system, r.customer_id): (r.lifetime_orders, r.lifetime_net_revenue) for r in spark.table(t.customer_lifetime_value).collect()}
    assert clv == oracle.clv_by_source(recs.values())
    assert {r.reporting_currency for r in spark.table(t.customer_lifetime_value).collect()} == {"USD"}
    return exp, exp_cur

def _kaggle_recs(path, d: date) -> list:
    "The oracle's reading of a Kaggle export, with the fields of the other sources (an order is a customer's order time)."
    lines = oracle.read_file(str(path), d, path.read_bytes())
    for ln in lines:
        if ln.rec: ln.rec.update(key=("kaggle_ecommerce", ln.rec["customer_id"], ln.rec["ts"], ln.rec["product"]), source="kaggle_ecommerce",
                                 order_id=(ln.rec["customer_id"], ln.rec["ts"]), currency="USD", is_return=False, non_product=False)
    return lines

def test_three_currencies_on_one_day_add_up_only_in_the_reporting_currency(spark, clean_lakehouse, tmp_path):
    d = date(2011, 3, 2)                    # no rate of its own: the 1st's rate applies (a warn rule), to the cent in the oracle
    fx_text = _fx_text(date(2011, 2, 1), date(2011, 3, 31), {"GBP": lambda d: "1.6150" if d.month == 3 else "1.6120",
                                                            "INR": lambda d: "0.022150"})
    (tmp_path/"reference").mkdir()
    (tmp_path/"reference/fx_rates.csv").write_text(fx_text)
    cfg = PipelineConfig(source_root=str(tmp_path), warehouse=spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    folder = tmp_path/f"{d:%Y/%m/%d}"
    folder.mkdir(parents=True)
    (folder/"Online Retail.csv").write_text(uci_online_retail_csv(d, seed=5, invoices=40))
    heads, det = indian_ecommerce_csvs(d, seed=5, orders=15, payment_mode=True)
    det += "B-NOHEADER,100.00,10.00,1,Clothing,Stole,COD\r\n"   # its order's header is in no List of Orders
    (folder/"List of Orders.csv").write_text(heads, newline="")
    (folder/"Order Details.csv").write_text(det, newline="")
    generate(str(tmp_path), d, 1, rows_per_day=60, seed=5, messiness=CLEAN, seasonality=False, reference=False) # the USD shop
    s = run_quiet(spark, cfg, d)
    uci = oracle.read_uci(str(folder/"Online Retail.csv"), d, (folder/"Online Retail.csv").read_bytes())
    ind, blank = oracle.read_indian(str(folder/"List of Orders.csv"), str(folder/"Order Details.csv"), d,
                                    (folder/"List of Orders.csv").read_bytes(), (folder/"Order Details.csv").read_bytes())
    kaggle = _kaggle_recs(folder/f"orders_{d:%Y%m%d}.csv", d)
    lines = uci + ind + kaggle
    assert s.status == "succeeded", s
    assert s.blank_lines == blank == 3                            # the ",,,," rows of List of Orders: skipped and counted
    assert s.quarantined == sum(1 for ln in lines if ln.rule) == s.quarantined_by_rule["order_header_missing"] == 1
    assert s.warnings_by_rule["fx_rate_fallback"] == len(uci + ind) - 1 # the USD lines need no rate
    recs = oracle.latest_by_key(lines)
    assert s.order_lines == len(recs) and s.duplicates > 0        # the UCI export repeats a few lines exactly
    assert any(r["is_return"] for r in recs.values()) and any(r["non_product"] for r in recs.values())
    assert any(r["customer_id"] is None for r in recs.values())
    exp, exp_cur = _check_gold(spark, cfg, recs, oracle.read_fx(fx_text))
    assert {k[1] for k in exp} >= {"Clothing", "Electronics", "Furniture", "unknown", "ALL"}
    assert {k[1] for k in exp_cur if k[0] == d} == {"USD", "GBP", "INR"} # three currencies on the same order date ...
    usd = {k: sum((r["net_usd"] for r in recs.values() if r["order_date"] == k and not r["non_product"]), oracle.Decimal("0.00"))
           for k in {r["order_date"] for r in recs.values()}}
    assert exp[(d, "ALL")]["net_revenue"] == usd[d] != sum(exp_cur[(d, c, "ALL")]["net_revenue"] for c in ("USD", "GBP", "INR"))
    # ... and the dashboard's headline figures are those of the reporting currency
    from ecom_pipeline.dashboard import dataset_frame
    daily = dataset_frame(spark, "daily_sales", cfg.catalog).set_index("order_date")
    assert daily.loc[d, "net_revenue"] == usd[d] and daily.loc[d, "avg_order_value"] == exp[(d, "ALL")]["avg_order_value"]

@pytest.mark.slow   # 150 s: make slow-test (CI runs it next); the generated test above covers the same code in make test
def test_real_uci_and_indian_samples_match_independent_usd_totals(spark, clean_lakehouse, kaggle_dir, tmp_path):
    uci_src = kaggle_dir/"carrie1-ecommerce-data-uci-online-retail"/"OnlineRetail.sample30k.csv"
    v1, v2 = kaggle_dir/"benroshan-ecommerce-data"/"v1", kaggle_dir/"benroshan-ecommerce-data"/"v2"
    fx_text = _fx_text(date(2010, 11, 1), date(2019, 3, 31),
                       {"GBP": lambda d: f"1.{5600 + d.month * 17 + d.year % 10:04d}", "INR": lambda d: f"0.01{4000 + d.month * 31:04d}"})
    (tmp_path/"reference").mkdir()
    (tmp_path/"reference/fx_rates.csv").write_text(fx_text)
    cfg = PipelineConfig(source_root=str(tmp_path), warehouse=spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    # day 1: the UCI sample and the first Indian version; day 2: the second Indian version (same orders, PaymentMode added)
    days = {date(2019, 4, 1): [(uci_src, "OnlineRetail.csv"), (v1/"List of Orders.csv", "List of Orders.csv"),
                               (v1/"Order Details.csv", "Order Details.csv")],
            date(2019, 4, 2): [(v2/"Orders.csv", "Orders.csv"), (v2/"Details.csv", "Details.csv")]}
    lines = []
    for d, files in days.items():
        folder = tmp_path/f"{d:%Y/%m/%d}"
        folder.mkdir(parents=True)
        for src, name in files: shutil.copy(src, folder/name)
        s = run_quiet(spark, cfg, d)
        assert s.status == "succeeded", s
        if d.day == 1:
            uci = oracle.read_uci(str(folder/"OnlineRetail.csv"), d, uci_src.read_bytes())
            ind, blank = oracle.read_indian(str(folder/"List of Orders.csv"), str(folder/"Order Details.csv"), d,
                                            (folder/"List of Orders.csv").read_bytes(), (folder/"Order Details.csv").read_bytes())
            assert (len(uci), len(ind), blank) == (30000, 1500, 60)     # SOURCE.txt: 30,000 UCI rows; 1,500 details; 60 ",,,," rows
            assert s.blank_lines == 60
            day = uci + ind
        else:
            day, blank = oracle.read_indian(str(folder/"Orders.csv"), str(folder/"Details.csv"), d,
                                            (folder/"Orders.csv").read_bytes(), (folder/"Details.csv").read_bytes())
        lines += day
        assert s.quarantined == sum(1 for ln in day if ln.rule)
        assert s.order_lines == len(oracle.latest_by_key(day))
    recs = oracle.latest_by_key(lines)
    by_source = Counter(r["source"] for r in recs.values())
    # v2 re-sends v1's orders: 1,402 of its 1,500 lines are v1's again (same natural key: superseded, not added); 98 differ in a value
    assert 1500 < by_source["indian_ecommerce"] <= 1598 and by_source["uci_online_retail"] < 30000
    _check_gold(spark, cfg, recs, oracle.read_fx(fx_text))

def test_another_reporting_currency_converts_each_line_at_its_dates_rates(spark):
    "EUR as the reporting currency: each line's amount × its rate to USD ÷ the euro's rate of its order date, half up, then summed."
    from decimal import Decimal as D, ROUND_HALF_UP
    from ecom_pipeline.gold import sales_metrics
    from ecom_pipeline.reference import fx_calendar
    d1, d2 = date(2024, 5, 1), date(2024, 5, 2)
    eur = {d1: D("1.0750"), d2: D("1.0810")}
    # (order date, order, category, net, currency, rate to USD): a euro line, a pound line, a rupee line and a dollar line each day
    lines = [(d1, "o1", "Fashion", D("19.99"), "EUR", eur[d1]), (d1, "o2", "Fashion", D("12.35"), "GBP", D("1.2533")),
             (d1, "o3", "Home", D("999.00"), "INR", D("0.011987")), (d1, "o4", "Home", D("7.05"), "USD", D("1")),
             (d2, "o5", "Fashion", D("5.55"), "EUR", eur[d2]), (d2, "o6", "Home", D("40.10"), "GBP", D("1.2541")),
             (d2, "o7", "Home", D("1500.00"), "INR", D("0.011991")), (d2, "o8", "Fashion", D("0.99"), "USD", D("1"))]
    frame = spark.createDataFrame(
        [(d, o, "c" + o, c, 1, net, D(0), net, D(0), cur, rate, False, False, False) for d, o, c, net, cur, rate in lines],
        "order_date date, order_id string, customer_id string, product_category string, quantity int, gross_amount decimal(18,2), "
        "discount_amount decimal(18,2), net_amount decimal(18,2), profit_amount decimal(18,2), currency string, "
        "fx_rate_to_usd decimal(18,10), is_promo boolean, is_return boolean, is_non_product boolean")
    rates = fx_calendar(spark.createDataFrame([(d, "EUR", r) for d, r in eur.items()], "rate_date date, currency string, rate_to_usd decimal(18,10)"))
    got = {(r.order_date, r.product_category): (r.reporting_currency, r.net_revenue) for r in sales_metrics(frame, "EUR", rates).collect()}
    in_eur = lambda net, rate, d: (net * rate / eur[d]).quantize(D("0.01"), ROUND_HALF_UP)
    exp = {}
    for d, _o, c, net, _cur, rate in lines:
        for k in ((d, c), (d, "ALL")): exp[k] = exp.get(k, D("0.00")) + in_eur(net, rate, d)
    assert got == {k: ("EUR", v) for k, v in exp.items()}
    assert exp[(d1, "ALL")] == D("19.99") + D("14.40") + D("11.14") + D("6.56") # the euro line stays as it is
