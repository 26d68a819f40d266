"""Click -> `playing` in a real headless Chromium: opens the web player with the peer's
one-time link, opens the bench album, and clicks each track's play button once, timing
from the click to the audio element's `playing` event.

    python benches/web_click.py URL
"""
import statistics
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
          "--autoplay-policy=no-user-gesture-required"):
    opts.add_argument(a)
driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
wait = WebDriverWait(driver, 30, poll_frequency=0.01)
try:
    driver.get(sys.argv[1])
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#library-body .album"))
    driver.find_element(By.CSS_SELECTOR, "#library-body .album").click()
    rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#library-body .song-row"))
    driver.execute_script("const a = document.getElementById('audio'); window.__p = 0;"
                          "a.addEventListener('playing', () => { window.__p = performance.now(); });")
    times = []
    for i in range(len(rows)):
        row = driver.find_elements(By.CSS_SELECTOR, "#library-body .song-row")[i]
        driver.execute_script("window.__p = 0; window.__c = performance.now();")
        row.find_element(By.CSS_SELECTOR, ".play-btn").click()
        wait.until(lambda d: d.execute_script("return window.__p") > 0)
        times.append(driver.execute_script("return window.__p - window.__c"))
        driver.execute_script("document.getElementById('audio').pause();")
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    print(f"click -> playing over {len(times)} tracks: p50 {statistics.median(times):.1f} ms, "
          f"p95 {p95:.1f} ms, max {times[-1]:.1f} ms")
finally:
    driver.quit()
