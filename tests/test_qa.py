"""QA sign-off: a candidate rebuilt from production's bronze, diffed against production. A candidate built with the same
rules must show no difference; one with a stricter discount rule must show exactly the lines that moved to quarantine and
each order date's change of net revenue, both computed here in plain Python from the landing files (oracle.py)."""
import dataclasses, functools, json, re, subprocess, sys
from datetime import date, timedelta
from decimal import Decimal
import oracle
import pytest
from conftest import ROOT
from ecom_pipeline.alerts import AlertConfig
from ecom_pipeline.config import SCHEMAS, PipelineConfig, Tables
from ecom_pipeline.sample_data import Messiness, generate

DAYS = [date(2018, 9, 1) + timedelta(days=i) for i in range(3)]
STRICT = Decimal("0.4") # the candidate's rule: a discount above 40% is quarantined (the generator writes 0.1 .. 0.5)
COMMIT = "0123456789abcdef0123456789abcdef01234567"

def _reset(spark):
    for sch in SCHEMAS: spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.{sch} CASCADE")

@pytest.fixture(scope="module")
def qa(spark, tmp_path_factory, ):
    import pytest as _pt
    from ecom_pipeline import quality, silver_stage
    from ecom_pipeline.pipeline import catch_up, rebuild
    from ecom_pipeline.qa import diff
    tmp = tmp_path_factory.mktemp("qa")
    root = tmp/"landing"
    generate(str(root), DAYS[0], len(DAYS), rows_per_day=150, seed=26,
             messiness=Messiness(duplicate_rate=0.03, correction_rate=0.05, malformed_rate=0.02))
    wh = str(spark.conf.get("spark.sql.warehouse.dir")).removeprefix("file:")
    # days over 5% stay out of silver whole: with the stricter rule every day would, so both sides accept up to 50%
    cfg = PipelineConfig(source_root=str(root), warehouse=wh, max_quarantine_rate=0.5)
    quiet = lambda m: None
    _reset(spark)
    catch_up(spark, cfg, DAYS, log=quiet, alerts=AlertConfig())
    base = Tables("spark_catalog")
    same = Tables("spark_catalog", location=str(tmp/"same"), inputs=base)
    rebuild(spark, cfg, into=same, log=quiet)
    strict_rules = tuple(dataclasses.replace(r, failed=f"discount_rate IS NULL OR discount_rate < 0 OR discount_rate > {STRICT}")
                         if r.name == "discount_out_of_range" else r for r in quality.ORDER_RULES)
    strict = Tables("spark_catalog", location=str(tmp/"strict"), inputs=base)
    with _pt.MonkeyPatch.context() as mp: # the candidate's code: the same pipeline with the stricter rule
        mp.setattr(silver_stage, "check_rules", functools.partial(quality.check_rules, rules=strict_rules))
        rebuild(spark, cfg, into=strict, log=quiet)
    from ecom_pipeline.qa import lakehouse
    d_same = diff(spark, base, lakehouse(str(tmp/"same")), commit=COMMIT, sample=10_000)
    d_strict = diff(spark, base, lakehouse(str(tmp/"strict")), commit=COMMIT, sample=10_000,
                    max_net_revenue_change_pct=100.0, max_changed_share=1.0)
    return dict(root=root, tmp=tmp, wh=wh, same=d_same, strict=d_strict, base=base)

def _lines(root, max_discount=Decimal(1)):
    out = []
    for d in DAYS:
        for f in sorted((root/f"{d:%Y/%m/%d}").glob("*.csv")):
            out += oracle.read_file(str(f), d, f.read_bytes(), max_discount=max_discount)
    return out

def _by_table(d):
    return {x["table"]: x for x in d.tables}

def test_a_candidate_with_no_change_shows_no_difference(qa):
    d = qa["same"]
    t = _by_table(d)
    assert list(t) == ["orders_cleaned", "products", "customers", "sales_metrics", "sales_metrics_by_currency",
                       "customer_lifetime_value", "daily_customer_sales", "promotion_performance", "etl_errors"]
    for name, x in t.items():
        assert (x["only_base"], x["only_candidate"], x["changed"], x["missing"]) == (0, 0, 0, None), (name, x["samples"])
        assert x["schema"] == {"added": [], "removed": [], "retyped": []}, name
        assert x["base_rows"] == x["candidate_rows"]
    assert t["orders_cleaned"]["base_rows"] > 300 and t["etl_errors"]["base_rows"] > 0 # something was compared
    assert d.gold == [] and d.gold_rows_total == 0 and all(q["delta"] == 0 for q in d.quarantine)
    assert d.verdict == "pass" and d.largest_day_change_pct == 0.0

