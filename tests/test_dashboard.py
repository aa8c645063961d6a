"""The dashboard over gold built from generated data: every dataset of the committed .lvdash.json answers the fields its
widgets reference, and the local HTML rendering shows, in headless Chromium, charts with data and counters equal to
figures computed from silver in plain Python."""
import json, re, subprocess, sys
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
import pytest
from conftest import ROOT, run_quiet

DAYS = [date(2018, 5, 1), date(2018, 5, 2)]
ARTIFACTS = ROOT/"test-artifacts"
LVDASH = ROOT/"dashboards"/"sales_overview.lvdash.json"

@pytest.fixture(scope="module")
def gold(spark, tmp_path_factory):
    "Three generated days run through the pipeline into the session's warehouse; returns silver's rows."
    from ecom_pipeline.config import SCHEMAS, PipelineConfig
    from ecom_pipeline.sample_data import generate
    for sch in SCHEMAS: spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.{sch} CASCADE")
    root = tmp_path_factory.mktemp("dash-landing")
    generate(str(root), DAYS[0], len(DAYS), rows_per_day=300, seed=5)
    cfg = PipelineConfig(source_root=str(root), warehouse=None)
    for d in DAYS: run_quiet(spark, cfg, d)
    from ecom_pipeline.clv import score_customers
    score_customers(spark, cfg.tables, model="historical", log=lambda m: None) # RFM and value columns for the Customers page
    return cfg, spark.table(cfg.tables.orders_cleaned).select("order_date", "order_id", "customer_id", "net_amount").collect()

def expected_counters(silver, day=None) -> dict:
    "Net revenue, orders, average order value and customers from silver lines, in Decimal."
    rows = [r for r in silver if day is None or r.order_date == day]
    net = sum((r.net_amount for r in rows), Decimal("0.00"))
    orders = len({r.order_id for r in rows})
    return {"net_revenue": net, "orders": Decimal(orders), "customers": Decimal(len({r.customer_id for r in rows})),
            "avg_order_value": (net / orders).quantize(Decimal("0.01"), ROUND_HALF_UP)}

def test_every_lakeview_dataset_answers_the_fields_its_widgets_reference(spark, gold):
    doc = json.loads(LVDASH.read_text())
    sql_files = {p.stem: p.read_text().strip() + "\n" for p in (ROOT/"dashboards"/"queries").glob("*.sql")}
    datasets = {d["name"]: "".join(d["queryLines"]) for d in doc["datasets"]}
    # the .lvdash.json holds exactly the SQL files, with the catalog left to the bundle's dataset_catalog
    assert datasets == {n: s.replace("{catalog}.", "") for n, s in sql_files.items()}
    columns = {n: set(spark.sql(sql).columns) for n, sql in datasets.items()}     # resolves in the current catalog
    measures = {d["name"]: {c["displayName"]: c["expression"] for c in d.get("columns", [])} for d in doc["datasets"]}
    def expand(ds, expr):   # a custom calculation is used as MEASURE(`name`) and is an expression over the dataset's columns
        return re.sub(r"MEASURE\(`([^`]+)`\)", lambda m: "(" + measures[ds][m.group(1)] + ")", expr)
    widgets = 0
    for page in doc["pages"]:
        for item in page["layout"]:
            w = item["widget"]; spec = w["spec"]; widgets += 1
            names = set()
            for q in w["queries"]:
                query, ds = q["query"], q["query"]["datasetName"]
                for f in query["fields"]:
                    used = set(re.findall(r"`([^`]+)`", expand(ds, f["expression"]))) - {"associative_filter_predicate_group"}
                    assert used <= columns[ds], (w["name"], f, columns[ds])
                    names.add(f["name"])
                if spec["widgetType"].startswith("filter-"): continue
                plain = [f["expression"] for f in query["fields"] if "(" not in f["expression"]]
                sql = ("SELECT " + ", ".join(f"{expand(ds, f['expression'])} AS `{f['name']}`" for f in query["fields"]) + f" FROM ({datasets[ds]}) AS d"
                       + (" GROUP BY " + ", ".join(plain) if plain and not query["disaggregated"] else ""))
                got = spark.sql(sql)
                assert set(got.columns) == {f["name"] for f in query["fields"]}
                if ds not in ("anomalies",): assert got.count() > 0, (w["name"], "no rows")
            enc = spec["encodings"]
            refs = ([c["fieldName"] for c in enc.get("columns", [])] + [f["fieldName"] for f in enc.get("fields", [])]
                    + [e["fieldName"] for k, e in enc.items() if isinstance(e, dict) and "fieldName" in e]
                    + [f["fieldName"] for e in enc.values() if isinstance(e, dict) for f in e.get("fields", [])])
            assert refs and set(refs) <= names, (w["name"], refs, names)
    assert widgets == 17 and [p["displayName"] for p in doc["pages"]] == ["Sales", "Customers", "Data quality"]

