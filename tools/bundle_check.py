"""Offline check of the Databricks Asset Bundle, for every target, before anything is deployed:
- each file (databricks.yml and its includes) and each target's merged configuration against the Databricks CLI's own
  JSON schema (`databricks bundle schema`; a copy is ../shared/databricks/bundle_schema.json);
- the rules that the CLI enforces at deploy time and the schema does not express (validate_target_mode.go);
- the files that the jobs and the dashboard point at exist.

Usage: python tools/bundle_check.py [--schema PATH] [--target NAME ...]. Exit 0 when every target passes, 1 otherwise,
with one line per problem naming the file, the path in it and the rule."""
from __future__ import annotations
import argparse, glob, json, re, sys
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCHEMA = ROOT.parent/"shared"/"databricks"/"bundle_schema.json"
DEPLOYER = "deployer@example.com" # stands for ${workspace.current_user.userName} offline

def bundle_files(root: Path=ROOT) -> list[tuple[Path, dict]]:
    "databricks.yml and each file it includes, parsed, in the CLI's order."
    main = yaml.safe_load((root/"databricks.yml").read_text())
    files = [(root/"databricks.yml", main)]
    for pattern in main.get("include", []):
        files += [(Path(f), yaml.safe_load(Path(f).read_text()) or {}) for f in sorted(glob.glob(str(root/pattern)))]
    return files

def _merge(base, over):
    "A target's override merged into the base as the CLI does: mappings key by key, anything else replaced."
    if not (isinstance(base, dict) and isinstance(over, dict)): return over
    return {**base, **{k: _merge(base.get(k), v) if k in base else v for k, v in over.items()}}

def _merge_lists_by_key(base: list, over: list, key: str) -> list:
    "Job clusters and tasks of a target's override merge with the base's by their key."
    out = {x[key]: x for x in base}
    for x in over: out[x[key]] = _merge(out.get(x[key], {}), x)
    return list(out.values())

def variable_values(main: dict, target: str, overrides: dict|None=None) -> dict:
    "Each variable's value for `target`: its default, the target's value, then `overrides` (`--var`); a lookup stands as `<lookup …>`."
    def value(spec):
        if not isinstance(spec, dict): return spec
        if "lookup" in spec: return "<lookup " + ", ".join(f"{k}={v}" for k, v in spec["lookup"].items()) + ">"
        return spec.get("default")
    vals = {k: value(v) for k, v in (main.get("variables") or {}).items()}
    vals.update({k: value(v) for k, v in (main["targets"][target].get("variables") or {}).items()})
    vals.update(overrides or {})
    return vals

def substitute(v, variables: dict, target: str, name: str):
    "`${var.*}`, `${bundle.target}`, `${bundle.name}` and the deployer's name substituted (a whole-value complex variable keeps its type)."
    if isinstance(v, str):
        whole = re.fullmatch(r"\$\{var\.([a-z_]+)\}", v)
        if whole: return variables[whole.group(1)]
        v = re.sub(r"\$\{var\.([a-z_]+)\}", lambda m: str(variables[m.group(1)]), v)
        return (v.replace("${bundle.target}", target).replace("${bundle.name}", name)
                 .replace("${workspace.current_user.userName}", DEPLOYER))
    if isinstance(v, list): return [substitute(x, variables, target, name) for x in v]
    if isinstance(v, dict): return {k: substitute(x, variables, target, name) for k, x in v.items()}
    return v

def target_config(target: str, overrides: dict|None=None, root: Path=ROOT) -> dict:
    "The configuration `target` deploys: every file merged, the target's settings and overrides applied, variables substituted."
    files = bundle_files(root)
    main = files[0][1]
    if target not in main.get("targets", {}): raise ValueError(f"databricks.yml has no target {target!r}")
    t = main["targets"][target]
    conf = {k: v for k, v in main.items() if k not in ("targets", "include", "variables")}
    resources = {}
    for path, doc in files:
        for kind, items in (doc.get("resources") or {}).items():
            for rname, spec in items.items(): resources.setdefault(kind, {})[rname] = {**spec, "_file": str(path)}
    for kind, items in (t.get("resources") or {}).items():
        for rname, spec in items.items():
            base = resources[kind][rname]
            merged = _merge(base, {k: v for k, v in spec.items() if k not in ("job_clusters", "tasks")})
            for k, key in (("job_clusters", "job_cluster_key"), ("tasks", "task_key")):
                if k in spec: merged[k] = _merge_lists_by_key(base.get(k, []), spec[k], key)
            resources[kind][rname] = merged
    conf["resources"] = resources
    for k in ("mode", "workspace", "run_as", "permissions", "presets", "artifacts", "sync", "bundle"):
        if k in t: conf[k] = _merge(conf.get(k), t[k])
    variables = variable_values(main, target, overrides)
    missing = sorted(k for k, v in variables.items() if v is None)
    if missing: raise ValueError(f"target {target}: variables without a value: {', '.join(missing)} (give --var name=value)")
    out = substitute(conf, variables, target, main["bundle"]["name"])
    out["variables"] = variables
    return out

