"""Generated days land on a real S3 endpoint (moto) and reach gold: the first by the daily run, the other three as one
catch-up over S3 (that both ways leave the same state is `test_catchup.py`'s), compared with plain-Python totals."""
import json
from datetime import date, timedelta
from collections import Counter, defaultdict
from pathlib import Path
import oracle
import pandas as pd
from conftest import run_quiet
from ecom_pipeline.alerts import AlertConfig
from ecom_pipeline.clv import HISTORICAL_METHOD, MODEL_METHOD, predict_clv, score_customers
from ecom_pipeline.config import PipelineConfig
from ecom_pipeline.pipeline import catch_up
from ecom_pipeline.sample_data import Messiness, generate

def _oracle_from_s3(client, bucket, prefix, days):
    lines = []
    for d in days:
        objs = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{d:%Y/%m/%d}/").get("Contents", [])
        for o in objs:
            if not o["Key"].endswith(".csv"): continue
            data = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            lines += oracle.read_file(f"s3://{bucket}/{o['Key']}", d, data)
    return lines

def _stats_columns(spark, table) -> list[set]:
    "For each data file of the table (from its Delta log), the columns whose min and max the log keeps."
    log = Path(spark.sql(f"DESCRIBE DETAIL {table}").first().location.removeprefix("file:"))/"_delta_log"
    adds = [json.loads(l)["add"] for f in sorted(log.glob("*.json")) for l in open(f) if l.startswith('{"add"')]
    return [set(json.loads(a["stats"]).get("minValues", {})) for a in adds]

