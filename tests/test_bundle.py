"""The Databricks Asset Bundle, checked offline for every target:
- against the Databricks CLI's own JSON schema (../shared/databricks/bundle_schema.json) and its deploy-time rules
  (tools/bundle_check.py, which CI and the CodeBuild deploy run too);
- every resource with the strict classes of `databricks-bundles` (an unknown key or a bad enum fails);
- one version of the code: the jobs run the bundle's own notebook and the wheel of the same deploy;
- dependencies: compatible ranges in the wheel, exact versions in constraints.txt;
- the README's deploy checklist names only variables and targets that the bundle has."""
import configparser, os, re, shutil, sys
from pathlib import Path
import pytest
import yaml
from conftest import ROOT

sys.path.insert(0, str(ROOT/"tools"))
import bundle_check as bc

SCHEMA = Path(os.environ.get("ECOM_BUNDLE_SCHEMA", bc.DEFAULT_SCHEMA))

@pytest.fixture(scope="module")
def schema() -> Path:
    if not SCHEMA.is_file():
        if os.environ.get("CI") == "true": pytest.fail(f"CI must validate the bundle, and the schema is not at {SCHEMA}")
        pytest.skip(f"the CLI's bundle schema is not at {SCHEMA} (set ECOM_BUNDLE_SCHEMA)")
    return SCHEMA

def _settings() -> dict:
    c = configparser.ConfigParser(delimiters=["="]); c.read(ROOT/"settings.ini")
    return c["DEFAULT"]

def _copy_bundle(tmp_path: Path) -> Path:
    "A copy of the bundle's files (and the files they point at), to break on purpose."
    for rel in ("databricks.yml", "resources", "dashboards/sales_overview.lvdash.json", "nbs/runs/daily_run.ipynb"):
        src, dst = ROOT/rel, tmp_path/rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst) if src.is_dir() else shutil.copy(src, dst)
    return tmp_path

# -- the CLI's schema and deploy rules ----------------------------------------------------------------------------
def test_every_target_passes_the_cli_schema_and_deploy_rules(schema):
    assert bc.check(schema_path=schema) == []
    assert set(yaml.safe_load((ROOT/"databricks.yml").read_text())["targets"]) == {"dev", "prod"}

def test_production_without_root_path_or_run_as_is_refused(schema, tmp_path):
    root = _copy_bundle(tmp_path)
    main = yaml.safe_load((root/"databricks.yml").read_text())
    del main["targets"]["prod"]["workspace"]["root_path"], main["targets"]["prod"]["run_as"]
    (root/"databricks.yml").write_text(yaml.safe_dump(main))
    problems = bc.check(["prod"], schema, root=root)
    assert len(problems) == 1 and "mode production needs workspace.root_path" in problems[0]
    main["targets"]["prod"]["run_as"] = {"service_principal_name": "x"} # run_as alone is enough for the CLI
    (root/"databricks.yml").write_text(yaml.safe_dump(main))
    assert bc.check(["prod"], schema, root=root) == []

def test_schema_violations_name_the_file_and_the_path(schema, tmp_path):
    root = _copy_bundle(tmp_path)
    jobs = yaml.safe_load((root/"resources/jobs.yml").read_text())
    jobs["resources"]["jobs"]["ecom_pipeline_daily"]["schedulee"] = {}
    task = jobs["resources"]["jobs"]["ecom_pipeline_daily"]["tasks"][0]
    task["notebook_task"]["notebook_path"] = "../nbs/runs/missing.ipynb"
    (root/"resources/jobs.yml").write_text(yaml.safe_dump(jobs))
    problems = bc.check(["dev"], schema, root=root)
    assert any(p.startswith("resources/jobs.yml: resources.jobs.ecom_pipeline_daily") and "schedulee" in p for p in problems)
    assert any("missing.ipynb does not exist" in p for p in problems)
    main = yaml.safe_load((root/"databricks.yml").read_text())
    main["targets"]["dev"]["mode"] = "staging"
    (root/"databricks.yml").write_text(yaml.safe_dump(main))
    assert any("targets.dev.mode" in p for p in bc.check(["dev"], schema, root=root))

def test_bundle_check_command_exits_non_zero_on_a_problem(schema, tmp_path, capsys):
    assert bc.main(["--schema", str(schema)]) == 0
    assert bc.main(["--schema", str(tmp_path/"none.json")]) == 2
    assert "no schema at" in capsys.readouterr().err

