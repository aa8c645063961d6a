"""Databricks shared and serverless compute (and Spark Connect) allow no RDD, no sparkContext, and no Python UDF where a
built-in column function exists. This scans the package source for them."""
import ast, re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]/"ecom_pipeline"
FORBIDDEN = {
    r"\bsparkContext\b": "SparkContext is not available on shared/serverless compute or Spark Connect",
    r"\bSparkContext\b": "SparkContext is not available on shared/serverless compute or Spark Connect",
    r"\.rdd\b": "RDD APIs are not available on shared/serverless compute or Spark Connect",
    r"\bparallelize\(": "RDD APIs are not available on shared/serverless compute or Spark Connect",
    r"\bmapPartitions\(": "RDD APIs are not available on shared/serverless compute or Spark Connect",
    r"\budf\b|\bpandas_udf\b|\budtf\b": "Python UDFs are slow and restricted; use built-in column functions",
    r"\b_jvm\b|\b_jsc\b|\b_jdf\b|\b_jsparkSession\b": "JVM internals are not reachable through Spark Connect",
    r"\bsetLogLevel\(": "needs sparkContext; logging is configured with the log4j2 profile instead",
}
# (file, pattern) -> why it is allowed. Keep it short; every entry needs a reason.
ALLOWED = {}

def code_without_strings_and_comments(src: str) -> str:
    "The source with string literals and comments blanked, so docs that *mention* an API do not count."
    tree = ast.parse(src)
    lines = src.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and hasattr(node, "end_lineno"):
            for ln in range(node.lineno - 1, node.end_lineno):
                lines[ln] = lines[ln][:node.col_offset] + " " * max(0, len(lines[ln]) - node.col_offset) if ln == node.lineno - 1 else ""
    return "\n".join(re.sub(r"#.*$", "", l) for l in lines)

def test_package_uses_no_rdd_sparkcontext_or_python_udf():
    found = []
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 10
    for f in files:
        code = code_without_strings_and_comments(f.read_text())
        for pat, why in FORBIDDEN.items():
            for m in re.finditer(pat, code):
                if (f.name, pat) in ALLOWED: continue
                line = code[:m.start()].count("\n") + 1
                found.append(f"{f.name}:{line}: {m.group(0)!r}: {why}")
    assert not found, "\n".join(found)

def test_the_scan_catches_what_it_should():
    bad = "df.rdd.map(lambda r: r)\nspark.sparkContext.setLogLevel('WARN')\nf = F.udf(lambda x: x)\n"
    code = code_without_strings_and_comments(bad)
    hits = {pat for pat in FORBIDDEN if re.search(pat, code)}
    assert {r"\.rdd\b", r"\bsparkContext\b", r"\budf\b|\bpandas_udf\b|\budtf\b", r"\bsetLogLevel\("} <= hits
    assert not re.search(r"\.rdd\b", code_without_strings_and_comments('"a docstring about df.rdd" # and df.rdd here'))
