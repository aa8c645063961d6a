"""The bad-input corpus (tests/data/bad/): every line of every file ends where EXPECTED.csv says, nothing lost or invented."""
import csv, shutil
from collections import Counter
from datetime import date
from pathlib import Path
import pytest
from conftest import run_quiet
from ecom_pipeline.config import PipelineConfig

BAD = Path(__file__).parent/"data"/"bad"
DAY, NEXT_DAY = date(2018, 1, 4), date(2018, 1, 5)

def expected():
    with open(BAD/"EXPECTED.csv", newline="") as f:
        return {(r["file"], int(r["line"])): r["outcome"] for r in csv.DictReader(f)}

def test_corpus_has_every_kind_of_bad_input():
    names = {p.name for p in BAD.iterdir()}
    assert len([n for n in names if n.endswith((".csv", ".csv.gz"))]) - 1 >= 20     # minus EXPECTED.csv
    assert {"01_empty.csv", "02_header_only.csv", "03_utf8_bom.csv", "04_crlf.csv", "05_latin1.csv", "19_gzipped.csv.gz",
            "_SUCCESS"} <= names
    assert (BAD/"03_utf8_bom.csv").read_bytes().startswith(b"\xef\xbb\xbf") and b"\r\n" in (BAD/"04_crlf.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError): (BAD/"05_latin1.csv").read_bytes().decode("utf-8")

def test_every_line_of_the_bad_corpus_ends_where_expected(spark, clean_lakehouse, tmp_path):
    exp = expected()
    root = tmp_path/"landing"
    day, nxt = root/f"{DAY:%Y/%m/%d}", root/f"{NEXT_DAY:%Y/%m/%d}"
    day.mkdir(parents=True); nxt.mkdir(parents=True)
    for p in BAD.iterdir():
        if p.name in ("EXPECTED.csv", "README.md"): continue
        shutil.copy(p, (nxt if p.name == "18_missing_column.csv" else day)/p.name)
    cfg = PipelineConfig(source_root=str(root), warehouse=spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"),
                         max_quarantine_rate=1.0)   # this day is mostly bad on purpose
    t = cfg.tables
    s = run_quiet(spark, cfg, DAY)
    assert s.status == "succeeded" and s.ignored == ["_SUCCESS"] and s.unreadable_files == 1
    assert any("17_extra_column.csv: extra column(s) Coupon_Code kept in bronze _rescued_data" in w for w in s.warnings)

    name = lambda uri: Path(uri).name
    bronze = Counter((name(r.source_file), r.line_number) for r in spark.table(t.order_transactions).collect())
    assert max(bronze.values()) == 1                                        # no line twice in bronze
    silver = {(name(r.source_file), r.line_number): r for r in spark.table(t.orders_cleaned).collect()}
    errors = {(name(r.source_file), r.line_number): r for r in spark.table(t.etl_errors).collect()}
    assert len(errors) == spark.table(t.etl_errors).count()                 # one error row per line
    ledger = {name(r.file_key): r for r in spark.table(t.ingested_files).collect()}

    day_lines = {k: v for k, v in exp.items() if k[0] != "18_missing_column.csv"}
    # every data line of every readable file is in bronze, and bronze holds nothing else
    assert set(bronze) == {k for k, v in day_lines.items() if v != "rejected_file"}
    for (f, line), outcome in sorted(day_lines.items()):
        where = f"{f} line {line}"
        if outcome == "silver":
            assert (f, line) in silver and (f, line) not in errors, where
        elif outcome == "superseded":
            assert (f, line) not in silver and (f, line) not in errors, where
        elif outcome == "rejected_file":
            assert errors[(f, 1)].rule == "unknown_source" and f in errors[(f, 1)].reason and ledger[f].status == "rejected", where
            assert ledger[f].reason.startswith("unknown_source: ") and errors[(f, 1)].raw_record == "order,amount,when", where
        else:
            assert (f, line) not in silver and errors[(f, line)].rule == outcome, (where, errors.get((f, line)))
    assert len(silver) == sum(v == "silver" for v in day_lines.values())
    assert len(errors) == sum(v not in ("silver", "superseded", "rejected_file") for v in day_lines.values()) + 1
    # summary accounting: bronze = quarantined + superseded + order lines
    assert (s.bronze_rows, s.quarantined, s.duplicates, s.order_lines) == (
        len(bronze), len(errors) - 1, sum(v == "superseded" for v in day_lines.values()), len(silver))
    assert {f: ledger[f].line_count for f in ("01_empty.csv", "02_header_only.csv", "19_gzipped.csv.gz")} == {
        "01_empty.csv": 0, "02_header_only.csv": 0, "19_gzipped.csv.gz": 3}
    # values that survive: quoted comma and quote, the extra column in _rescued_data, a rounded price
    assert silver[("06_quoted_comma.csv", 2)].product_name == "Sofa, 3 seats"
    assert silver[("06_quoted_comma.csv", 3)].product_name == 'Said "hi" mug'
    rescued = {r.line_number: r._rescued_data for r in spark.table(t.order_transactions)
               .where("source_file LIKE '%17_extra_column.csv'").collect()}
    assert rescued == {2: '{"Coupon_Code":"SAVE10"}', 3: '{}'}
    assert str(silver[("12_prices.csv", 5)].unit_price) == "20.00"
    # the Latin-1 line keeps its original bytes (é as 0xE9) in the quarantine
    raw = spark.sql(f"SELECT hex(raw_record) AS h FROM {t.etl_errors} WHERE rule = 'encoding_invalid'").first().h
    assert "E9" in raw and "C3A9" not in raw

    # the next day: a file without Quantity is rejected whole, naming file and column; none of its lines is written
    s2 = run_quiet(spark, cfg, NEXT_DAY)
    assert s2.unreadable_files == 1 and any("18_missing_column.csv: rejected whole (missing_columns)" in w for w in s2.warnings)
    assert spark.table(t.order_transactions).where(f"landing_date = DATE'{NEXT_DAY}'").count() == 0
    row = spark.table(t.etl_errors).where(f"landing_date = DATE'{NEXT_DAY}'").collect()
    assert [(r.rule, r.line_number) for r in row] == [("missing_columns", 1)]
    assert "18_missing_column.csv" in row[0].reason and "missing required column(s) Quantity" in row[0].reason
    assert [r.status for r in spark.table(t.ingested_files).where(f"landing_date = DATE'{NEXT_DAY}'").collect()] == ["rejected"]
    runs = {r.run_date: r.status for r in spark.table(t.name("logs", "pipeline_runs")).collect()}
    assert runs == {DAY: "succeeded", NEXT_DAY: "succeeded"}

@pytest.mark.slow # make slow-test: keeps make test short (21_reference tests the line-numbered errors)
def test_a_bad_reference_file_is_rejected_naming_its_lines_and_the_previous_version_stays(spark, clean_lakehouse, tmp_path):
    "A promotions file with bad rows is not loaded: the run goes on with the version loaded before, and says which lines and rules."
    from datetime import timedelta
    from ecom_pipeline.sample_data import generate
    root = tmp_path/"landing"
    generate(str(root), DAY, 3, rows_per_day=60, seed=3) # 3 days: the promotions file has two rows
    good = (root/"reference"/"promotions.csv").read_text()
    cfg = PipelineConfig(source_root=str(root), warehouse=spark.conf.get("spark.sql.warehouse.dir").removeprefix("file:"))
    t = cfg.tables
    s1 = run_quiet(spark, cfg, DAY)
    assert s1.status == "succeeded" and "promotions.csv" in s1.reference_loaded
    before = sorted((r.promo_id, r.seed_version) for r in spark.table(t.promotions).collect())
    assert len(before) == len(good.strip().splitlines()) - 1
    (root/"reference"/"promotions.csv").write_text(good + "BAD-1,Too deep,Fashion,,2018-01-01,2018-01-09,1.5\n"
                                                   "BAD-2,No scope,,,2018-01-01,2017-12-01,0.1\n")
    s2 = run_quiet(spark, cfg, DAY + timedelta(days=1))
    assert s2.status == "succeeded" and s2.unreadable_files == 1 and s2.order_lines > 0 and s2.reference_loaded == []
    warning = next(w for w in s2.warnings if "promotions.csv" in w)
    assert str(root/"reference"/"promotions.csv") in warning and "the version loaded before stays in force" in warning
    err = spark.table(t.etl_errors).where("rule = 'reference_invalid'").collect()
    assert len(err) == 1 and err[0].source_file == str(root/"reference"/"promotions.csv")
    for part in ("3 problem(s)", "line 4: discount_rate_out_of_range: '1.5'", "line 5: scope_invalid", "line 5: end_before_start"):
        assert part in err[0].reason, err[0].reason
    assert sorted((r.promo_id, r.seed_version) for r in spark.table(t.promotions).collect()) == before