# -- what each target deploys -------------------------------------------------------------------------------------
def test_prod_runs_as_the_service_principal_and_shares_with_the_groups():
    prod, dev = bc.target_config("prod"), bc.target_config("dev")
    v = prod["variables"]
    assert prod["mode"] == "production" and prod["run_as"] == {"service_principal_name": v["service_principal"]}
    assert bc.DEPLOYER in prod["workspace"]["root_path"] and prod["workspace"]["root_path"].endswith("/ecom_pipeline/prod")
    assert prod["workspace"]["host"] != dev["workspace"]["host"] and all(
        c["workspace"]["host"].startswith("https://") for c in (prod, dev))
    assert {(p["level"], p["group_name"]) for p in prod["permissions"]} == {
        ("CAN_VIEW", v["business_users_group"]), ("CAN_MANAGE", v["data_engineers_group"])}
    assert re.fullmatch(r">= \d+\.\d+\.\d+, < \d+\.\d+\.\d+", prod["bundle"]["databricks_cli_version"])
    main = yaml.safe_load((ROOT/"databricks.yml").read_text())
    assert main["variables"]["warehouse_id"]["lookup"] == {"warehouse": "ecom_pipeline"} # by name, not an id to paste

@pytest.mark.parametrize("target", ["dev", "prod"])
def test_dashboard_resource_is_valid_for_each_target(target):
    from databricks.bundles.dashboards import Dashboard
    conf = bc.target_config(target, {"warehouse_id": "abc123def456"})
    spec = conf["resources"]["dashboards"]["sales_overview"]
    d = Dashboard.from_dict(bc._strip_private(spec))
    assert (Path(spec["_file"]).parent/d.file_path).resolve() == ROOT/"dashboards"/"sales_overview.lvdash.json"
    assert d.warehouse_id == "abc123def456"
    assert d.dataset_catalog == {"dev": "ecommerce_catalog_dev", "prod": "ecommerce_catalog"}[target]

PYSPARK_OF_LTS = {"15.4": "3.5", "16.4": "3.5", "17.3": "4.0"} # Databricks Runtime LTS -> its Apache Spark (release notes)

@pytest.mark.parametrize("target", ["dev", "prod"])
def test_daily_job_runs_one_version_of_the_code(target):
    from databricks.bundles.jobs import Job
    conf = bc.target_config(target)
    spec = conf["resources"]["jobs"]["ecom_pipeline_daily"]
    job = Job.from_dict(bc._strip_private(spec)) # strict: an unknown key or a bad enum raises
    v = conf["variables"]
    assert job.schedule.quartz_cron_expression == "0 0 3 * * ?" and job.schedule.timezone_id == "UTC"
    assert job.schedule.pause_status.value == {"dev": "PAUSED", "prod": "UNPAUSED"}[target]
    assert job.max_concurrent_runs == 1 and job.timeout_seconds > 0
    assert job.email_notifications.on_failure == v["alert_emails"] and "@" in job.email_notifications.on_failure[0]
    assert job.git_source is None # the notebook is the bundle's own, synced in the same deploy as the wheel
    etl, scoring = job.job_clusters
    c = etl.new_cluster
    assert (c.autoscale.min_workers, c.autoscale.max_workers) == (4, 16)
    lts = re.match(r"(\d+\.\d+)\.x-scala2\.13$", c.spark_version).group(1)
    pyspark_range = next(r for r in _settings()["local_requirements"].split() if r.startswith("pyspark"))
    assert f">={PYSPARK_OF_LTS[lts].split('.')[0]}." in pyspark_range # the runtime's Spark major version is the local one
    for cl in (etl.new_cluster, scoring.new_cluster): # S3 through the instance profile, for Spark and boto3 alike
        assert cl.aws_attributes.instance_profile_arn == v["instance_profile_arn"]
    env = c.spark_env_vars
    scope = v["secret_scope"]
    assert {k: env[k] for k in ("ECOM_SMTP_HOST", "ECOM_SMTP_USER", "ECOM_SMTP_PASSWORD")} == {
        "ECOM_SMTP_HOST": f"{{{{secrets/{scope}/smtp_host}}}}", "ECOM_SMTP_USER": f"{{{{secrets/{scope}/smtp_user}}}}",
        "ECOM_SMTP_PASSWORD": f"{{{{secrets/{scope}/smtp_password}}}}"}
    from ecom_pipeline.alerts import AlertConfig
    a = AlertConfig.from_env({**env, "ECOM_SMTP_HOST": "smtp.example.com"}) # the variables the cluster sets are the ones read
    assert a.transport == v["alert_transport"] and a.smtp_port == int(v["smtp_port"]) and a.smtp_starttls
    assert a.recipients == tuple(v["pipeline_alert_emails"].split(","))
    from ecom_pipeline.pipeline import STAGES
    *stages, score = job.tasks
    assert [t.task_key for t in stages] == list(STAGES)
    for prev, t in zip([None, *stages], stages):
        assert [d.task_key for d in t.depends_on] == ([prev.task_key] if prev else [])
        assert t.job_cluster_key == etl.job_cluster_key
        assert t.notebook_task.source is None or t.notebook_task.source.value == "WORKSPACE"
        assert (Path(spec["_file"]).parent/t.notebook_task.notebook_path).resolve() == ROOT/"nbs/runs/daily_run.ipynb"
        assert t.notebook_task.base_parameters == {"stage": t.task_key}
        assert [l.whl for l in t.libraries] == ["../dist/*.whl"] and not any(l.pypi for l in t.libraries)
    ingest, *_, last = stages
    assert ingest.max_retries >= 1 and ingest.timeout_seconds > 0 and ingest.retry_on_timeout
    assert last.run_if.value == "ALL_DONE"
    # customer scoring: the wheel's command line after gold, on its own cluster, the only one with the `clv` extra
    assert score.task_key == "score_customers" and [d.task_key for d in score.depends_on] == ["build_gold"]
    assert score.run_if is None or score.run_if.value == "ALL_SUCCESS"
    assert score.job_cluster_key == scoring.job_cluster_key and scoring.new_cluster.num_workers == 0
    assert [l.whl for l in score.libraries if l.whl] == ["../dist/*.whl"]
    assert [l.pypi.package for l in score.libraries if l.pypi] == _settings()["clv_requirements"].split()
    from ecom_pipeline.cli import build_parser
    a = build_parser().parse_args(score.python_wheel_task.parameters)
    assert (a.command, a.catalog, score.python_wheel_task.package_name) == ("score-customers", v["catalog"], "ecom_pipeline")
    params = {p.name: p.default for p in job.parameters}
    assert params["run_id"] == "{{job.run_id}}" and params["trigger_date"] == "{{job.trigger.time.iso_date}}"
    assert params["run_date"] == "" and params["catalog"] == v["catalog"] and params["environment"] == target
    from ecom_pipeline.orchestration import PARAMETER_NAMES
    assert set(params) | {"stage"} == set(PARAMETER_NAMES) # every notebook parameter comes from the job or the task
    artifact = conf["artifacts"]["ecom_pipeline_wheel"]
    assert artifact["type"] == "whl" and artifact["path"] == "." and "--no-deps" in artifact["build"]