def test_a_stricter_discount_rule_shows_exactly_the_lines_that_moved_and_the_revenue_deltas(qa):
    d = qa["strict"]
    loose, strict = _lines(qa["root"]), _lines(qa["root"], STRICT)
    moved = {(a.source_file, a.line_number) for a, b in zip(loose, strict) if a.rule is None and b.rule is not None}
    assert moved and all(b.rule == "discount_out_of_range" for a, b in zip(loose, strict) if a.rule is None and b.rule)
    e = _by_table(d)["etl_errors"]
    got = {(r["source_file"], r["line_number"]) for r in e["samples"]["only_candidate"]}
    assert e["only_candidate"] == len(moved) and got == moved
    assert e["only_base"] == 0 # no line left quarantine
    assert {r["rule"] for r in e["samples"]["only_candidate"]} == {"discount_out_of_range"}
    q = {x["rule"]: x["delta"] for x in d.quarantine}
    assert q["discount_out_of_range"] == len(moved) and sum(q.values()) == len(moved)
    # each order date's net revenue, all categories: candidate - base, from the landing files
    net = lambda lines: {k[0]: v["net_revenue"] for k, v in oracle.sales_metrics(oracle.latest(lines).values()).items() if k[1] == "ALL"}
    b, c = net(loose), net(strict)
    want = {day: c.get(day, Decimal("0.00")) - b.get(day, Decimal("0.00")) for day in set(b) | set(c)}
    want = {day: v for day, v in want.items() if v}
    have = {date.fromisoformat(g["order_date"]): Decimal(g["net_revenue_delta"]) for g in d.gold if g["is_all_categories"]}
    assert have == want and len(want) >= 3
    worst = max(abs(v) / b[day] * 100 for day, v in want.items() if b.get(day))
    assert abs(d.largest_day_change_pct - float(worst)) < 0.01
    assert d.verdict == "pass" # within the thresholds this diff was given (100%, all rows)

def _failing(qa):
    "The stricter candidate's diff judged against the default thresholds (1% of a day's net revenue, 1% of a table's keys)."
    from ecom_pipeline.qa import judge
    return judge(dataclasses.replace(qa["strict"], max_net_revenue_change_pct=1.0, max_changed_share=0.01))

def test_thresholds_decide_the_verdict_and_the_exit_code(qa, spark):
    from ecom_pipeline.cli import main
    from ecom_pipeline.qa import diff
    d = _failing(qa)
    assert d.verdict == "fail" and any("net revenue changed" in f for f in d.failures) and any("keys differ" in f for f in d.failures)
    assert qa["same"].verdict == "pass" and not qa["same"].failures
    with pytest.raises(FileNotFoundError, match="the candidate has no silver table"): # a catalog that is not there: said at once
        diff(spark, qa["base"], Tables("no_such_catalog"))
    # the CLI on two warehouse folders, default thresholds: the one-screen summary, the report's JSON, exit 1
    out = qa["tmp"]/"reports"
    args = ["diff", "--base", str(qa["tmp"]/"same"), "--candidate", str(qa["tmp"]/"strict"), "--no-notebook", "--warehouse", qa["wh"]]
    assert main(args + ["--report-dir", str(out/"a")]) == 1
    got = json.loads((out/"a"/"qa_diff.json").read_text())
    assert got["verdict"] == "fail" and got["largest_day_change_pct"] == pytest.approx(qa["strict"].largest_day_change_pct)

