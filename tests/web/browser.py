"""Drives MEFF's web player in a real headless Chromium (Debian's, through chromedriver):
log in with the peer's one-time link, search, play, seek, queue a second track, upload a
file, look at the mesh. Prints one JSON object of what it saw; exits non-zero on a failure.

    python browser.py URL UPLOAD_FILE [SCREENSHOT_DIR]
"""
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, upload_file = sys.argv[1], sys.argv[2]
shots = sys.argv[3] if len(sys.argv) > 3 else None

opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
          "--autoplay-policy=no-user-gesture-required", "--window-size=1280,800"):
    opts.add_argument(a)
driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
# An upload's row leaves the page 15 s after it finished, maybe while a wait reads it.
wait = WebDriverWait(driver, 20, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException])
seen = {}


def js(script, *args):
    return driver.execute_script(script, *args)


def shot(name):
    if shots:
        driver.save_screenshot(f"{shots}/{name}.png")


def audio():
    return js("const a = document.getElementById('audio');"
              "return {t: a.currentTime, paused: a.paused, error: a.error && a.error.code, src: a.src, ended: a.ended};")


def search(text):
    box = driver.find_element(By.ID, "search")
    box.clear()
    box.send_keys(text)
    # Rows rendered for a prefix typed on the way ("sec") are replaced by the full query's
    # rows; take a row only from the final render, or it goes stale under our hands.
    wait.until(lambda d: d.find_element(By.ID, "search-body").get_attribute("data-query") == text)
    return wait.until(lambda d: [r for r in d.find_elements(By.CSS_SELECTOR, "#search-body .song-row")
                                 if text.lower() in r.text.lower()] or False)[0]


try:
    driver.get(url)
    wait.until(lambda d: d.find_element(By.ID, "app").is_displayed())
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#library-body .album")) > 0)
    seen["albums"] = [e.text.split("\n")[0] for e in driver.find_elements(By.CSS_SELECTOR, "#library-body .album")]
    shot("library")

    # Search as you type, then play what was found.
    row = search("first")
    first_id = row.get_attribute("data-id")
    shot("search")
    js("window.__t = {}; const a = document.getElementById('audio');"
       "a.addEventListener('playing', () => { if (!window.__t.playing) window.__t.playing = performance.now(); });"
       "a.addEventListener('error', () => { window.__t.error = a.error && a.error.code; });")
    js("window.__t.click = performance.now();")
    row.find_element(By.CSS_SELECTOR, ".play-btn").click()
    wait.until(lambda d: js("return window.__t.playing || window.__t.error || null") is not None)
    seen["click_to_playing_ms"] = js("return window.__t.playing - window.__t.click")
    wait.until(lambda d: audio()["t"] > 2.0 or audio()["error"])
    a = audio()
    assert not a["error"], f"the audio element reported error {a['error']}"
    seen["played_past_2s"] = a["t"] > 2.0
    assert first_id in a["src"]

    # Queue the second track while the first plays. The first lasts 6 s, which a slow
    # machine can spend searching: paused until the seek, it cannot end before it is queued.
    js("document.getElementById('audio').pause()")
    row2 = search("second")
    second_id = row2.get_attribute("data-id")
    row2.find_element(By.CSS_SELECTOR, ".queue-btn").click()
    # Read in one script: the queue re-renders when a track changes, which would stale
    # elements read one by one.
    seen["queue"] = js("return [...document.querySelectorAll('#queue li')].map(li => li.innerText.split('\\n')[0])")

    # Seek within the first: its bytes are fetched by Range from the chunk that holds them.
    js("const s = document.getElementById('seek'); s.value = 4.5; s.dispatchEvent(new Event('change'));")
    wait.until(lambda d: audio()["t"] >= 4.4)
    seen["seeked_to"] = audio()["t"]
    js("document.getElementById('audio').play()")
    shot("playing")

    # The first ends and the second plays after it.
    wait.until(lambda d: second_id in audio()["src"] and audio()["t"] > 0.5 and not audio()["paused"])
    a = audio()
    assert not a["error"], f"the second track failed: {a['error']}"
    seen["second_played"] = True

    # Upload (the drop zone's file input), a push to the network.
    driver.find_element(By.ID, "upload-input").send_keys(upload_file)
    done = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".upload-item.done") or
                      [e for e in d.find_elements(By.CSS_SELECTOR, ".upload-status.error")] or False)[0]
    seen["upload"] = done.text
    assert "pushed" in done.text or "already" in done.text, done.text

    # Dropping a file on the page uploads it too (a drop event carrying a File, as a
    # desktop drag makes one).
    js("""const done = arguments[0];
          fetch(document.getElementById('audio').src).then(r => r.blob()).then(b => {
            const dt = new DataTransfer();
            dt.items.add(new File([b], 'dropped-copy.mp3', {type: 'audio/mpeg'}));
            window.dispatchEvent(new DragEvent('dragenter', {dataTransfer: dt, cancelable: true}));
            window.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, cancelable: true}));
          });""", None)
    dropped = wait.until(lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, ".upload-item")
                                    if "dropped-copy.mp3" in e.text and
                                    ("pushed" in e.text or "already" in e.text or "error" in e.get_attribute("class"))] or False)[0]
    seen["drop_upload"] = dropped.text
    seen["overlay_hidden"] = "hidden" in driver.find_element(By.ID, "drop-overlay").get_attribute("class")

    # The mesh view.
    driver.find_element(By.ID, "tab-mesh").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#mesh-table td.path")) > 0)
    # One script again: the mesh table is redrawn every 2 s.
    seen["mesh"] = js("return Object.fromEntries([...document.querySelectorAll('#mesh-table tbody tr[data-name]')]"
                      ".map(tr => [tr.dataset.name, tr.querySelector('td.path').innerText]))")
    shot("mesh")

    # A phone-sized screen still shows the library.
    driver.set_window_size(390, 844)
    driver.find_element(By.ID, "tab-library").click()
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#library-body .album").is_displayed())
    shot("phone")
    seen["phone_ok"] = True
    print(json.dumps(seen))
except Exception as e:  # report what was seen so far with the failure
    seen["failure"] = f"{type(e).__name__}: {e}"
    seen["console"] = [l.get("message") for l in driver.get_log("browser")] if hasattr(driver, "get_log") else []
    print(json.dumps(seen))
    sys.exit(1)
finally:
    driver.quit()
