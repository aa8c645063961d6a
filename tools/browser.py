"""Headless Debian chromium through chromedriver (selenium), for the dashboard test and the README screenshots.
Only the machine's /usr/bin/chromium is used; nothing is downloaded."""
import shutil

def chromium_available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))

def headless_chromium(profile_dir: str, width: int=1400, height: int=3200):
    "A selenium driver of headless chromium with a fresh profile, no network chatter, and the browser console captured."
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    o.binary_location = shutil.which("chromium")
    # Without the background-networking flags chromium keeps trying Google hosts, which a closed network refuses.
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
              f"--window-size={width},{height}", f"--user-data-dir={profile_dir}"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=o)