def test_the_report_notebook_renders_the_diff_to_html(qa, tmp_path):
    from ecom_pipeline.qa import write_report
    js = write_report(qa["strict"], tmp_path/"report")
    nb = json.loads((tmp_path/"report"/"qa_diff.ipynb").read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    html = (tmp_path/"report"/"qa_diff.html").read_text()
    for title in ("Change of net revenue per order date", "Rows that differ per table", "Quarantined lines per rule", "verdict: PASS"):
        assert title in html, title
    assert not re.search(r"<script[^>]*src=[^>]*plotly", html) and html.count("plotly.js v") == 1 # plotly.js inlined once: offline
    assert json.loads(js.read_text())["git_commit"] == COMMIT

def test_signoff_records_who_and_refuses_what_it_should(qa, spark, tmp_path):
    from ecom_pipeline.cli import main
    from ecom_pipeline.qa import SignoffRefused, signed_off, signoff, write_report
    t = qa["base"]
    rep = write_report(_failing(qa), tmp_path/"failing", execute=False).parent
    with pytest.raises(SignoffRefused, match="FAIL"): signoff(spark, t, rep, "Ana Lima")
    with pytest.raises(ValueError, match="--reason"): signoff(spark, t, rep, "Ana Lima", accept=True)
    dirty = write_report(dataclasses.replace(qa["same"], git_commit=COMMIT + "+dirty"), tmp_path/"dirty", execute=False).parent
    with pytest.raises(SignoffRefused, match="uncommitted"): signoff(spark, t, dirty, "Ana Lima")
    assert signed_off(spark, t, COMMIT) is None
    assert main(["signoff", "--check", "--commit", COMMIT, "--warehouse", qa["wh"]]) == 1
    row = signoff(spark, t, rep, "Ana Lima", accept=True, reason="the stricter discount rule is the change")
    stored = spark.table("spark_catalog.logs.qa_signoffs").collect()
    assert len(stored) == 1 and stored[0].signed_by == "Ana Lima" and stored[0].git_commit == COMMIT
    assert stored[0].verdict == "fail" and stored[0].accepted and stored[0].report_sha256 == row["report_sha256"]
    import hashlib
    assert row["report_sha256"] == hashlib.sha256((rep/"qa_diff.json").read_bytes()).hexdigest()
    assert main(["signoff", "--check", "--commit", COMMIT, "--warehouse", qa["wh"]]) == 0
    assert main(["signoff", "--check", "--commit", "f" * 40, "--warehouse", qa["wh"]]) == 1 # another commit: not signed

FAKE_CLI = """#!/usr/bin/env python3
# a stand-in for the Databricks CLI: logs its arguments, answers the sign-off query from $FAKE_SIGNOFF
import json, os, sys
open(os.environ["FAKE_LOG"], "a").write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:3] == ["warehouses", "list"]: print(json.dumps([{"id": "wh-1", "name": "ecom_pipeline"}]))
elif sys.argv[1:3] == ["api", "post"]:
    row = json.loads(os.environ.get("FAKE_SIGNOFF", "null"))
    cols = [{"name": n} for n in ("signed_by", "signed_at", "verdict", "accepted", "report")]
    print(json.dumps({"status": {"state": "SUCCEEDED"}, "manifest": {"schema": {"columns": cols}},
                      "result": {"data_array": [row] if row else []}}))
"""

def _fake_databricks(tmp_path, monkeypatch, signoff_row):
    bin_dir = tmp_path/"bin"; bin_dir.mkdir(exist_ok=True)
    (bin_dir/"databricks").write_text(FAKE_CLI); (bin_dir/"databricks").chmod(0o755)
    log = tmp_path/"databricks.log"; log.write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log)); monkeypatch.setenv("FAKE_SIGNOFF", json.dumps(signoff_row))
    return lambda: [json.loads(l) for l in log.read_text().splitlines()]

def test_require_signoff_queries_the_commit_as_a_parameter(tmp_path, monkeypatch):
    calls = _fake_databricks(tmp_path, monkeypatch, None)
    tool = [sys.executable, str(ROOT/"tools"/"require_signoff.py")]
    r = subprocess.run(tool + ["--commit", COMMIT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "has no QA sign-off in ecommerce_catalog.logs.qa_signoffs" in r.stderr
    post = next(c for c in calls() if c[:2] == ["api", "post"])
    payload = json.loads(post[post.index("--json") + 1])
    assert payload["warehouse_id"] == "wh-1" and COMMIT not in payload["statement"] # looked up by name; the commit is a parameter
    assert payload["parameters"] == [{"name": "commit", "value": COMMIT, "type": "STRING"}]
    monkeypatch.setenv("FAKE_SIGNOFF", json.dumps(["Ana Lima", "2026-12-04 10:00:00", "pass", "false", "runs/qa/x"]))
    r = subprocess.run(tool + ["--commit", COMMIT, "--warehouse-id", "wh-9"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "signed off by Ana Lima" in r.stdout, r.stderr
    r = subprocess.run(tool + ["--commit", "HEAD; DROP TABLE x"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a full commit id" in r.stderr

def test_make_deploy_prod_refuses_a_commit_without_signoff(tmp_path, monkeypatch):
    "The Makefile's deploy-prod in a repository of its own: no sign-off, no `bundle deploy`; a sign-off, the deploy."
    import shutil
    calls = _fake_databricks(tmp_path, monkeypatch, None)
    repo = tmp_path/"repo"; (repo/"tools").mkdir(parents=True)
    shutil.copy(ROOT/"Makefile", repo/"Makefile"); shutil.copy(ROOT/"tools"/"require_signoff.py", repo/"tools")
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)
    git("init", "-q"); git("add", "."); git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    make = lambda: subprocess.run(["make", "-s", "deploy-prod", f"PYTHON={sys.executable}"], cwd=repo, capture_output=True, text=True, timeout=120)
    r = make()
    assert r.returncode != 0 and "has no QA sign-off" in r.stderr
    assert not [c for c in calls() if c[:2] == ["bundle", "deploy"]]
    monkeypatch.setenv("FAKE_SIGNOFF", json.dumps(["Ana Lima", "2026-12-04 10:00:00", "fail", "true", "runs/qa/x"]))
    r = make()
    assert r.returncode == 0, r.stderr
    assert ["bundle", "deploy", "-t", "prod"] in calls()
