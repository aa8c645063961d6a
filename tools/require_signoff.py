#!/usr/bin/env python3
"""Refuse a production deploy of a commit that has no QA sign-off: the check of `make deploy-prod` and of CI's deploy
step (buildspec.yml).

It reads `<catalog>.logs.qa_signoffs` (written by `ecom-pipeline signoff`) through Databricks SQL's Statement Execution
API with the Databricks CLI's own login (`databricks api post`), so it needs neither Spark nor this package: only Python
and the CLI. The commit goes in as a statement parameter, never into the SQL text. Exit 0 when the commit is signed off
(a passing report, or a failing one accepted with a reason), 1 when it is not or the check could not be made.

For a local lakehouse, `ecom-pipeline signoff --check --commit SHA` makes the same check with Spark."""
import argparse, json, re, subprocess, sys

SQL = ("SELECT signed_by, CAST(signed_at AS STRING) AS signed_at, verdict, accepted, report FROM {table} "
       "WHERE git_commit = :commit AND (verdict = 'pass' OR accepted) ORDER BY signed_at DESC LIMIT 1")

def databricks(args: list, payload: dict|None=None):
    "Run the Databricks CLI and return its JSON output."
    cmd = ["databricks", *args] + (["--json", json.dumps(payload)] if payload is not None else [])
    try: r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError: raise SystemExit("require_signoff: the Databricks CLI is not on PATH (install 0.218 or later)") from None
    if r.returncode: raise RuntimeError(f"`databricks {' '.join(args[:2])}` failed: {' '.join(r.stderr.split())[:500]}")
    return json.loads(r.stdout or "null")

def warehouse_id(name: str) -> str:
    "The id of the SQL warehouse named `name`."
    for w in databricks(["warehouses", "list", "--output", "json"]) or []:
        if w.get("name") == name: return w["id"]
    raise RuntimeError(f"no SQL warehouse named {name!r}: give --warehouse-id")

def signoff_of(commit: str, catalog: str, warehouse: str) -> dict|None:
    "The latest sign-off of `commit` in `<catalog>.logs.qa_signoffs`, or None."
    payload = {"warehouse_id": warehouse, "statement": SQL.format(table=f"{catalog}.logs.qa_signoffs"), "wait_timeout": "50s",
               "on_wait_timeout": "CANCEL", "disposition": "INLINE", "format": "JSON_ARRAY",
               "parameters": [{"name": "commit", "value": commit, "type": "STRING"}]}
    r = databricks(["api", "post", "/api/2.0/sql/statements"], payload)
    status = r.get("status", {})
    if status.get("state") != "SUCCEEDED":
        msg = status.get("error", {}).get("message", "")
        if "TABLE_OR_VIEW_NOT_FOUND" in msg: return None # nobody ever signed off
        raise RuntimeError(f"the sign-off query ended {status.get('state')}: {msg[:500]}")
    cols = [c["name"] for c in r["manifest"]["schema"]["columns"]]
    rows = (r.get("result") or {}).get("data_array") or []
    return dict(zip(cols, rows[0])) if rows else None

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commit", required=True, help="the commit to deploy (40 hex digits, e.g. $(git rev-parse HEAD))")
    ap.add_argument("--catalog", default="ecommerce_catalog", help="production's catalog (default ecommerce_catalog)")
    ap.add_argument("--warehouse-id", default=None, help="SQL warehouse to query with (default: the one named --warehouse-name)")
    ap.add_argument("--warehouse-name", default="ecom_pipeline", help="looked up when --warehouse-id is not given (default ecom_pipeline)")
    a = ap.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{40}", a.commit): ap.error(f"--commit {a.commit!r} is not a full commit id (40 hex digits)")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", a.catalog): ap.error(f"--catalog {a.catalog!r} is not a plain identifier")
    try:
        row = signoff_of(a.commit, a.catalog, a.warehouse_id or warehouse_id(a.warehouse_name))
    except RuntimeError as e:
        print(f"require_signoff: could not check the sign-off of {a.commit}: {e}", file=sys.stderr); return 1
    if row is None:
        print(f"require_signoff: commit {a.commit} has no QA sign-off in {a.catalog}.logs.qa_signoffs: rebuild a candidate with "
              "it, `ecom-pipeline diff` it against production, read the report, then `ecom-pipeline signoff` (README, QA sign-off)",
              file=sys.stderr)
        return 1
    accepted = str(row.get("accepted")).lower() == "true"
    print(f"commit {a.commit} signed off by {row['signed_by']} at {row['signed_at']} UTC "
          f"({'a failing report, accepted' if accepted else 'verdict pass'}; report {row['report']})")
    return 0

if __name__ == "__main__":
    sys.exit(main())