def test_generated_days_through_s3_match_independent_totals(spark, clean_lakehouse, s3):
    client, bucket = s3
    root = f"s3://{bucket}/raw/ecommerce_sales"
    days = [date(2018, 3, 1) + timedelta(days=i) for i in range(4)]
    gen = generate(root, days[0], len(days), rows_per_day=250, seed=11, client=client,
                   messiness=Messiness(duplicate_rate=0.03, correction_rate=0.04, malformed_rate=0.04, late_rate=0.05))
    client.put_object(Bucket=bucket, Key=f"raw/ecommerce_sales/{days[0]:%Y/%m/%d}/_SUCCESS", Body=b"")
    assert gen.duplicates and gen.corrections and sum(gen.malformed.values())

    cfg = PipelineConfig(source_root=root, warehouse=str(spark.conf.get("spark.sql.warehouse.dir")).removeprefix("file:"))
    summaries = [run_quiet(spark, cfg, days[0], client=client)]
    summaries += catch_up(spark, cfg, days[1:], client=client, log=lambda m: None, alerts=AlertConfig())
    assert summaries[0].ignored == ["_SUCCESS"]
    assert [(s.run_date, s.status, s.batch is not None) for s in summaries] == [(d, "succeeded", i > 0) for i, d in enumerate(days)]
    assert sum(s.lines_read for s in summaries) == gen.lines

    lines = _oracle_from_s3(client, bucket, "raw/ecommerce_sales", days)
    t = cfg.tables
    # quarantine: the same lines, for the same first rule
    expected_q = Counter(l.rule for l in lines if l.rule)
    got_q = Counter(r.rule for r in spark.table(t.etl_errors).select("rule").collect())
    assert got_q == expected_q and sum(expected_q.values()) > 0
    # silver: one row per order line key, latest version
    recs = oracle.latest(lines)
    assert spark.table(t.orders_cleaned).count() == len(recs)
    # file statistics on the columns runs filter on, not Delta's default of the first 32 columns
    for table, want in ((t.order_transactions, {"landing_date", "source_system", "source_file", "ingested_at"}),
                        (t.orders_cleaned, {"order_line_key", "source_system", "order_ts", "order_date", "customer_id", "landing_date"})):
        files = _stats_columns(spark, table)
        assert files and all(f <= want for f in files) and set().union(*files) == want, (table, files)
    # gold sales_metrics: every row and every figure
    exp = oracle.sales_metrics(recs.values())
    got = {(r.order_date, r.product_category): r.asDict() for r in spark.table(t.sales_metrics).collect()}
    assert set(got) == set(exp)
    for k, e in exp.items():
        g = {c: got[k][c] for c in e}
        assert g == e, (k, g, e)
    # gold customer_lifetime_value
    exp_clv = oracle.customer_lifetime_value(recs.values())
    got_clv = {r.customer_id: {c: r[c] for c in next(iter(exp_clv.values()))} for r in spark.table(t.customer_lifetime_value).collect()}
    assert got_clv == exp_clv
    # gold daily_customer_sales
    got_dcs = {(r.order_date, r.customer_id): (r.orders, r.net_revenue) for r in spark.table(t.daily_customer_sales).collect()}
    assert got_dcs == oracle.daily_customer_sales(recs.values())
    # promotions (the generator's reference file) and the USD figures, against the plain-Python reading
    text = client.get_object(Bucket=bucket, Key="raw/ecommerce_sales/reference/promotions.csv")["Body"].read().decode()
    promos = oracle.read_promotions(text)
    oracle.flag_promotions(recs.values(), promos)
    flagged = Counter(r["promo_id"] for r in recs.values() if r["promo_id"])
    assert dict(Counter(r.promo_id for r in spark.table(t.orders_cleaned).where("is_promo").collect())) == flagged and len(flagged) == 2
    exp_p = oracle.promo_metrics(recs.values())
    assert {k: {c: v[c] for c in ("net_revenue", "promo_net_revenue", "promo_orders")} for k, v in got.items()} == exp_p
    exp_pp = oracle.promotion_performance(recs.values(), promos)
    got_pp = {(r.promo_id, r.order_date): tuple(r)[2:] for r in spark.table(t.promotion_performance).select(
        "promo_id", "order_date", "scope_net_revenue", "promo_net_revenue", "promo_orders", "baseline_net_revenue",
        "baseline_days", "net_revenue_lift").collect()}
    assert set(got_pp) == set(exp_pp) and len(exp_pp) == 3
    for k, e in exp_pp.items():
        g = got_pp[k]
        assert g[:5] == e[:5] and (g[5] is None) == (e[5] is None) and abs((g[5] or 0) - (e[5] or 0)) < 1e-4, (k, g, e)
    # dimensions: products from the latest line of each product; customers type 2 as processed, and each line's key
    got_products = {r.product_name: r for r in spark.table(t.products).collect()}
    exp_products = oracle.products(recs.values())
    assert set(got_products) == set(exp_products)
    for name, (first, last, latest) in exp_products.items():
        g = got_products[name]
        assert (g.first_seen, g.last_seen, g.list_price_source) == (first, last, "latest_line"), name
        assert (g.product_category, g.list_price) in latest, (name, g, latest)
    exp_versions = oracle.customer_versions(lines, days)
    got_versions = defaultdict(list)
    for r in spark.table(t.customers).orderBy("valid_from").collect():
        got_versions[r.customer_id].append((r.login_type, r.device_type, r.valid_from, r.valid_to, r.is_current, r.customer_key))
    assert {c: [v[:4] for v in vs] for c, vs in got_versions.items()} == exp_versions
    assert all([v[4] for v in vs] == [False] * (len(vs) - 1) + [True] for vs in got_versions.values())
    assert sum(len(vs) > 1 for vs in exp_versions.values()) > 0 # some customer changed login or device type
    for r in spark.table(t.orders_cleaned).select("customer_id", "order_ts", "customer_key", "product_key", "product_name").collect():
        vs = got_versions[r.customer_id]
        valid = [v for v in vs if v[2] <= r.order_ts and (v[3] is None or r.order_ts < v[3])] or vs[:1]
        assert r.customer_key == valid[0][5], (r, vs)
    assert spark.table(t.orders_cleaned).join(spark.table(t.products), "product_key", "left_anti").count() == 0
    # predictive lifetime value (make demo and the job's score_customers task run it after the daily run): the customer
    # summary frame and the RFM quintiles against plain Python; the historical fallback to the cent; the model's
    # predictions as predict_clv makes them from the plain-Python summary frame
    as_of = max(r["order_date"] for r in recs.values())
    exp_summary = oracle.customer_summary(recs.values(), as_of)
    res = score_customers(spark, t, model="historical", log=lambda m: None)
    assert (res.as_of, res.customers, res.method) == (as_of, len(exp_summary), HISTORICAL_METHOD)
    scored = {r.customer_id: r for r in spark.table(t.customer_lifetime_value).collect()}
    assert {c: (g.recency_score, g.frequency_score, g.monetary_score) for c, g in scored.items()} == oracle.rfm(exp_summary)
    assert {c: g.predicted_clv_12m for c, g in scored.items()} == {c: s["historical_value_12m"] for c, s in exp_summary.items()}
    repeat = sum(s["frequency"] > 0 and s["monetary_value"] > 0 for s in exp_summary.values())
    assert repeat >= 30
    # four days of history cannot be trusted for a 12-month horizon: historical value, with the reason on every row
    res = score_customers(spark, t, min_repeat_customers=30, log=lambda m: None)
    assert (res.method, res.diagnostics["history_days"]) == (HISTORICAL_METHOD, (as_of - min(r["order_date"] for r in recs.values())).days + 1)
    assert {r.clv_method_reason for r in spark.table(t.customer_lifetime_value).collect()} == {res.reason} and "days of history" in res.reason
    # with the checks off, the model's predictions as predict_clv makes them from the plain-Python summary frame
    res = score_customers(spark, t, min_repeat_customers=30, log=lambda m: None, checks=False)
    assert (res.method, res.repeat_customers) == (MODEL_METHOD, repeat), res
    frame = pd.DataFrame([dict(customer_id=c, **s) for c, s in sorted(exp_summary.items())])
    exp_pred = predict_clv(frame, min_repeat_customers=30, checks=False).frame.set_index("customer_id")
    scored = {r.customer_id: r for r in spark.table(t.customer_lifetime_value).collect()}
    for c, g in scored.items():
        e = exp_pred.loc[c]
        assert g.clv_method == MODEL_METHOD and g.clv_as_of_date == as_of
        assert abs(float(g.predicted_clv_12m) - e.predicted_clv_12m) <= 0.01 + 1e-4 * e.predicted_clv_12m, (c, g, e)
        assert abs(g.predicted_purchases_12m - e.predicted_purchases_12m) <= 1e-4 * max(1, e.predicted_purchases_12m), (c, g, e)
    # scoring wrote only its columns: lifetime value is still the oracle's
    assert {c: {k: g[k] for k in next(iter(exp_clv.values()))} for c, g in scored.items()} == exp_clv
    # the printed figure: net revenue of the last run's dates
    last = summaries[-1]
    assert last.net_revenue == sum(exp[(d, "ALL")]["net_revenue"] for d in last.order_dates)
    # row accounting of every run
    for s in summaries:
        assert s.bronze_rows == s.quarantined + s.duplicates + s.order_lines
