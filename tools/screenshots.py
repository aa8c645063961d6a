"""README pictures: one PNG per page of the demo's dashboard (lakehouse/sales_dashboard.html, written by `make demo`),
taken in headless Debian chromium, into docs/images/dashboard_<page>.png. Run with `make screenshots`."""
import shutil, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT/"lakehouse"/"sales_dashboard.html"
OUT = ROOT/"docs"/"images"

def main() -> int:
    from ecom_pipeline.dashboard import PAGES
    if not PAGE.is_file(): sys.exit(f"screenshots: {PAGE} not found; run `make demo` first")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        sys.exit("screenshots: needs Debian chromium and chromium-driver (make browser installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    o = webdriver.ChromeOptions()
    o.binary_location = shutil.which("chromium")
    with tempfile.TemporaryDirectory() as profile:
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--window-size=1280,4000", f"--user-data-dir={profile}"):
            o.add_argument(a)
        d = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=o)
        try:
            d.get(PAGE.as_uri())
            OUT.mkdir(parents=True, exist_ok=True)
            for p in PAGES:
                target = OUT/f"dashboard_{p.name}.png"
                section = d.find_element(By.ID, f"page-{p.name}")
                d.execute_script("arguments[0].scrollIntoView(true);", section)
                section.screenshot(str(target))
                print(f"{target.relative_to(ROOT)} ({target.stat().st_size // 1024} KiB)")
        finally:
            d.quit()
    return 0

if __name__ == "__main__": sys.exit(main())
