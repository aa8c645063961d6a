"""The plotly report notebook (nbs/reports/sales_report.ipynb) executed by papermill, in a kernel process of its own,
against gold that this test's session built from generated data; its figures must show the figures an independent
reading of the landing files gives."""
import json
from datetime import date
from pathlib import Path
import pytest
import oracle
from conftest import ROOT, run_quiet

pytestmark = pytest.mark.slow
DAYS = [date(2018, 6, 1), date(2018, 6, 2), date(2018, 6, 3)] # the generator's first promotions start on the third day

def test_sales_report_runs_under_papermill_and_plots_gold(spark, clean_lakehouse, tmp_path):
    import papermill as pm
    from ecom_pipeline.config import PipelineConfig
    from ecom_pipeline.sample_data import generate
    root, wh = tmp_path/"landing", Path(spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    generate(str(root), DAYS[0], len(DAYS), rows_per_day=250, seed=8)
    # built in this session (a new process would start Spark once more); the kernel finds the tables in the warehouse folder
    cfg = PipelineConfig(source_root=str(root), warehouse=str(wh))
    for d in DAYS: assert run_quiet(spark, cfg, d).status == "succeeded"

    out = tmp_path/"sales_report.out.ipynb"
    pm.execute_notebook(str(ROOT/"nbs"/"reports"/"sales_report.ipynb"), str(out), parameters={"warehouse": str(wh)},
                        kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    nb = json.loads(out.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and f"warehouse = \"{wh}\"" in "".join(injected[0]["source"])
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    figures = [o["data"]["application/vnd.plotly.v1+json"] for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    titles = [f["layout"]["title"]["text"] for f in figures]
    assert titles == ["Daily net revenue", "Net revenue by category", "Orders per day", "Average order value",
                      "Distribution of customer lifetime value", "Promotions against their baseline"]

    lines = []
    for d in DAYS:
        for f in sorted((root/f"{d:%Y/%m/%d}").glob("*.csv")):
            lines += oracle.read_file(str(f), d, f.read_bytes())
    recs = oracle.latest(lines).values()
    exp = {k[0].isoformat(): v for k, v in oracle.sales_metrics(recs).items() if k[1] == "ALL"}
    trend, orders, aov, clv = figures[0]["data"][0], figures[2]["data"][0], figures[3]["data"][0], figures[4]["data"][0]
    assert dict(zip(trend["x"], trend["y"])) == {k: float(v["net_revenue"]) for k, v in exp.items()}
    assert dict(zip(orders["x"], orders["y"])) == {k: v["orders"] for k, v in exp.items()}
    assert dict(zip(aov["x"], aov["y"])) == {k: float(v["avg_order_value"]) for k, v in exp.items()}
    promos = oracle.read_promotions((root/"reference"/"promotions.csv").read_text())
    oracle.flag_promotions(recs, promos)
    perf = oracle.promotion_performance(recs, promos)
    assert figures[5]["data"][0]["x"] == [f"{p} day {(d - DAYS[2]).days + 1}" for p, d in sorted(perf)] and len(perf) == 1
    assert figures[5]["data"][0]["y"] == [float(perf[k][0]) for k in sorted(perf)]
    assert sorted(clv["x"]) == sorted(float(v["lifetime_net_revenue"]) for v in oracle.customer_lifetime_value(recs).values())
