"""Shared fixtures: one local Delta SparkSession per pytest process (make test runs two, pytest-xdist), a moto S3 server on
127.0.0.1, the Kaggle samples."""
import os, socket
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
KAGGLE = Path(os.environ.get("ECOM_SHARED_DATA", ROOT.parent/"shared"/"data"/"kaggle"))

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("warehouse")

@pytest.fixture(scope="session")
def spark(warehouse):
    "One SparkSession for the tests of this process: local[2], 2 shuffle partitions, UI off, UTC, tables in a temporary warehouse."
    from ecom_pipeline.spark import get_spark
    s = get_spark(str(warehouse), master="local[2]", shuffle_partitions=2, ui=False)
    yield s
    s.stop()

@pytest.fixture()
def clean_lakehouse(spark):
    "Drop every schema of the lakehouse, so the test starts from nothing."
    from ecom_pipeline.config import SCHEMAS
    for sch in SCHEMAS: spark.sql(f"DROP SCHEMA IF EXISTS spark_catalog.{sch} CASCADE")
    yield

@pytest.fixture(scope="session")
def s3_endpoint():
    "A real S3 HTTP endpoint: moto's ThreadedMotoServer on 127.0.0.1, started and stopped here."
    from moto.server import ThreadedMotoServer
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    yield url
    server.stop()
    for k, v in saved.items():
        if v is None: os.environ.pop(k, None)
        else: os.environ[k] = v

@pytest.fixture()
def s3(s3_endpoint):
    "A boto3 client of the moto server and a fresh bucket name."
    import boto3, uuid
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = f"shop-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket

@pytest.fixture(scope="session")
def kaggle_dir() -> Path:
    if not KAGGLE.is_dir(): pytest.skip(f"Kaggle samples not found at {KAGGLE} (set ECOM_SHARED_DATA)")
    return KAGGLE

def run_quiet(spark, cfg, d, **kw):
    from ecom_pipeline.pipeline import run_daily
    return run_daily(spark, cfg, d, log=lambda m: None, **kw)

# each test file's time (setup, call and teardown of its tests), printed at the end of every run, so the next slow one is visible
_FILE_SECONDS: dict = {}

def pytest_runtest_logreport(report):
    f = report.nodeid.split("::", 1)[0]
    _FILE_SECONDS[f] = _FILE_SECONDS.get(f, 0.0) + report.duration

def pytest_terminal_summary(terminalreporter):
    if not _FILE_SECONDS: return
    terminalreporter.section("seconds per test file")
    for f, s in sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{s:8.1f}  {f}")
    terminalreporter.write_line(f"{sum(_FILE_SECONDS.values()):8.1f}  total")
