"""The pipeline on a Spark standalone cluster (a master and two 1-core workers on 127.0.0.1), and through a Spark
Connect server, gives the same gold as
local[2]. Run with `make cluster-test`; it is not part of `make test`."""
import json, os, socket, subprocess, sys, textwrap, time, urllib.request
from pathlib import Path
import pytest
from conftest import free_port

pytestmark = pytest.mark.cluster
DAYS = ["2018-04-01", "2018-04-02", "2018-04-03"]

def distinct_free_ports(n: int) -> list[int]:
    "n ports free now and distinct from each other (each socket stays bound until all are chosen)."
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks: s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks: s.close()

def spark_class() -> str:
    import pyspark
    return str(Path(pyspark.__file__).parent/"bin"/"spark-class")

@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    "Start a master and two workers (1 core, 2 GiB each); wait until both register; stop them even if the test fails."
    logs = tmp_path_factory.mktemp("cluster-logs")
    port, ui, *worker_uis = distinct_free_ports(4)
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable, "SPARK_NO_DAEMONIZE": "1"}
    procs = [subprocess.Popen([spark_class(), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                               "--port", str(port), "--webui-port", str(ui)], env=env,
                              stdout=open(logs/"master.log", "w"), stderr=subprocess.STDOUT)]
    url = f"spark://127.0.0.1:{port}"
    try:
        for i in range(2):
            procs.append(subprocess.Popen([spark_class(), "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                                           "--cores", "1", "--memory", "2g", "--webui-port", str(worker_uis[i]),
                                           "--work-dir", str(logs/f"work{i}")], env=env,
                                          stdout=open(logs/f"worker{i}.log", "w"), stderr=subprocess.STDOUT))
        deadline, alive = time.time() + 120, 0
        while time.time() < deadline:
            # The master's UI answers HTML for a moment while it starts (seen in CI): not ready yet, ask again.
            try: alive = json.load(urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2)).get("aliveworkers", 0)
            except (OSError, ValueError): pass
            if alive == 2: break
            if any(p.poll() is not None for p in procs): break
            time.sleep(1)
        assert alive == 2, f"only {alive} of 2 workers registered in 120 s; master log:\n" + (logs/"master.log").read_text()[-3000:]
        yield url
    finally:
        for p in reversed(procs): p.terminate()
        for p in procs:
            try: p.wait(timeout=30)
            except subprocess.TimeoutExpired: p.kill()

DRIVER = textwrap.dedent("""
    import json, sys, time
    from ecom_pipeline.config import PipelineConfig
    from ecom_pipeline.pipeline import run_daily
    from ecom_pipeline.spark import get_spark
    master, root, wh, out, days = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5].split(",")
    spark = get_spark(wh, master=master, shuffle_partitions=4)
    cfg = PipelineConfig(source_root=root, warehouse=wh)
    t0 = time.time(); secs = []
    for d in days:
        s = run_daily(spark, cfg, d, log=lambda m: None); secs.append(round(s.seconds["total"], 1))
    rows = lambda t: sorted(json.dumps(r.asDict(), default=str, sort_keys=True) for r in spark.table(t).collect())
    json.dump({"executors": spark.conf.get("spark.master"), "session": type(spark).__module__, "seconds": secs,
               "sales_metrics": rows(cfg.tables.sales_metrics), "clv": rows(cfg.tables.customer_lifetime_value),
               "silver": spark.table(cfg.tables.orders_cleaned).count()}, open(out, "w"))
""")

def drive(master, root, wh, out):
    r = subprocess.run([sys.executable, "-c", DRIVER, master, str(root), str(wh), str(out), ",".join(DAYS)],
                       capture_output=True, text=True, timeout=1200, env={**os.environ, "PYSPARK_PYTHON": sys.executable})
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(Path(out).read_text())

@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    "Three days of 2,000 lines, the input of every run here."
    from ecom_pipeline.sample_data import generate
    root = tmp_path_factory.mktemp("cluster-landing")
    generate(str(root), DAYS[0], len(DAYS), rows_per_day=2000, seed=21)
    return root

@pytest.fixture(scope="module")
def local(landing, tmp_path_factory):
    "The reference: the same days in a local[2] driver process, run once for both tests (about 100 s of the test's time)."
    tmp = tmp_path_factory.mktemp("local")
    return drive("local[2]", landing, tmp/"wh_local", tmp/"local.json")

def test_standalone_cluster_gold_equals_local(standalone, landing, local, tmp_path):
    on_cluster = drive(standalone, landing, tmp_path/"wh_cluster", tmp_path/"cluster.json")
    print(f"\ncluster run seconds per day {on_cluster['seconds']}; local[2] {local['seconds']}; silver rows {local['silver']}")
    assert on_cluster["executors"].startswith("spark://")
    assert on_cluster["silver"] == local["silver"] > 5000
    assert on_cluster["sales_metrics"] == local["sales_metrics"]
    assert on_cluster["clv"] == local["clv"]

@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    "A local Spark Connect server (local[2], Delta extensions and jars) on 127.0.0.1, stopped after the tests."
    import pyspark
    from ecom_pipeline.spark import delta_jars, local_spark_conf
    logs, port = tmp_path_factory.mktemp("connect"), free_port()
    conf = {**local_spark_conf(str(logs/"warehouse"), shuffle_partitions=4), "spark.jars": ",".join(delta_jars()),
            "spark.connect.grpc.binding.port": str(port), "spark.connect.grpc.binding.address": "127.0.0.1"}
    cmd = [str(Path(pyspark.__file__).parent/"bin"/"spark-submit"), "--master", "local[2]",
           "--class", "org.apache.spark.sql.connect.service.SparkConnectServer"]
    for k, v in conf.items(): cmd += ["--conf", f"{k}={v}"]
    p = subprocess.Popen(cmd + ["spark-internal"], env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
                         stdout=open(logs/"server.log", "w"), stderr=subprocess.STDOUT)
    try:
        import socket
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0: break
            time.sleep(1)
        assert p.poll() is None, (logs/"server.log").read_text()[-3000:]
        yield f"sc://127.0.0.1:{port}"
    finally:
        p.terminate()
        try: p.wait(timeout=30)
        except subprocess.TimeoutExpired: p.kill()

def test_spark_connect_gold_equals_local(connect_server, landing, local, tmp_path):
    "The whole pipeline through a Spark Connect session: no RDD, no sparkContext, no DeltaTable builder needed."
    env = {**os.environ, "ECOM_SPARK_REMOTE": connect_server}
    r = subprocess.run([sys.executable, "-c", DRIVER, "local[2]", str(landing), str(tmp_path/"wh_connect"), str(tmp_path/"connect.json"),
                        ",".join(DAYS)], capture_output=True, text=True, timeout=1200, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    via_connect = json.loads((tmp_path/"connect.json").read_text())
    print(f"\nSpark Connect run seconds per day {via_connect['seconds']}; local[2] {local['seconds']}")
    assert via_connect["session"].startswith("pyspark.sql.connect") and not local["session"].startswith("pyspark.sql.connect")
    assert via_connect["silver"] == local["silver"] > 5000
    assert via_connect["sales_metrics"] == local["sales_metrics"]
    assert via_connect["clv"] == local["clv"]
