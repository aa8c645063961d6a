"""The Databricks Asset Bundle, checked offline: each target's variables substituted, every resource validated with the
strict classes of `databricks-bundles` (an unknown key or a bad enum fails), and the files it points at exist."""
import glob, re
from pathlib import Path
import pytest
import yaml
from conftest import ROOT

def load_bundle(target: str, overrides: dict|None=None) -> dict:
    "databricks.yml plus its includes, with `${var.*}` and `${bundle.*}` substituted for `target`; keeps each resource's file."
    main = yaml.safe_load((ROOT/"databricks.yml").read_text())
    variables = {k: v.get("default") for k, v in main.get("variables", {}).items()}
    variables.update(main["targets"][target].get("variables", {}))
    variables.update(overrides or {})
    missing = sorted(k for k, v in variables.items() if v is None)
    if missing: raise ValueError(f"target {target}: variables without a value: {', '.join(missing)}")
    def sub(v):
        if isinstance(v, str):
            whole = re.fullmatch(r"\$\{var\.([a-z_]+)\}", v)
            if whole: return variables[whole.group(1)] # a complex variable keeps its type (a list of emails)
            v = re.sub(r"\$\{var\.([a-z_]+)\}", lambda m: str(variables[m.group(1)]), v)
            return v.replace("${bundle.target}", target).replace("${bundle.name}", main["bundle"]["name"])
        if isinstance(v, list): return [sub(x) for x in v]
        if isinstance(v, dict): return {k: sub(x) for k, x in v.items()}
        return v
    resources = {}
    for pattern in main.get("include", []):
        for f in sorted(glob.glob(str(ROOT/pattern))):
            for kind, items in (yaml.safe_load(Path(f).read_text()).get("resources") or {}).items():
                for name, spec in items.items():
                    resources.setdefault(kind, {})[name] = (Path(f), sub(spec))
    for kind, items in (main["targets"][target].get("resources") or {}).items(): # a target's overrides, merged in
        for name, spec in items.items():
            src, base = resources[kind][name]
            resources[kind][name] = (src, _merge(base, sub(spec)))
    return {"variables": variables, "resources": resources, "targets": main["targets"]}

def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items(): out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out

@pytest.mark.parametrize("target", ["dev", "prod"])
def test_dashboard_resource_is_valid_for_each_target(target):
    from databricks.bundles.dashboards import Dashboard
    b = load_bundle(target, {"warehouse_id": "abc123def456"})
    src, spec = b["resources"]["dashboards"]["sales_overview"]
    d = Dashboard.from_dict(spec)
    assert (src.parent/d.file_path).resolve() == ROOT/"dashboards"/"sales_overview.lvdash.json"
    assert d.warehouse_id == "abc123def456"
    assert d.dataset_catalog == {"dev": "ecommerce_catalog_dev", "prod": "ecommerce_catalog"}[target]
    assert b["targets"][target]["mode"] == {"dev": "development", "prod": "production"}[target]

def test_strict_validation_rejects_unknown_keys_and_a_missing_variable():
    from databricks.bundles.dashboards import Dashboard
    with pytest.raises(ValueError, match="Unexpected field 'file'"):
        Dashboard.from_dict({"display_name": "x", "file": "a.lvdash.json"})
    with pytest.raises(ValueError, match="warehouse_id"):
        load_bundle("prod")

PYSPARK_OF_LTS = {"15.4": "3.5", "16.4": "3.5", "17.3": "4.0"} # Databricks Runtime LTS -> its Apache Spark (release notes)

def _pinned(name: str) -> str:
    import configparser
    c = configparser.ConfigParser(); c.read(ROOT/"settings.ini")
    pins = dict(p.split("==") for k in ("requirements", "local_requirements", "dev_requirements") for p in c["DEFAULT"][k].split() if "==" in p)
    return pins[name]

