"""Hostile input, the parts that need no Spark: land never overwrites, staged S3 copies are the listed version, SMTP logins
need TLS, nothing is found by looking in the working folder, and the file checks (header, names, limits)."""
import gzip, os
from datetime import date
from pathlib import Path
import pytest
from ecom_pipeline.landing import LocalStore, S3Store, land, scan_file, unsafe_name
from ecom_pipeline.sources import detect_source, find_header

HEADER = "Order_Date,Time,Aging,Customer_Id,Gender,Device_Type,Customer_Login_type,Product_Category,Product,Sales,Quantity,Discount"

def export(tmp_path, name, *rows, before=""):
    p = tmp_path/"exports"/name
    p.parent.mkdir(exist_ok=True)
    p.write_text(before + "\n".join([HEADER, *rows]) + "\n")
    return p

def row(d="1/2/2018", cust="1"):
    return f"{d},10:00:00,1,{cust},Male,Web,Member,Fashion,Jeans,10,1,0"

@pytest.mark.parametrize("where", ["local", "s3"])
def test_land_never_overwrites_a_landed_file(tmp_path, where, request):
    if where == "s3":
        client, bucket = request.getfixturevalue("s3")
        root, store = f"s3://{bucket}/raw", S3Store(f"s3://{bucket}/raw", client)
    else:
        client, root = None, str(tmp_path/"landing")
        store = LocalStore(root)
    first = export(tmp_path, "orders.csv", row(cust="1"), row(cust="2"), before="\n \n") # blank lines before the header
    s = land([str(first)], root, client)
    assert s.lines == 2 and s.written == [store.uri("2018/01/02/orders.csv")] and not s.renamed
    assert store.read("2018/01/02/orders.csv") == f"{HEADER}\n{row(cust='1')}\n{row(cust='2')}\n".encode()
    again = land([str(first)], root, client) # the same export again: the same bytes are there, nothing written
    assert again.written == [] and again.already == [store.uri("2018/01/02/orders.csv")]
    other = export(tmp_path, "orders.csv", row(cust="3")) # another export of the same name: a new name, the first kept
    third = land([str(other)], root, client)
    assert third.renamed == [(store.uri("2018/01/02/orders.csv"), store.uri("2018/01/02/orders-2.csv"))]
    assert store.read("2018/01/02/orders-2.csv").decode().splitlines()[1] == row(cust="3")
    assert store.read("2018/01/02/orders.csv").decode().count("\n") == 3 # the first one, unchanged
    assert "written as" in str(third)
    with pytest.raises(FileExistsError): store.put("2018/01/02/orders.csv", b"x")

def test_staged_s3_copy_is_the_listed_version_whatever_its_etag(s3, tmp_path):
    "If-Match on the ETag: a multipart object (ETag not an MD5) stages; an object changed after listing is refused."
    client, bucket = s3
    store = S3Store(f"s3://{bucket}/raw", client)
    body = (HEADER + "\n" + "\n".join(row(cust=str(i)) for i in range(200_000)) + "\n").encode()
    mpu = client.create_multipart_upload(Bucket=bucket, Key="raw/2018/01/02/big.csv")
    half = 5 * 1024 * 1024
    parts = [client.upload_part(Bucket=bucket, Key="raw/2018/01/02/big.csv", UploadId=mpu["UploadId"], PartNumber=n, Body=b)
             for n, b in ((1, body[:half]), (2, body[half:]))]
    client.complete_multipart_upload(Bucket=bucket, Key="raw/2018/01/02/big.csv", UploadId=mpu["UploadId"],
                                     MultipartUpload={"Parts": [{"ETag": p["ETag"], "PartNumber": i + 1} for i, p in enumerate(parts)]})
    store.put("2018/01/02/small.csv", (HEADER + "\n" + row() + "\n").encode())
    store.put("2018/01/02/empty.csv", b"")
    files, _ = store.list_day(date(2018, 1, 2))
    big, empty, small = files
    assert "-" in big.etag # a multipart ETag: no MD5 of the content to compare with
    assert Path(store.spark_path(big, tmp_path/"stage")).read_bytes() == body
    assert store.head(empty) == b"" # no Range request on an empty object (S3 answers InvalidRange)
    store.put("2018/01/02/small.csv", b"changed after listing", overwrite=True)
    with pytest.raises(OSError, match="small.csv: changed since it was listed"):
        store.spark_path(small, tmp_path/"stage")