def _schema_validator(schema_path: Path):
    "A jsonschema validator of the CLI's schema, its \\p{L} / \\p{N} classes translated for Python's `re`."
    import jsonschema
    text = schema_path.read_text()
    text = text.replace(r"[\\p{L}\\p{N}]", r"[^\\W_]").replace(r"\\p{L}", r"[^\\W\\d_]").replace(r"\\p{N}", r"\\d")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)

def _strip_private(v):
    if isinstance(v, dict): return {k: _strip_private(x) for k, x in v.items() if not k.startswith("_")}
    if isinstance(v, list): return [_strip_private(x) for x in v]
    return v

def schema_problems(validator, doc: dict, where: str) -> list[str]:
    "One line per schema violation of `doc`: the file or target, the path in it, and the schema's message."
    import jsonschema
    out = []
    for e in sorted(validator.iter_errors(_strip_private(doc)), key=lambda e: list(map(str, e.absolute_path))):
        best = jsonschema.exceptions.best_match([e])
        path = ".".join(map(str, best.absolute_path)) or "(top level)"
        out.append(f"{where}: {path}: {best.message[:300]}")
    return out

def deploy_rule_problems(conf: dict, target: str) -> list[str]:
    "The CLI's deploy-time rules of a target's mode, which the schema does not express."
    out, mode = [], conf.get("mode")
    ws, presets = conf.get("workspace") or {}, conf.get("presets") or {}
    if mode not in (None, "development", "production"):
        out.append(f"targets.{target}.mode: {mode!r} is neither development nor production")
    jobs = (conf.get("resources") or {}).get("jobs") or {}
    if mode == "production":
        every_job_runs_as = bool(jobs) and all(j.get("run_as") for j in jobs.values())
        if not ws.get("root_path") and not conf.get("run_as") and not every_job_runs_as:
            out.append(f"targets.{target}: mode production needs workspace.root_path, or run_as for every job "
                       "(a top-level run_as counts): `bundle deploy` refuses it otherwise")
    if mode == "development":
        for k in ("root_path", "file_path", "artifact_path", "state_path", "resource_path"):
            p = ws.get(k)
            if p and DEPLOYER not in p and not p.startswith("~"):
                out.append(f"targets.{target}.workspace.{k}: {p!r} must contain the current user's name in development mode")
        if presets.get("name_prefix") and DEPLOYER not in presets["name_prefix"]:
            out.append(f"targets.{target}.presets.name_prefix must contain the current user's name in development mode")
        if presets.get("trigger_pause_status") == "UNPAUSED":
            out.append(f"targets.{target}.presets.trigger_pause_status must not be UNPAUSED in development mode")
    return out

def file_problems(conf: dict) -> list[str]:
    "Notebooks, wheels' source and dashboard files that the resources point at, relative to the file that names them."
    out = []
    for kind, items in (conf.get("resources") or {}).items():
        for rname, spec in items.items():
            base = Path(spec.get("_file", ROOT/"databricks.yml")).parent
            paths = [spec["file_path"]] if kind == "dashboards" and "file_path" in spec else []
            for task in spec.get("tasks", []) if kind == "jobs" else []:
                if "notebook_task" in task: paths.append(task["notebook_task"]["notebook_path"])
            for p in paths:
                if not (base/p).resolve().is_file(): out.append(f"{spec.get('_file')}: resources.{kind}.{rname}: {p} does not exist")
    return out

def check(targets: list[str]|None=None, schema_path: Path=DEFAULT_SCHEMA, overrides: dict|None=None, root: Path=ROOT) -> list[str]:
    "Every problem of the bundle, for these targets (default: all), as lines; empty when it would deploy."
    validator = _schema_validator(schema_path)
    files = bundle_files(root)
    # each file as written (a target's resource overrides are partial by nature: they are checked merged, below)
    def as_written(doc):
        if "targets" not in doc: return doc
        return {**doc, "targets": {n: {k: v for k, v in t.items() if k != "resources"} for n, t in doc["targets"].items()}}
    problems = [p for path, doc in files for p in schema_problems(validator, as_written(doc), str(path.relative_to(root)))]
    for t in targets or list(files[0][1]["targets"]):
        conf = target_config(t, overrides, root)
        problems += schema_problems(validator, {k: v for k, v in conf.items() if k != "variables"}, f"target {t}")
        problems += deploy_rule_problems(conf, t) + file_problems(conf)
    return problems

def main(argv: list[str]|None=None) -> int:
    p = argparse.ArgumentParser(prog="bundle_check", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA,
                   help=f"the CLI's bundle JSON schema (`databricks bundle schema > FILE`; default {DEFAULT_SCHEMA})")
    p.add_argument("--target", action="append", help="a target to check (repeatable; default: every target)")
    a = p.parse_args(argv)
    if not a.schema.is_file():
        print(f"bundle_check: no schema at {a.schema}: give --schema (databricks bundle schema > bundle_schema.json)", file=sys.stderr)
        return 2
    problems = check(a.target, a.schema)
    for line in problems: print(f"bundle_check: {line}", file=sys.stderr)
    names = a.target or list(bundle_files()[0][1]["targets"])
    print(f"bundle_check: {'FAILED, ' + str(len(problems)) + ' problem(s)' if problems else 'ok'} "
          f"(targets {', '.join(names)}; schema {a.schema.name})")
    return 1 if problems else 0

if __name__ == "__main__":
    sys.exit(main())