@pytest.mark.parametrize("target", ["dev", "prod"])
def test_daily_job_is_valid_and_scheduled_for_each_target(target):
    from databricks.bundles.jobs import Job
    b = load_bundle(target, {"warehouse_id": "abc123def456"})
    src, spec = b["resources"]["jobs"]["ecom_pipeline_daily"]
    job = Job.from_dict(spec) # strict: an unknown key or a bad enum raises
    assert job.schedule.quartz_cron_expression == "0 0 3 * * ?" and job.schedule.timezone_id == "UTC"
    assert job.schedule.pause_status.value == {"dev": "PAUSED", "prod": "UNPAUSED"}[target]
    assert b["targets"][target]["mode"] == {"dev": "development", "prod": "production"}[target]
    assert job.max_concurrent_runs == 1 and job.timeout_seconds > 0
    assert job.email_notifications.on_failure == b["variables"]["alert_emails"] and "@" in job.email_notifications.on_failure[0]
    assert job.git_source.git_provider.value == "awsCodeCommit"
    assert job.git_source.git_url == b["variables"]["git_url"] and job.git_source.git_branch == {"dev": "develop", "prod": "main"}[target]
    (cluster,) = job.job_clusters
    c = cluster.new_cluster
    assert (c.autoscale.min_workers, c.autoscale.max_workers, c.node_type_id) == (4, 16, "m5.large")
    assert c.data_security_mode.value in ("SINGLE_USER", "USER_ISOLATION", "DATA_SECURITY_MODE_DEDICATED", "DATA_SECURITY_MODE_STANDARD")
    lts = re.match(r"(\d+\.\d+)\.x-scala2\.13$", c.spark_version).group(1)
    assert PYSPARK_OF_LTS[lts].split(".")[0] == _pinned("pyspark").split(".")[0] # the same Spark major version as local
    from ecom_pipeline.pipeline import STAGES
    *stages, score = job.tasks
    assert [t.task_key for t in stages] == list(STAGES)
    for prev, t in zip([None, *stages], stages):
        assert [d.task_key for d in t.depends_on] == ([prev.task_key] if prev else [])
        assert t.job_cluster_key == cluster.job_cluster_key
        assert t.notebook_task.notebook_path == "nbs/runs/daily_run" and t.notebook_task.source.value == "GIT"
        assert (ROOT/"nbs/runs/daily_run.ipynb").is_file()
        assert t.notebook_task.base_parameters == {"stage": t.task_key}
        assert [l.whl for l in t.libraries] == ["../dist/*.whl"] and not any(l.pypi for l in t.libraries)
    ingest, *_, last = stages
    assert ingest.max_retries >= 1 and ingest.timeout_seconds > 0 and ingest.retry_on_timeout
    assert last.run_if.value == "ALL_DONE"
    # customer scoring: the wheel's command line, after gold, only when gold succeeded
    assert score.task_key == "score_customers" and [d.task_key for d in score.depends_on] == ["build_gold"]
    assert score.run_if is None or score.run_if.value == "ALL_SUCCESS"
    args = score.python_wheel_task.parameters
    from ecom_pipeline.cli import build_parser
    a = build_parser().parse_args(args)
    assert (a.command, a.catalog, score.python_wheel_task.package_name) == ("score-customers", b["variables"]["catalog"], "ecom_pipeline")
    assert score.job_cluster_key == cluster.job_cluster_key and [l.whl for l in score.libraries] == ["../dist/*.whl"]
    params = {p.name: p.default for p in job.parameters}
    assert params["run_id"] == "{{job.run_id}}" and params["trigger_date"] == "{{job.trigger.time.iso_date}}"
    assert params["run_date"] == "" and params["catalog"] == b["variables"]["catalog"] and params["environment"] == target
    from ecom_pipeline.orchestration import PARAMETER_NAMES
    assert set(params) | {"stage"} == set(PARAMETER_NAMES) # every notebook parameter comes from the job or the task
    # the wheel is built from this repository and does not pull delta-spark onto the cluster
    assert "delta-spark" not in _pinned_requirements("requirements") and "pyspark" not in _pinned_requirements("requirements")

def _pinned_requirements(key: str) -> str:
    import configparser
    c = configparser.ConfigParser(); c.read(ROOT/"settings.ini")
    return c["DEFAULT"][key]

def test_maintenance_job_is_weekly_and_keeps_a_week_of_history():
    from databricks.bundles.jobs import Job
    b = load_bundle("prod", {"warehouse_id": "x"})
    job = Job.from_dict(b["resources"]["jobs"]["ecom_pipeline_maintenance"][1])
    assert job.schedule.timezone_id == "UTC" and job.schedule.quartz_cron_expression.split()[5] == "SUN"
    (t,) = job.tasks
    args = t.python_wheel_task.parameters
    assert t.python_wheel_task.package_name == "ecom_pipeline" and args[0] == "maintain"
    assert int(args[args.index("--vacuum-hours") + 1]) >= 168 and args[args.index("--catalog") + 1] == "ecommerce_catalog"
    from ecom_pipeline.cli import build_parser
    a = build_parser().parse_args(args) # the job's arguments are a valid command line
    assert a.command == "maintain" and a.vacuum_hours >= 168
    import configparser
    c = configparser.ConfigParser(); c.read(ROOT/"settings.ini")
    assert c["DEFAULT"]["console_scripts"].split("=")[0].strip() == t.python_wheel_task.entry_point

def test_strict_job_validation_rejects_unknown_keys_and_bad_enums():
    from databricks.bundles.jobs import Job
    _, spec = load_bundle("prod", {"warehouse_id": "x"})["resources"]["jobs"]["ecom_pipeline_daily"]
    with pytest.raises(ValueError, match="schedul"):
        Job.from_dict({**spec, "schedulee": spec["schedule"]})
    with pytest.raises(ValueError):
        Job.from_dict({**spec, "git_source": {**spec["git_source"], "git_provider": "codeCommit"}})
    with pytest.raises(ValueError):
        Job.from_dict({**spec, "tasks": [{**spec["tasks"][-1], "run_if": "ALWAYS"}]})
