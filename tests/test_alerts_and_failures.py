"""Failing loudly: quarantine threshold, no data, write conflicts; anomalies; one alert per run by SMTP (aiosmtpd) and SES (moto)."""
import uuid
from datetime import date, timedelta
import pytest, requests
from conftest import free_port
from test_rules_and_corrections import cfg_for, line, write
from ecom_pipeline.alerts import AlertConfig
from pyspark.sql import functions as F
from ecom_pipeline.pipeline import NoDataError, QuarantineRateExceeded, run_daily
from ecom_pipeline.quality import ORDER_RULES
from ecom_pipeline.sample_data import CLEAN, generate
from ecom_pipeline.spark import WriteConflictError

PASSWORD = "pw-SECRET-4711"
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS", "ignore:Session.login_data is deprecated")

@pytest.fixture()
def smtp_server():
    "A real SMTP server (aiosmtpd) on 127.0.0.1 that requires a login and keeps what it receives."
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
    class Inbox:
        def __init__(self): self.messages = []
        async def handle_DATA(self, server, session, envelope):
            from email import message_from_bytes, policy
            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default))); return "250 OK"
    def auth(server, session, envelope, mechanism, data):
        return AuthResult(success=isinstance(data, LoginPassword) and data.login == b"bot" and data.password == PASSWORD.encode())
    inbox, port = Inbox(), free_port()
    c = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=auth, auth_required=True, auth_require_tls=False)
    c.start()
    yield inbox, AlertConfig.from_env({"ECOM_SMTP_HOST": "127.0.0.1", "ECOM_SMTP_PORT": str(port), "ECOM_ALERT_EMAILS": "ops@shop.test",
                                       "ECOM_ALERT_FROM": "pipeline@shop.test", "ECOM_SMTP_USER": "bot", "ECOM_SMTP_PASSWORD": PASSWORD,
                                       "ECOM_SMTP_PLAINTEXT_LOGIN": "1"}) # the test's relay on 127.0.0.1 has no TLS
    c.stop()

@pytest.mark.slow # make slow-test: keeps make test under 15 minutes
def test_quarantine_rate_above_threshold_fails_with_one_smtp_alert(spark, clean_lakehouse, tmp_path, smtp_server, capsys):
    inbox, alerts = smtp_server
    d = date(2018, 2, 5)
    gen = generate(str(tmp_path), d, 1, rows_per_day=200, seed=1, messiness=CLEAN, seasonality=False)
    write(tmp_path, d, "zz_broken.csv", [line(cust=str(i), qty="-1") for i in range(20)])
    cfg, logged = cfg_for(tmp_path, spark), []
    t = cfg.tables
    with pytest.raises(QuarantineRateExceeded, match=r"above the 5.0% threshold: silver and gold were not changed"):
        run_daily(spark, cfg, d, log=logged.append, alerts=alerts)
    rate = 20 / (gen.lines + 20)
    subject = f"[ecom_pipeline] 2018-02-05 FAILED: {rate:.1%} rows quarantined"
    assert [(to, m["Subject"]) for to, m in inbox.messages] == [(["ops@shop.test"], subject)]
    body = inbox.messages[0][1].get_content()
    assert "quarantined 20" in body and f"WHERE landing_date = DATE'{d}'" in body
    # the data is kept: bronze and etl_errors hold the lines, silver and gold are untouched
    assert spark.table(t.order_transactions).count() == gen.lines + 20 and spark.table(t.etl_errors).count() == 20
    assert spark.table(t.orders_cleaned).count() == 0 and spark.table(t.sales_metrics).count() == 0
    run = spark.table(t.name("logs", "pipeline_runs")).first()
    assert (run.status, run.quarantined, run.alert_subject) == ("failed", 20, subject)
    dq = {r.rule: r.rows_failed for r in spark.table(t.name("logs", "data_quality_results")).collect()}
    assert dq["quantity_invalid"] == 20 and sum(dq.values()) == 20
    # accepting the day with a higher threshold: it goes through, and a run that needs nobody sends nothing
    s = run_daily(spark, cfg_for(tmp_path, spark, max_quarantine_rate=0.10), d, log=logged.append, alerts=alerts)
    assert (s.status, s.order_lines, s.alert_subject) == ("succeeded", gen.lines, None)
    assert len(inbox.messages) == 1
    # the SMTP password appears nowhere: not in progress lines, output, or the run records
    out = capsys.readouterr()
    records = " ".join(str(r) for r in spark.table(t.name("logs", "pipeline_runs")).collect())
    assert PASSWORD not in " ".join(logged) + out.out + out.err + records + str(s) + repr(alerts)