def test_smtp_login_needs_tls_unless_opted_out():
    from ecom_pipeline.alerts import AlertConfig
    env = {"ECOM_SMTP_HOST": "mail.shop.test", "ECOM_SMTP_USER": "bot", "ECOM_SMTP_PASSWORD": "pw"}
    with pytest.raises(ValueError, match="needs TLS"): AlertConfig.from_env(env)
    assert AlertConfig.from_env({**env, "ECOM_SMTP_STARTTLS": "1"}).smtp_starttls
    assert AlertConfig.from_env({**env, "ECOM_SMTP_PLAINTEXT_LOGIN": "1"}).smtp_plaintext_login
    assert AlertConfig.from_env({"ECOM_SMTP_HOST": "relay"}).smtp_user is None # no login: nothing to protect

def test_nothing_is_found_by_looking_in_the_working_folder(tmp_path, monkeypatch):
    import ecom_pipeline
    from ecom_pipeline.dashboard import dashboards_dir
    from ecom_pipeline.orchestration import project_notebook
    planted = tmp_path/"a"/"b"
    (tmp_path/"nbs"/"runs").mkdir(parents=True); (tmp_path/"nbs"/"runs"/"daily_run.ipynb").write_text("{}")
    (tmp_path/"dashboards"/"queries").mkdir(parents=True)
    planted.mkdir(parents=True)
    monkeypatch.chdir(planted)
    monkeypatch.delenv("ECOM_NOTEBOOKS_DIR", raising=False); monkeypatch.delenv("ECOM_DASHBOARDS_DIR", raising=False)
    home = Path(ecom_pipeline.__file__).resolve().parent.parent
    assert project_notebook() == home/"nbs"/"runs"/"daily_run.ipynb"
    assert dashboards_dir() == home/"dashboards"
    monkeypatch.setenv("ECOM_NOTEBOOKS_DIR", str(tmp_path/"nbs")) # an explicit path is the way to another notebook
    assert project_notebook() == tmp_path/"nbs"/"runs"/"daily_run.ipynb"

def test_header_is_the_first_non_blank_line():
    assert find_header(b"") == (0, None, True) and find_header(b" \r\n\t\n") == (0, None, True)
    assert find_header(b"\n\nA,B\n1,2\n") == (3, "A,B", True)
    assert find_header(b"\xef\xbb\xbf\r\n A,B\r\n") == (2, " A,B", True)
    assert find_header(b"A,B") == (1, "A,B", False) # the bytes end inside the header line

def test_unsafe_names_and_a_wide_header_are_checked_quickly():
    for n in ("*.csv", "a?.csv", "[x].csv", "{a,b}.csv", "a:b.csv", "a\\b.csv", "a\nb.csv"): assert unsafe_name(n), n
    for n in ("orders.csv", "Order Details (2).csv", "x-y_z.csv.gz"): assert unsafe_name(n) is None, n
    import time
    t0 = time.time()
    from ecom_pipeline.sources import UnknownSourceError
    with pytest.raises(UnknownSourceError, match="repeats column"): detect_source([f"c{i % 50_000}" for i in range(100_000)])
    assert time.time() - t0 < 5 # linear, not quadratic in the number of columns

def test_scan_file_finds_each_limit(tmp_path):
    def scan(data: bytes, gz=False):
        p = tmp_path/("f.csv.gz" if gz else "f.csv"); p.write_bytes(gzip.compress(data) if gz else data)
        r = scan_file(p, gz, max_line_bytes=100, max_decompressed_bytes=10_000)
        return r and r[0]
    assert scan(b"a,b\n" + b"1,2\n" * 1000) is None
    assert scan(b"a,b\n" + b"x" * 101 + b"\n") == "line_too_long"
    assert scan(b"a,b\n" + b"x" * 60 + b"\n" + b"y" * 60) is None # each line under the limit
    assert scan(b"a,b\n" + b"x" * (3 << 20)) == "line_too_long" # a line across many chunks
    assert scan(b"a,b\n1,\x00\n") == "nul_byte"
    assert scan(b"a,b\n" + b"1,2\n" * 5000, gz=True) == "decompressed_too_large"
    assert scan(b"a,b\n" + b"1,2\n" * 100, gz=True) is None
    p = tmp_path/"bad.csv.gz"; p.write_bytes(b"not gzip")
    assert scan_file(p, True, 100, 10_000)[0] == "gzip_invalid"
    link = tmp_path/"link.csv"; os.symlink(tmp_path/"f.csv", link)
    with pytest.raises(OSError): scan_file(link, False, 100, 100) # a link is never opened
