"""An independent, plain-Python reading of the data contract, to check the pipeline against.

It shares no code with ecom_pipeline: it parses the CSV lines with the csv module, applies the quarantine rules,
computes money with Decimal (ROUND_HALF_UP), keeps the latest copy of each order line and aggregates gold.
"""
import csv, io, math, re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, ROUND_HALF_UP
from fractions import Fraction

COLUMNS = ("Order_Date,Time,Aging,Customer_Id,Gender,Device_Type,Customer_Login_type,Product_Category,Product,"
           "Sales,Quantity,Discount,Profit,Shipping_Cost,Order_Priority,Payment_method").split(",")
CENT = Decimal("0.01")
NUM = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")

def money(s):
    if s is None or not NUM.match(s): return None
    v = Decimal(s).quantize(CENT, ROUND_HALF_UP)
    return v if abs(v) < Decimal(10) ** 16 else None

def parse_date(s):
    m = re.match(r"^(\d{1,2})/(\d{1,2})/(\d{4})$", s) or None
    try:
        if m: return date(int(m.group(3)), int(m.group(1)), int(m.group(2)))
        if re.match(r"^\d{4}-\d{2}-\d{2}$", s): return date.fromisoformat(s)
    except ValueError: return None
    return None

def parse_time(s):
    m = re.match(r"^(\d{1,2}):(\d{2}):(\d{2})$", s)
    if not m: return None
    h, mi, se = map(int, m.groups())
    return time(h, mi, se) if h < 24 and mi < 60 and se < 60 else None

@dataclass
class Line:
    source_file: str
    landing_date: date
    line_number: int
    raw: str
    rule: str = None
    rec: dict = None

def read_file(source_file: str, landing_date: date, data: bytes, max_discount: Decimal=Decimal(1)) -> list:
    "Every data line of one export, classified: `rule` is the first quarantine rule it breaks, or None (`max_discount`: a stricter rule)."
    text = data.decode("utf-8")
    physical = re.split(r"\r\n|\n|\r", text)
    if physical and physical[-1] == "": physical.pop()
    header = [h.strip() for h in next(csv.reader([physical[0].lstrip("\ufeff")]))]
    out = []
    for n, raw in enumerate(physical[1:], start=2):
        ln = Line(source_file, landing_date, n, raw)
        out.append(ln)
        try: fields = next(csv.reader([raw], strict=True))
        except (csv.Error, StopIteration): fields = None
        if fields is None or len(fields) != len(header) or ('"' in raw and not _well_quoted(raw)):
            ln.rule = "malformed_line"; continue
        f = {h: (v.strip() or None) for h, v in zip(header, fields)}
        d, t = parse_date(f["Order_Date"] or ""), parse_time(f["Time"] or "")
        cid = f["Customer_Id"]
        if cid: cid = re.sub(r"^(\d+)\.0+$", r"\1", cid)
        q = f["Quantity"] or ""
        qty = int(q.split(".")[0]) if re.match(r"^[+-]?\d+(\.0+)?$", q) else None
        price = money(f["Sales"])
        disc = Decimal("0") if f["Discount"] is None else (Decimal(f["Discount"]) if NUM.match(f["Discount"]) else None)
        if d is None: ln.rule = "order_date_invalid"
        elif t is None: ln.rule = "order_time_invalid"
        elif not cid: ln.rule = "customer_id_missing"
        elif qty is None or qty <= 0: ln.rule = "quantity_invalid"
        elif price is None or price < 0: ln.rule = "unit_price_invalid"
        elif disc is None or disc < 0 or disc > max_discount: ln.rule = "discount_out_of_range"
        if ln.rule: continue
        gross = (price * qty).quantize(CENT, ROUND_HALF_UP)
        discount = (gross * disc).quantize(CENT, ROUND_HALF_UP)
        ts = datetime.combine(d, t)
        ln.rec = dict(customer_id=cid, ts=ts, order_date=d, category=f["Product_Category"] or "unknown",
                      product=f["Product"] or "unknown", quantity=qty, gross=gross, discount=discount,
                      net=gross - discount, profit=money(f["Profit"]) or Decimal("0"), price=price,
                      login=_label(f["Customer_Login_type"]), device=_label(f["Device_Type"]))
    return out

def _label(v):
    "Lower snake case, as a category label is standardized; empty is None."
    return re.sub(r"[^a-z0-9]+", "_", v.strip().lower()).strip("_") or None if v else None

