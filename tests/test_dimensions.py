"""Dimensions through the pipeline: a Guest who becomes a Member mid-history gets two versions, every order line joins
the version valid at its order time (a late line too), a rerun changes nothing, and a price list that lands reprices."""
import pytest
from datetime import date, datetime
from decimal import Decimal
from conftest import run_quiet
from test_rules_and_corrections import cfg_for, line, write

D1, D2, D3 = date(2018, 3, 1), date(2018, 3, 2), date(2018, 3, 3)

def as_(login: str, **kw) -> str:
    "A line of customer `cust` with this login type (the helper's lines are Web Members)."
    return line(**kw).replace(",Web,Member,", f",Web,{login},")

@pytest.mark.slow # make slow-test (the e2e test checks every version and key against plain Python in make test)
def test_guest_turns_member_two_versions_each_line_its_version_and_a_price_list(spark, clean_lakehouse, tmp_path):
    write(tmp_path, D1, "a.csv", [as_("Guest", date="3/1/2018", time="10:00:00", cust="501", prod="Cap", sales="10"),
                                  as_("Member", date="3/1/2018", time="11:00:00", cust="502", prod="Cap", sales="10")])
    write(tmp_path, D2, "b.csv", [as_("Member", date="3/2/2018", time="9:00:00", cust="501", prod="Cap", sales="12"),
                                  as_("Guest", date="3/1/2018", time="23:00:00", cust="501", prod="Jeans", sales="30")]) # late line
    cfg = cfg_for(tmp_path, spark)
    t = cfg.tables
    for d in (D1, D2): assert run_quiet(spark, cfg, d).status == "succeeded"

    versions = [tuple(r) for r in spark.table(t.customers).where("customer_id = '501'").orderBy("valid_from")
                .select("login_type", "valid_from", "valid_to", "is_current", "customer_key").collect()]
    assert [v[:4] for v in versions] == [("guest", datetime(2018, 3, 1, 10), datetime(2018, 3, 2, 9), False),
                                         ("member", datetime(2018, 3, 2, 9), None, True)]
    guest, member = versions[0][4], versions[1][4]
    keys = {(r.order_ts, r.product_name): r.customer_key for r in
            spark.table(t.orders_cleaned).where("customer_id = '501'").select("order_ts", "product_name", "customer_key").collect()}
    assert keys == {(datetime(2018, 3, 1, 10), "Cap"): guest, (datetime(2018, 3, 2, 9), "Cap"): member,
                    (datetime(2018, 3, 1, 23), "Jeans"): guest}   # the late line: the version valid at its time
    assert spark.table(t.customers).where("customer_id = '502'").count() == 1

    cap = spark.table(t.products).where("product_name = 'Cap'").first()
    assert (cap.first_seen, cap.last_seen, cap.list_price, cap.list_price_source) == (D1, D2, Decimal("12.00"), "latest_line")

    # a forced rerun of day 2 opens no version and keeps every key
    assert run_quiet(spark, cfg, D2, force=True).status == "succeeded"
    assert [tuple(r) for r in spark.table(t.customers).where("customer_id = '501'").orderBy("valid_from")
            .select("login_type", "valid_from", "valid_to", "is_current", "customer_key").collect()] == versions
    assert spark.table(t.orders_cleaned).where("customer_key IS NULL OR product_key IS NULL").count() == 0

    # the shop's price list lands: the next run reprices the product, whatever day it brings
    (tmp_path/"reference").mkdir(exist_ok=True)
    (tmp_path/"reference"/"products.csv").write_text("product_name,product_category,list_price\ncap,Fashion,14.99\n")
    write(tmp_path, D3, "c.csv", [as_("Member", date="3/3/2018", time="8:00:00", cust="502", prod="Jeans", sales="30")])
    s = run_quiet(spark, cfg, D3)
    assert s.status == "succeeded" and "products.csv" in s.reference_loaded
    got = {r.product_name: (r.list_price, r.list_price_source, r.feed_list_price, r.last_seen) for r in spark.table(t.products).collect()}
    assert got == {"Cap": (Decimal("14.99"), "price_list", Decimal("12.00"), D2),
                   "Jeans": (Decimal("30.00"), "latest_line", Decimal("30.00"), D3)}
