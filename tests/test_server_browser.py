"""The page in a real browser: Debian's Chromium driven by Playwright against `clapsearch
serve` (a real process on 127.0.0.1, found through its `server.json`) over a small index of the
demo sounds built with the default model.

Chromium comes from apt (`make browser-deps`), never a browser download; Playwright only drives
it (`executable_path`). The test runs in `make test` and CI; it is skipped only where
CLAPSEARCH_SKIP_BROWSER=1 is set, and fails (does not skip) when Chromium is missing.
CLAPSEARCH_SCREENSHOT=PATH saves the screenshot it takes there too (docs/img/serve.png).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import REPO

from clapsearch.assets import demo_sounds_dir

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
FOLDERS = {
    "animals": ["dog", "rooster", "crying_baby"],
    "outdoors": ["rain", "sea_waves", "helicopter"],
    "music": ["piano", "violin"],
    "voices": ["hello", "bonjour"],
    "test tones": ["beep_440hz", "white_noise"],
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("CLAPSEARCH_SKIP_BROWSER") == "1", reason="CLAPSEARCH_SKIP_BROWSER=1"
    ),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base URL, library folder) of a `clapsearch serve` process over the demo sounds."""
    from clapsearch.audio import load_audio
    from indexer.run import IndexOptions, run_index

    root = tmp_path_factory.mktemp("browser")
    lib, idx = root / "sounds", root / "idx"
    demo = demo_sounds_dir()
    for folder, names in FOLDERS.items():
        (lib / folder).mkdir(parents=True)
        for name in names:
            shutil.copy(demo / f"{name}.flac", lib / folder / f"{name}.flac")
    # a longer take: the match is one window in it, highlighted on the waveform
    take = [load_audio(demo / f"{n}.flac", 48000)[: 5 * 48000] for n in ("rain", "dog", "rain")]
    (lib / "takes").mkdir()
    sf.write(lib / "takes" / "street take 3.flac", np.concatenate(take), 48000)
    (lib / "takes" / "notes.wav").write_text("not audio\n")  # shows in the status view
    shutil.copy(demo / "white_noise.flac", lib / "test tones" / f"{HOSTILE_NAME}.flac")
    run_index(IndexOptions(roots=(str(lib),), index=str(idx), workers=0))
    cmd = [sys.executable, "-m", "clapsearch.cli", "serve", "--index", str(idx), "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    discovery = idx / "server.json"
    deadline = time.monotonic() + 180
    while not discovery.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"clapsearch serve did not start: {proc.stdout.read().decode()}")
        time.sleep(0.2)
    info = json.loads(discovery.read_text())
    assert info["host"] == "127.0.0.1" and info["token_required"] is False
    yield info["url"].rstrip("/"), lib
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    assert not discovery.exists()  # removed on exit