def _well_quoted(raw: str) -> bool:
    "Every double quote belongs to a field that is quoted from start to end."
    return re.sub(r'"(?:[^"]|"")*"', "", raw).count('"') == 0

def latest(lines: list) -> dict:
    "Valid lines, one per order line key: the latest by landing date, file, line number."
    best = {}
    for ln in lines:
        if ln.rule: continue
        k = (ln.rec["customer_id"], ln.rec["ts"], ln.rec["product"])
        ver = (ln.landing_date, ln.source_file, ln.line_number)
        if k not in best or ver > best[k][0]: best[k] = (ver, ln.rec)
    return {k: r for k, (v, r) in best.items()}

def by_date_and_category(recs) -> dict:
    "(order_date, category) -> records, with an ALL group per date: the grain of sales_metrics."
    groups = defaultdict(list)
    for r in recs:
        groups[(r["order_date"], r["category"])].append(r); groups[(r["order_date"], "ALL")].append(r)
    return groups

def sales_metrics(recs) -> dict:
    "(order_date, category) -> metrics dict, with the ALL rows."
    groups = by_date_and_category(recs)
    out = {}
    for k, rs in groups.items():
        orders = len({(r["customer_id"], r["ts"]) for r in rs})
        net = sum((r["net"] for r in rs), Decimal("0.00"))
        out[k] = dict(is_all_categories=k[1] == "ALL", # the test data has no category named ALL
                      orders=orders, units=sum(r["quantity"] for r in rs), customers=len({r["customer_id"] for r in rs}),
                      gross_revenue=sum((r["gross"] for r in rs), Decimal("0.00")),
                      discount_amount=sum((r["discount"] for r in rs), Decimal("0.00")), net_revenue=net,
                      profit_amount=sum((r["profit"] for r in rs), Decimal("0.00")),
                      avg_order_value=(net / orders).quantize(CENT, ROUND_HALF_UP))
    return out

def customer_lifetime_value(recs) -> dict:
    by = defaultdict(list)
    for r in recs: by[r["customer_id"]].append(r)
    out = {}
    for c, rs in by.items():
        orders = len({r["ts"] for r in rs})
        net = sum((r["net"] for r in rs), Decimal("0.00"))
        out[c] = dict(first_order_date=min(r["order_date"] for r in rs), last_order_date=max(r["order_date"] for r in rs),
                      lifetime_orders=orders, lifetime_units=sum(r["quantity"] for r in rs), lifetime_net_revenue=net,
                      avg_order_value=(net / orders).quantize(CENT, ROUND_HALF_UP))
    return out

def daily_customer_sales(recs) -> dict:
    "(order_date, customer_id) -> (orders, net revenue)."
    by = defaultdict(list)
    for r in recs: by[(r["order_date"], r["customer_id"])].append(r)
    return {k: (len({r["ts"] for r in rs}), sum((r["net"] for r in rs), Decimal("0.00"))) for k, rs in by.items()}

def read_promotions(text: str) -> list:
    "A promotions file as dicts: scope lower-cased, dates and rate parsed."
    out = []
    for r in csv.DictReader(io.StringIO(text)):
        out.append(dict(promo_id=r["promo_id"], category=(r.get("product_category") or "").strip().lower() or None,
                        product=(r.get("product_name") or "").strip().lower() or None, start=date.fromisoformat(r["start_date"]),
                        end=date.fromisoformat(r["end_date"]), rate=Decimal(r["discount_rate"])))
    return out

def _in_scope(p: dict, r: dict) -> bool:
    return r["product"].strip().lower() == p["product"] if p["product"] else r["category"].strip().lower() == p["category"]

def flag_promotions(recs, promos: list):
    "Set each record's `promo_id` (the active promotion with the highest discount, then the larger id) and its USD net (USD source)."
    for r in recs:
        active = [p for p in promos if p["start"] <= r["order_date"] <= p["end"] and _in_scope(p, r)]
        r["promo_id"] = max(active, key=lambda p: (p["rate"], p["promo_id"]))["promo_id"] if active else None
        r["net_usd"] = r["net"]

