"""README pictures: one PNG per page of the demo's dashboard (lakehouse/sales_dashboard.html, written by `make demo`),
taken in headless Debian chromium, into docs/images/dashboard_<page>.png. Run with `make screenshots`."""
import sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT/"lakehouse"/"sales_dashboard.html"
OUT = ROOT/"docs"/"images"

def main() -> int:
    from ecom_pipeline.dashboard import PAGES
    if not PAGE.is_file(): sys.exit(f"screenshots: {PAGE} not found; run `make demo` first")
    from browser import chromium_available, headless_chromium
    if not chromium_available(): sys.exit("screenshots: needs Debian chromium and chromium-driver (make browser installs them as root)")
    from selenium.webdriver.common.by import By
    with tempfile.TemporaryDirectory() as profile:
        d = headless_chromium(profile, 1280, 4000)
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