def test_no_data_warns_by_default_and_fails_when_asked(spark, clean_lakehouse, tmp_path, smtp_server):
    inbox, alerts = smtp_server
    d = date(2018, 2, 6)
    (tmp_path/f"{d:%Y/%m/%d}").mkdir(parents=True)
    (tmp_path/f"{d:%Y/%m/%d}"/"_SUCCESS").write_text("")
    s = run_daily(spark, cfg_for(tmp_path, spark), d, log=lambda m: None, alerts=alerts)
    assert (s.status, s.no_data) == ("succeeded", True)
    assert s.warnings == [f"no data arrived: {tmp_path}/2018/02/06/ is missing or holds no CSV file (only _SUCCESS)"]
    assert [m["Subject"] for _, m in inbox.messages] == ["[ecom_pipeline] 2018-02-06 WARNING: no data arrived"]
    # nothing to read, nothing lost from the records: one quality row per rule, each with no line checked or failed
    t = cfg_for(tmp_path, spark).tables
    dq = spark.table(t.name("logs", "data_quality_results")).where(F.col("run_id") == s.run_id).collect()
    assert sorted((r.rule, r.rows_checked, r.rows_failed) for r in dq) == sorted((r.name, 0, 0) for r in ORDER_RULES)
    assert spark.table(t.orders_cleaned).count() == 0 and s.bronze_rows == 0 and s.order_dates == []
    with pytest.raises(NoDataError, match="2018/02/07/ is missing"):
        run_daily(spark, cfg_for(tmp_path, spark, on_no_data="fail"), "2018-02-07", log=lambda m: None, alerts=alerts)
    assert [m["Subject"] for _, m in inbox.messages][1:] == ["[ecom_pipeline] 2018-02-07 FAILED: no data arrived"]
    s = run_daily(spark, cfg_for(tmp_path, spark, on_no_data="ignore"), "2018-02-08", log=lambda m: None, alerts=alerts)
    assert (s.status, s.no_data, len(inbox.messages)) == ("succeeded", False, 2)

def test_write_conflict_that_persists_fails_the_run(spark, clean_lakehouse, tmp_path, monkeypatch):
    import ecom_pipeline.silver_stage as p
    class ConcurrentAppendException(Exception): pass
    calls = []
    def conflicting_merge(*a, **k):
        calls.append(1); raise ConcurrentAppendException("[DELTA_CONCURRENT_APPEND] Files were added to partition by a concurrent update")
    monkeypatch.setattr(p, "merge_silver", conflicting_merge)
    d = date(2018, 2, 9)
    write(tmp_path, d, "orders.csv", [line(date="2/9/2018")])
    cfg = cfg_for(tmp_path, spark, write_retries=3)
    with pytest.raises(WriteConflictError, match="silver MERGE: concurrent write conflict still there after 3 attempts"):
        run_daily(spark, cfg, d, log=lambda m: None)
    assert len(calls) == 3
    run = spark.table(cfg.tables.name("logs", "pipeline_runs")).first()
    assert run.status == "failed" and run.alert_subject == "[ecom_pipeline] 2018-02-09 FAILED: write conflict in silver MERGE after 3 attempts"

@pytest.mark.slow # make slow-test: keeps make test under 15 minutes
def test_revenue_spike_is_an_anomaly_with_one_ses_alert(spark, clean_lakehouse, tmp_path, s3_endpoint, monkeypatch):
    import boto3
    days = [date(2018, 3, 2) + timedelta(days=i) for i in range(3)]
    generate(str(tmp_path), days[0], len(days), rows_per_day=120, seed=9, messiness=CLEAN, seasonality=False)
    spike = [line(date="3/4/2018", cust=f"9{i:03d}", sales="500", qty="10", disc="0") for i in range(40)]
    write(tmp_path, days[-1], "zz_big_orders.csv", spike)
    cfg = cfg_for(tmp_path, spark, anomaly_min_history=2)
    t = cfg.tables
    for d in days[:-1]:
        s = run_daily(spark, cfg, d, log=lambda m: None, alerts=AlertConfig())
        assert s.anomalies == [] and s.alert_subject is None
    recipient = f"ops-{uuid.uuid4().hex[:8]}@shop.test"
    boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress="pipeline@shop.test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-SECRET-9876")
    logged = []
    s = run_daily(spark, cfg, days[-1], log=logged.append,
                  alerts=AlertConfig(transport="ses", recipients=(recipient,), sender="pipeline@shop.test", ses_region="us-east-1"))
    # independent: the day's revenue from gold vs median ± 3 MAD of the two days before, computed here
    rev = {r.order_date: r.net_revenue for r in spark.table(t.sales_metrics).where("product_category = 'ALL'").collect()}
    a, b = (rev[d] for d in days[:-1])
    med, mad = (a + b) / 2, abs(a - b) / 2
    assert rev[days[-1]] > med + 3 * mad
    found = {r.metric: r for r in spark.table(t.name("logs", "anomalies")).collect()}
    assert found["net_revenue"].direction == "above" and found["net_revenue"].observed_value == rev[days[-1]]
    assert found["net_revenue"].baseline_median == med and found["net_revenue"].history_days == 2
    sent = [m for m in requests.get(f"{s3_endpoint}/moto-api/data.json").json()["ses"]["Message"]
            if m["destinations"]["ToAddresses"] == [recipient]]
    assert len(sent) == 1 and sent[0]["subject"] == s.alert_subject
    assert s.alert_subject.startswith("[ecom_pipeline] 2018-03-04 ANOMALY: net revenue")
    assert "aws-SECRET-9876" not in " ".join(logged) + str(s)