def promo_metrics(recs) -> dict:
    "(order_date, category) -> the reporting-currency (USD) and promotion figures of sales_metrics, with the ALL rows."
    groups = by_date_and_category(recs)
    return {k: dict(net_revenue=sum((r["net_usd"] for r in rs), Decimal("0.00")),
                    promo_net_revenue=sum((r["net_usd"] for r in rs if r["promo_id"]), Decimal("0.00")),
                    promo_orders=len({(r["customer_id"], r["ts"]) for r in rs if r["promo_id"]})) for k, rs in groups.items()}

def promotion_performance(recs, promos: list) -> dict:
    "(promo_id, order_date) -> (scope net USD, own net USD, own orders, baseline, baseline days, lift) for the days with data."
    recs = list(recs)
    data_days = {r["order_date"] for r in recs}
    out = {}
    for p in promos:
        scope = [r for r in recs if _in_scope(p, r)]
        rev = lambda d: sum((r["net_usd"] for r in scope if r["order_date"] == d), Decimal("0.00"))
        d = p["start"]
        while d <= p["end"]:
            if d in data_days:
                before = [p["start"] - timedelta(days=k) for k in range(1, 29)]
                base_days = [b for b in before if b.weekday() == d.weekday() and b in data_days]
                avg = (sum((rev(b) for b in base_days), Decimal("0")) / len(base_days)).quantize(Decimal("0.000001"), ROUND_HALF_UP) if base_days else None
                own = [r for r in scope if r["order_date"] == d and r["promo_id"] == p["promo_id"]]
                out[(p["promo_id"], d)] = (rev(d), sum((r["net_usd"] for r in own), Decimal("0.00")),
                                           len({(r["customer_id"], r["ts"]) for r in own}),
                                           avg.quantize(CENT, ROUND_HALF_UP) if avg is not None else None, len(base_days),
                                           float(rev(d)) / float(avg) - 1 if avg else None)
            d += timedelta(days=1)
    return out

def products(recs) -> dict:
    "product -> (first order date, last order date, {(category, unit price) of its lines at its latest order time})."
    by = defaultdict(list)
    for r in recs: by[r["product"]].append(r)
    out = {}
    for p, rs in by.items():
        top = max(r["ts"] for r in rs)
        out[p] = (min(r["order_date"] for r in rs), max(r["order_date"] for r in rs),
                  {(r["category"], r["price"]) for r in rs if r["ts"] == top})
    return out

def customer_versions(lines: list, landing_days: list) -> dict:
    """customer_id -> [(login, device, valid_from, valid_to)], type 2 as processed: the landing days in order, each day's
    latest lines; a line after the current version whose attributes (a missing one carried forward) differ opens a version."""
    versions = defaultdict(list)
    for d in landing_days:
        by = defaultdict(lambda: defaultdict(list)) # customer -> order time -> lines
        for r in latest([ln for ln in lines if ln.landing_date == d]).values(): by[r["customer_id"]][r["ts"]].append(r)
        for c, at in by.items():
            vs = versions[c]
            state = vs[-1][:2] if vs else (None, None)
            for ts in sorted(t for t in at if not vs or t > vs[-1][2]):
                cands = {(r["login"] or state[0], r["device"] or state[1]) for r in at[ts]}
                assert len(cands) == 1, f"customer {c} has lines with different attributes at {ts}: {cands}"
                new = cands.pop()
                if vs and new == state: continue
                if vs: vs[-1] = vs[-1][:3] + (ts,)
                vs.append(new + (ts, None)); state = new
    return dict(versions)

def customer_summary(recs, as_of: date) -> dict:
    "customer_id -> the BG/NBD and Gamma-Gamma inputs over purchase days up to `as_of`, lifetime and last-365-day net revenue."
    by = defaultdict(lambda: defaultdict(list))
    for r in recs:
        if r["customer_id"] and r["order_date"] <= as_of: by[r["customer_id"]][r["order_date"]].append(r)
    out = {}
    for c, days in by.items():
        ds = sorted(days)
        net = {d: sum((r["net"] for r in days[d]), Decimal("0.00")) for d in ds}
        total, f = sum(net.values(), Decimal("0.00")), len(ds) - 1
        out[c] = dict(frequency=f, recency=(ds[-1] - ds[0]).days, T=(as_of - ds[0]).days,
                      monetary_value=float((total - net[ds[0]]) / f) if f else 0.0,
                      lifetime_orders=len({r["ts"] for d in ds for r in days[d]}), lifetime_net_revenue=total,
                      historical_value_12m=sum((v for d, v in net.items() if d > as_of - timedelta(days=365)), Decimal("0.00")))
    return out