def test_maintenance_job_is_weekly_on_a_small_fixed_cluster():
    from databricks.bundles.jobs import Job
    conf = bc.target_config("prod")
    job = Job.from_dict(bc._strip_private(conf["resources"]["jobs"]["ecom_pipeline_maintenance"]))
    assert job.schedule.timezone_id == "UTC" and job.schedule.quartz_cron_expression.split()[5] == "SUN"
    (cluster,) = job.job_clusters
    assert cluster.new_cluster.autoscale is None and 1 <= cluster.new_cluster.num_workers <= 2
    (t,) = job.tasks
    args = t.python_wheel_task.parameters
    assert t.python_wheel_task.package_name == "ecom_pipeline" and args[0] == "maintain"
    assert int(args[args.index("--vacuum-hours") + 1]) >= 168 and args[args.index("--catalog") + 1] == "ecommerce_catalog"
    from ecom_pipeline.cli import build_parser
    a = build_parser().parse_args(args) # the job's arguments are a valid command line
    assert a.command == "maintain" and a.vacuum_hours >= 168
    assert _settings()["console_scripts"].split("=")[0].strip() == t.python_wheel_task.entry_point

def test_strict_job_validation_rejects_unknown_keys_and_bad_enums():
    from databricks.bundles.jobs import Job
    spec = bc._strip_private(bc.target_config("prod")["resources"]["jobs"]["ecom_pipeline_daily"])
    with pytest.raises(ValueError, match="schedul"):
        Job.from_dict({**spec, "schedulee": spec["schedule"]})
    with pytest.raises(ValueError):
        Job.from_dict({**spec, "tasks": [{**spec["tasks"][-1], "run_if": "ALWAYS"}]})
    with pytest.raises(ValueError, match="without a value: catalog"):
        bc.target_config("prod", {"catalog": None})

# -- exit codes: a failed run fails its task ------------------------------------------------------------------------
def test_wheel_entry_point_raises_system_exit_on_failure(capsys):
    "A python_wheel_task calls the entry point and ignores its return value: a failure must raise."
    from importlib.metadata import entry_points
    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "ecom-pipeline"]
    fn = ep.load()
    with pytest.raises(SystemExit) as e:
        fn(["land", "/nonexistent/orders.csv", "--to", "/tmp/x"])
    assert e.value.code == 1 and "FAILED" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e: # a bad command line is argparse's exit 2
        fn(["score-customers", "--as-of", "2024-13-01"])
    assert e.value.code == 2

# -- dependencies -------------------------------------------------------------------------------------------------
def _constraints() -> dict:
    lines = (ROOT/"constraints.txt").read_text().splitlines()
    return {re.sub(r"[-_.]+", "-", l.split("==")[0]).lower(): l.split("==")[1] for l in lines if "==" in l and not l.startswith("#")}