@pytest.fixture(scope="module")
def page(served):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser-deps` (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        browser.close()
        assert not errors, errors


def names(page) -> list[str]:
    return page.locator("#results .hit .name").all_inner_texts()


def wait_count(page, text: str) -> None:
    page.wait_for_function(
        "t => document.getElementById('count').textContent.includes(t)", arg=text, timeout=30000
    )


def test_page_end_to_end(served, page, tmp_path):
    base, lib = served
    page.goto(base + "/")
    assert page.locator("#empty").is_visible()  # the empty state says what to do

    # results as you type (debounced): one request for the final text
    # (the default model, second edition, puts the crying baby level with the dog for "a dog
    # barking", 0.699 / 0.698 / 0.695; "dog barking" keeps the baby 0.034 below both dogs)
    page.locator("#q").press_sequentially("dog barking", delay=20)
    wait_count(page, "“dog barking”")
    got = names(page)
    assert set(got[:2]) == {"dog.flac", "street take 3.flac"}  # the dog, alone or in the take
    assert "q=dog+barking" in page.url
    assert page.locator("#count").get_attribute("aria-live") == "polite"

    # the long take: its matching window (5-10 s, the dog) is highlighted and said
    take = page.locator(".hit", has_text="street take 3.flac")
    assert take.locator(".span").inner_text() == "at 0:05.0–0:10.0"

    # the waveform is drawn: the canvas holds many painted pixels
    page.wait_for_function(
        """() => { const c = document.querySelector('#results .hit canvas');
                   if (!c || !c.width) return false;
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
                   return n > c.width * 4; }""",
        timeout=20000,
    )

    # play: the audio advances (half a second really played: `currentTime` alone jumps to
    # the hit's start, 5 s for the take, before a sample is heard), and the row says so
    page.locator("#results .hit").first.locator(".play").click()
    page.wait_for_function(
        "() => { const a = document.getElementById('player'); let heard = 0;"
        " for (let i = 0; i < a.played.length; i++) heard += a.played.end(i) - a.played.start(i);"
        " return !a.paused && heard > 0.5; }",
        timeout=20000,
    )
    page.wait_for_function(
        "() => document.querySelector('#results .hit').classList.contains('playing')",
        timeout=2000,
    )
    # click-to-seek on the long take's waveform: playback jumps there
    box = take.locator("canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => document.getElementById('player').currentTime > 11", timeout=20000
    )
    page.wait_for_timeout(300)  # a frame or two of the playhead for the screenshot
    shot = tmp_path / "serve.png"
    page.screenshot(path=str(shot))
    if os.environ.get("CLAPSEARCH_SCREENSHOT"):
        shutil.copy(shot, os.environ["CLAPSEARCH_SCREENSHOT"])
    # keyboard: down from the search box selects, space pauses / plays
    page.locator("#q").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.id") == "hit-1"
    page.keyboard.press(" ")  # row 2 plays (or pauses, when it was the one playing)
    page.wait_for_function(
        "() => document.getElementById('player').src.endsWith('/audio')"
        " && document.querySelector('#hit-1').classList.contains('playing')"
        " !== document.getElementById('player').paused"
    )
    was_paused = page.evaluate("document.getElementById('player').paused")
    page.keyboard.press(" ")
    page.wait_for_function("p => document.getElementById('player').paused !== p", arg=was_paused)

    # folder filter, kept in the URL
    page.select_option("#folder", str(lib / "animals"))
    wait_count(page, "“dog barking”")
    page.wait_for_function("() => document.querySelectorAll('#results .hit').length === 3")
    assert set(names(page)) == {"dog.flac", "rooster.flac", "crying_baby.flac"}
    assert "folder=" in page.url
    page.select_option("#folder", "")
    page.wait_for_function("() => document.querySelectorAll('#results .hit').length > 3")

    # drop a file on the page: sounds like it (the rooster, not in the index under that name)
    data = base64.b64encode((demo_sounds_dir() / "rooster.flac").read_bytes()).decode()
    transfer = page.evaluate_handle(
        """b64 => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                    const dt = new DataTransfer();
                    dt.items.add(new File([bytes], 'my rooster.flac', {type: 'audio/flac'}));
                    return dt; }""",
        data,
    )
    page.dispatch_event("body", "dragenter", {"dataTransfer": transfer})
    assert page.locator("#drop").is_visible()
    page.dispatch_event("body", "drop", {"dataTransfer": transfer})
    wait_count(page, "sounds like my rooster.flac")
    dropped = names(page)
    assert dropped and "rooster.flac" not in dropped  # the same bytes are left out
    assert not page.locator("#drop").is_visible()

    # more like this, then reload: the same state from the URL
    first = dropped[0]
    page.locator("#results .hit").first.locator(".like").click()
    wait_count(page, f"sounds like {first}")
    like = names(page)
    assert "like=" in page.url and first not in like and like
    page.reload()
    wait_count(page, f"sounds like {first}")
    assert names(page) == like
    # back: the dropped file's results again, then the text query
    page.go_back()
    wait_count(page, "sounds like my rooster.flac")
    assert names(page) == dropped

    # the status view: counts and the failed file with its reason, as text
    page.locator("#status-btn").click()
    page.wait_for_selector("#failures td")
    assert "notes.wav" in page.locator("#failures").inner_text()
    assert "not_audio" in page.locator("#failures").inner_text()


def test_names_are_text_and_errors_are_shown(served, page):
    base, lib = served
    page.goto(base + "/?q=" + "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E%20white%20noise")
    wait_count(page, HOSTILE_NAME)  # the query, shown as text
    assert f"{HOSTILE_NAME}.flac" in names(page)  # a file name, shown as text
    assert page.locator("img").count() == 0
    page.goto(base + "/?like=999999")
    page.wait_for_selector("#error:not([hidden])")
    assert "No indexed file has id 999999." in page.locator("#error").inner_text()