def rfm(summary: dict) -> dict:
    "customer_id -> (recency, frequency, monetary) quintile: ceil(5 x rank / n), tied customers at their average rank (exact fractions)."
    def quintiles(values: dict) -> dict:
        items, out, i = sorted(values.items(), key=lambda kv: kv[1]), {}, 0
        n = len(items)
        while i < n:
            j = i
            while j + 1 < n and items[j + 1][1] == items[i][1]: j += 1
            score = max(1, min(5, math.ceil(Fraction(5 * (i + 1 + j + 1), 2 * n))))
            for k in range(i, j + 1): out[items[k][0]] = score
            i = j + 1
        return out
    r = quintiles({c: -(s["T"] - s["recency"]) for c, s in summary.items()})
    f = quintiles({c: s["lifetime_orders"] for c, s in summary.items()})
    m = quintiles({c: s["lifetime_net_revenue"] for c, s in summary.items()})
    return {c: (r[c], f[c], m[c]) for c in summary}

# --- the other sources: UCI Online Retail (GBP) and the Indian two-file export (INR) --------------------------------
UCI_FEES = {"POST", "M", "D", "DOT", "BANK CHARGES", "AMAZONFEE", "CRUK"}

def _csv_rows(data: bytes):
    "(line number, raw line, {column: stripped value or None}) of each data line of an export."
    physical = re.split(r"\r\n|\n|\r", data.decode("utf-8"))
    if physical and physical[-1] == "": physical.pop()
    header = [h.strip() for h in next(csv.reader([physical[0].lstrip("\ufeff")]))]
    for n, raw in enumerate(physical[1:], start=2):
        yield n, raw, dict(zip(header, [v.strip() or None for v in next(csv.reader([raw]))]))

def _whole(s):
    return int(s.split(".")[0]) if s and re.match(r"^[+-]?\d+(\.0+)?$", s) else None

def read_uci(source_file: str, landing_date: date, data: bytes) -> list:
    "Every data line of a UCI Online Retail export, classified; `rec['key']` is invoice, stock code, quantity and price."
    out = []
    for n, raw, f in _csv_rows(data):
        ln = Line(source_file, landing_date, n, raw)
        out.append(ln)
        ts = None
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M"):
            try: ts = datetime.strptime(f["InvoiceDate"] or "", fmt); break
            except ValueError: pass
        qty, price, ret = _whole(f["Quantity"]), money(f["UnitPrice"]), (f["InvoiceNo"] or "").startswith("C")
        if ts is None: ln.rule = "order_date_invalid"
        elif qty is None or qty == 0 or (qty < 0) != ret: ln.rule = "quantity_invalid"   # a negative quantity is a return's
        elif price is None or price < 0: ln.rule = "unit_price_invalid"
        if ln.rule: continue
        cid = re.sub(r"^(\d+)\.0+$", r"\1", f["CustomerID"]) if f["CustomerID"] else None
        net = (price * qty).quantize(CENT, ROUND_HALF_UP)
        ln.rec = dict(key=("uci_online_retail", f["InvoiceNo"], f["StockCode"], qty, price), source="uci_online_retail",
                      order_id=f["InvoiceNo"], customer_id=cid, ts=ts, order_date=ts.date(), category="unknown",
                      product=f["Description"] or "unknown", quantity=qty, net=net, currency="GBP", is_return=ret,
                      non_product=(f["StockCode"] or "").upper() in UCI_FEES)
    return out

def read_indian(orders_file: str, details_file: str, landing_date: date, orders: bytes, details: bytes) -> tuple:
    "(classified detail lines, blank lines of both files): details join their order's header line on Order ID."
    heads, blank, out = {}, 0, []
    for _n, _raw, f in _csv_rows(orders):
        if not any(f.values()): blank += 1; continue
        if f["Order ID"]: heads[f["Order ID"]] = f                          # a later line of the same order wins
    for n, raw, f in _csv_rows(details):
        if not any(f.values()): blank += 1; continue
        ln = Line(details_file, landing_date, n, raw)
        out.append(ln)
        h = heads.get(f["Order ID"])
        try: d = datetime.strptime(h["Order Date"] or "", "%d-%m-%Y").date() if h else None
        except ValueError: d = None
        qty, amount, profit = _whole(f["Quantity"]), money(f["Amount"]), money(f.get("Profit"))
        if h is None: ln.rule = "order_header_missing"
        elif d is None: ln.rule = "order_date_invalid"
        elif not h["CustomerName"]: ln.rule = "customer_id_missing"
        elif qty is None or qty <= 0: ln.rule = "quantity_invalid"
        elif amount is None or amount < 0: ln.rule = "unit_price_invalid"
        if ln.rule: continue
        cat, sub = f["Category"] or "unknown", f["Sub-Category"] or "unknown"
        ln.rec = dict(key=("indian_ecommerce", f["Order ID"], cat, sub, qty, amount, profit), source="indian_ecommerce",
                      order_id=f["Order ID"], customer_id=h["CustomerName"], ts=datetime.combine(d, time()), order_date=d,
                      category=cat, product=sub, quantity=qty, net=amount, currency="INR", is_return=False, non_product=False)
    return out, blank