def test_filters_narrow_the_counters_to_the_chosen_days(spark, gold, tmp_path):
    from ecom_pipeline.dashboard import render_dashboard
    cfg, silver = gold
    got = {w.widget.name: w.value for w in render_dashboard(spark, tmp_path/"d.html", date_from=DAYS[1], date_to=DAYS[1])
           if w.widget.kind == "counter"}
    assert got == expected_counters(silver, DAYS[1])

def chromium_driver(tmp_path):
    sys.path.insert(0, str(ROOT/"tools"))
    from browser import chromium_available, headless_chromium
    if not chromium_available():
        pytest.skip("no Chromium: `make test` installs Debian chromium + chromium-driver when it runs as root with apt; "
                    "otherwise install them to run this test")
    return headless_chromium(str(tmp_path/"chrome-profile"))

def test_rendered_dashboard_in_headless_chromium(spark, gold, tmp_path):
    from ecom_pipeline.dashboard import render_dashboard
    cfg, silver = gold
    page = tmp_path/"sales_dashboard.html"
    rendered = render_dashboard(spark, page)
    charts = [w.widget.name for w in rendered if w.widget.kind in ("line", "bar", "table") and w.rows > 0]
    empty = {w.widget.name for w in rendered if w.widget.kind in ("line", "bar", "table") and w.rows == 0}
    assert empty == ({"anomalies"} if spark.table(cfg.tables.name("logs", "anomalies")).count() == 0 else set())
    driver = chromium_driver(tmp_path)
    try:
        driver.get(page.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
        # plotly.js is embedded: no script is loaded from anywhere, so the file opens offline
        assert driver.execute_script("return [document.querySelectorAll('script[src], link[href]').length, typeof Plotly]") == [0, "object"]
        traces = driver.execute_script("""return Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => [gd.id,
            gd.data.map(t => t.type === 'table' ? t.cells.values[0].length : (t.x || []).filter(v => v !== null).length)])""")
        assert sorted(i for i, _ in traces) == sorted(f"chart-{n}" for n in charts)
        for i, points in traces: assert points and max(points) > 0, (i, points)
        shown = driver.execute_script("""return Object.fromEntries(Array.from(document.querySelectorAll('.counter')).map(c =>
            [c.id.slice(2), [c.querySelector('.value').dataset.value, c.querySelector('.value').textContent]]))""")
        exp = expected_counters(silver)
        gold_all = spark.table(cfg.tables.sales_metrics).where("product_category = 'ALL'").collect()
        assert exp["net_revenue"] == sum((r.net_revenue for r in gold_all), Decimal("0.00"))   # silver and gold agree
        assert exp["orders"] == sum(r.orders for r in gold_all)
        assert {k: Decimal(v) for k, (v, _) in shown.items()} == exp
        assert {k: Decimal(t.replace(",", "")) for k, (_, t) in shown.items()} == exp
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS/"dashboard.png"))
        assert (ARTIFACTS/"dashboard.png").stat().st_size > 10_000
    finally:
        driver.quit()

def test_dashboard_command_names_a_missing_warehouse(tmp_path):
    r = subprocess.run([str(Path(sys.executable).parent/"ecom-pipeline"), "dashboard", "--warehouse", str(tmp_path/"nowhere")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip() == (f"ecom-pipeline dashboard: FAILED: FileNotFoundError: no local warehouse at {tmp_path/'nowhere'}: "
                                "run `make demo` or `ecom-pipeline run` first, or pass --warehouse DIR")
