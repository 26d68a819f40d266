"""Search and page load of the web face over a big library: search3 answered by the peer
(20 runs per query, one keep-alive HTTP connection, token auth as apps send it), and the web
player's library page loaded in headless Chromium until its first album tiles show.

    python benches/web_library.py PORT USER PASSWORD LOGIN_URL
"""
import hashlib
import http.client
import json
import statistics
import sys
import time
from urllib.parse import urlencode

port, user, password, login = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
conn = http.client.HTTPConnection("127.0.0.1", int(port))


def call(method, **params):
    salt = "b3nch"
    token = hashlib.md5((password + salt).encode()).hexdigest()
    q = urlencode({"u": user, "t": token, "s": salt, "f": "json", "v": "1.16.1", "c": "bench", **params})
    conn.request("GET", f"/rest/{method}?{q}")
    body = conn.getresponse().read()
    return json.loads(body)["subsonic-response"]


count = call("getScanStatus")["scanStatus"]["count"]
print(f"library: {count} tracks")
call("ping")
for q in ["song 004217", "artist 01", "album 3", "zzzz", "s"]:
    runs, hits = [], 0
    for _ in range(20):
        t = time.perf_counter()
        r = call("search3", query=q, artistCount=20, albumCount=20, songCount=50)["searchResult3"]
        runs.append((time.perf_counter() - t) * 1000)
        hits = len(r.get("song", []))
    runs.sort()
    print(f"search3 {q!r:<16} p50 {statistics.median(runs):6.1f} ms  max {runs[-1]:6.1f} ms  ({hits} songs shown)")

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
    opts.add_argument(a)
driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
wait = WebDriverWait(driver, 30, poll_frequency=0.01)
try:
    driver.get(login)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#library-body .album"))
    loads = []
    for _ in range(10):
        t = time.perf_counter()
        driver.get(f"http://127.0.0.1:{port}/")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#library-body .album"))
        loads.append((time.perf_counter() - t) * 1000)
    loads.sort()
    tiles = len(driver.find_elements(By.CSS_SELECTOR, "#library-body .album"))
    print(f"library page load to first {tiles} album tiles: p50 {statistics.median(loads):.0f} ms, max {loads[-1]:.0f} ms (10 loads)")
finally:
    driver.quit()