def latest_by_key(lines: list) -> dict:
    "Valid lines of any source, one per `rec['key']`: the latest by landing date, file, line number."
    best = {}
    for ln in lines:
        if ln.rule: continue
        ver = (ln.landing_date, ln.source_file, ln.line_number)
        if ln.rec["key"] not in best or ver > best[ln.rec["key"]][0]: best[ln.rec["key"]] = (ver, ln.rec)
    return {k: r for k, (v, r) in best.items()}

def read_fx(text: str) -> dict:
    "currency -> sorted [(date, rate)] of an fx_rates.csv."
    out = defaultdict(list)
    for r in csv.DictReader(io.StringIO(text)): out[r["currency"]].append((date.fromisoformat(r["date"]), Decimal(r["rate_to_usd"])))
    return {c: sorted(v) for c, v in out.items()}

def to_usd(recs, fx: dict):
    "Set each record's `net_usd`: its net times the rate of its order date, or of the latest day before it (half up to the cent)."
    for r in recs:
        rate = Decimal(1) if r["currency"] == "USD" else [x for d, x in fx[r["currency"]] if d <= r["order_date"]][-1]
        r["net_usd"] = (r["net"] * rate).quantize(CENT, ROUND_HALF_UP)

def reporting_metrics(recs) -> dict:
    "(order_date, category) -> sales_metrics of several sources in USD, the reporting currency: product lines only, returns netted."
    groups = by_date_and_category(recs)
    out = {}
    for k, rs in groups.items():
        prod = [r for r in rs if not r["non_product"]]
        total = lambda xs, f=lambda r: r["net_usd"]: sum((f(r) for r in xs), Decimal("0.00"))
        orders = len({(r["source"], r["order_id"]) for r in prod if not r["is_return"]})
        out[k] = dict(reporting_currency="USD", orders=orders, units=sum(r["quantity"] for r in prod),
                      net_revenue=total(prod), returns_amount=-total([r for r in prod if r["is_return"]]),
                      non_product_net_revenue=total([r for r in rs if r["non_product"]]),
                      avg_order_value=(total(prod) / orders).quantize(CENT, ROUND_HALF_UP) if orders else None)
    return out

def by_currency_metrics(recs) -> dict:
    "(order_date, currency, category) -> sales_metrics_by_currency: net revenue, orders and returns in the lines' own currency."
    groups = defaultdict(list)
    for r in recs:
        groups[(r["order_date"], r["currency"], r["category"])].append(r); groups[(r["order_date"], r["currency"], "ALL")].append(r)
    out = {}
    for k, rs in groups.items():
        prod = [r for r in rs if not r["non_product"]]
        out[k] = dict(orders=len({(r["source"], r["order_id"]) for r in prod if not r["is_return"]}),
                      net_revenue=sum((r["net"] for r in prod), Decimal("0.00")),
                      returns_amount=-sum((r["net"] for r in prod if r["is_return"]), Decimal("0.00")),
                      non_product_net_revenue=sum((r["net"] for r in rs if r["non_product"]), Decimal("0.00")))
    return out

def clv_by_source(recs) -> dict:
    "(source, customer_id) -> lifetime orders (not returns) and net revenue in USD (`to_usd` first), product lines of known customers."
    by = defaultdict(list)
    for r in recs:
        if r["customer_id"] and not r["non_product"]: by[(r["source"], r["customer_id"])].append(r)
    return {k: (len({r["order_id"] for r in rs if not r["is_return"]}), sum((r["net_usd"] for r in rs), Decimal("0.00")))
            for k, rs in by.items()}
