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
    return {"variables": variables, "resources": resources, "targets": main["targets"]}

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