def test_wheel_declares_ranges_and_constraints_pin_every_package_inside_them():
    from packaging.requirements import Requirement
    from packaging.version import Version
    s, pins = _settings(), _constraints()
    runtime = [Requirement(r) for r in s["requirements"].split()]
    assert all(not any(sp.operator == "==" for sp in r.specifier) for r in runtime) # ranges: the runtime keeps its pandas
    assert {r.name for r in runtime} >= {"pandas", "pyarrow", "numpy", "tqdm", "boto3"} and "fastcore" not in {r.name for r in runtime}
    for key in ("requirements", "local_requirements", "clv_requirements", "dev_requirements", "bench_requirements"):
        for r in map(Requirement, s[key].split()):
            name = re.sub(r"[-_.]+", "-", r.name).lower()
            assert name in pins, f"constraints.txt has no version of {r.name} ({key}): run make lock"
            assert Version(pins[name]) in r.specifier, f"constraints.txt pins {r.name}=={pins[name]}, outside {r} ({key})"
    for transitive in ("pytensor", "pymc", "py4j", "pytz"): assert transitive in pins # the whole tree, not only what we name

def test_every_module_the_package_imports_is_declared():
    "numpy and tqdm are imported, so declared; pymc_marketing only in the `clv` extra; fastcore never imported."
    from packaging.requirements import Requirement
    s = _settings()
    declared = {key: {Requirement(r).name.replace("-", "_").lower() for r in s[key].split()}
                for key in ("requirements", "local_requirements", "clv_requirements")}
    module_of = {"delta_spark": "delta", "pymc_marketing": "pymc_marketing"}
    imported = set()
    for f in (ROOT/"ecom_pipeline").glob("*.py"):
        imported |= set(re.findall(r"^\s*(?:import|from) ([a-z_][a-z0-9_]*)", f.read_text(), re.M))
    third_party = imported - set(sys.stdlib_module_names) - {"ecom_pipeline", "__future__"}
    everywhere = {module_of.get(n, n) for n in declared["requirements"] | declared["local_requirements"] | declared["clv_requirements"]}
    assert third_party <= everywhere, f"imported but not declared: {sorted(third_party - everywhere)}"
    assert "fastcore" not in third_party and {"numpy", "tqdm"} <= third_party <= everywhere
    assert declared["clv_requirements"] == {"pymc_marketing"}
    assert {"pyspark", "delta_spark", "papermill", "plotly"} <= declared["local_requirements"]

# -- README: the deploy checklist names what the bundle has --------------------------------------------------------
def test_readme_deploy_checklist_names_only_what_the_bundle_has():
    readme = (ROOT/"README.md").read_text()
    main = yaml.safe_load((ROOT/"databricks.yml").read_text())
    section = readme[readme.index("## Deploy to Databricks"):]
    section = section[:section.index("\n## ", 4)] if "\n## " in section[4:] else section
    named_vars = set(re.findall(r"--var[ =]([a-z_]+)=", section)) | set(re.findall(r"`([a-z_]+)` variable", section))
    assert named_vars and named_vars <= set(main["variables"]), sorted(named_vars - set(main["variables"]))
    targets = set(re.findall(r"bundle (?:validate|deploy|run|summary)[^\n`]*?-t (\w+)", section))
    assert targets == {"dev", "prod"} <= set(main["targets"])
    jobs = set(re.findall(r"bundle run[^\n`]*?(ecom_pipeline_\w+)", section))
    resources = {n for _, d in bc.bundle_files() for n in ((d.get("resources") or {}).get("jobs") or {})}
    assert jobs and jobs <= resources
    scope = main["variables"]["secret_scope"]["default"]
    for key in ("smtp_host", "smtp_user", "smtp_password"): assert f"{scope} {key}" in section # the secrets to create
    assert "buildspec.yml" in section and (ROOT/"buildspec.yml").is_file()

def test_codebuild_deploys_prod_after_the_offline_check():
    spec = yaml.safe_load((ROOT/"buildspec.yml").read_text())
    cmds = [c for phase in spec["phases"].values() for c in phase.get("commands", [])]
    text = "\n".join(cmds)
    order = [next(i for i, c in enumerate(cmds) if k in c) for k in ("bundle_check.py", "bundle validate -t prod", "bundle deploy -t prod")]
    assert order == sorted(order) # checked offline, validated, then deployed
    cli = yaml.safe_load((ROOT/"databricks.yml").read_text())["bundle"]["databricks_cli_version"]
    version = spec["env"]["variables"]["DATABRICKS_CLI_VERSION"]
    assert "setup-cli/v${DATABRICKS_CLI_VERSION}/install.sh" in text # that version is the one installed
    from packaging.specifiers import SpecifierSet
    assert version in SpecifierSet(cli.replace(" ", "")) # the CLI the bundle asks for
