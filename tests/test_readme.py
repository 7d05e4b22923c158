"""Every code block of the README runs (issue 12), so the README cannot drift from the code.

The blocks run offline with the built-in model, as a new user would type them, in a sandbox
folder holding what they name: `sounds/` (demo recordings, with an `old/` subfolder),
`clip.wav`, `a.wav`, `b.flac`, `dog.flac`, and under `~/data` real data sets in their official
layouts (Clotho and ESC-50 from ../shared/data, ESC-50 cut to 20 clips). The reference systems'
files the README converts (`CLAP_weights_2023.pth`, `630k-audioset-best.pt`) are stand-ins with
random weights in the peers' own formats (tests/peers.py), and their tokenizers the stand-ins
a `huggingface-cli download` would have cached.

Commands that would run for hours or forever are still run, each checked for what it promises:
- `make X` runs `make -n X` in the repository (the target exists and its recipe expands; a
  real `make test` here would run this test again);
- `clapsearch train --config F` trains 2 steps (`--set max_steps=2`) into the sandbox;
- `clapsearch index ... --watch` must report that it is watching, then Ctrl-C must end it
  with exit 130;
- `clapsearch serve` (on a free port) must write its discovery file and answer `/api/health`,
  then stops on SIGTERM; `--open` opens the page with `BROWSER=true` (a no-op).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import CLOTHO_DIR, ESC50_DIR, REPO, esc50_files

from clapsearch.assets import demo_sounds_dir
from tests import peers

pytestmark = pytest.mark.slow

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
TIMEOUT_S = 600


def readme_blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer((REPO / "README.md").read_text())]


def commands(block: str) -> list[str]:
    """The shell commands of a bash block: comments dropped, one command per line."""
    out = []
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if line:
            out.append(line)
    return out


def test_every_block_is_one_the_test_runs():
    blocks = readme_blocks()
    assert blocks, "no code blocks found: did the fence syntax change?"
    assert {lang for lang, _ in blocks} <= {"bash", "python"}, [lang for lang, _ in blocks]


def _esc50_subset(dest: Path, n: int = 20) -> None:
    """ESC-50's official layout (meta/esc50.csv, audio/) with the first `n` clips."""
    esc50_files(1)
    with open(ESC50_DIR / "esc50.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:n]
    (dest / "meta").mkdir(parents=True)
    (dest / "audio").mkdir()
    with open(dest / "meta" / "esc50.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for r in rows:
        (dest / "audio" / r["filename"]).symlink_to(ESC50_DIR / "audio" / r["filename"])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, peer_files):
    """(working folder, environment) for the README's commands (module doc)."""
    root = tmp_path_factory.mktemp("readme")
    home = root / "home"
    demo = demo_sounds_dir()
    sounds = root / "sounds"
    (sounds / "old").mkdir(parents=True)
    for name in ("dog", "rain", "rooster", "piano", "helicopter", "hello"):
        shutil.copy(demo / f"{name}.flac", sounds / f"{name}.flac")
    shutil.copy(demo / "sea_waves.flac", sounds / "old" / "sea_waves.flac")
    shutil.copy(demo / "dog.flac", root / "dog.flac")
    shutil.copy(demo / "violin.flac", root / "b.flac")
    for name, source in (("clip.wav", "rain"), ("a.wav", "crying_baby")):
        wave, rate = sf.read(demo / f"{source}.flac", dtype="float32")
        sf.write(root / name, np.asarray(wave), rate)
    data = home / "data"
    data.mkdir(parents=True)
    (data / "clotho").symlink_to(CLOTHO_DIR)
    _esc50_subset(data / "esc50")
    (data / "suite").mkdir()
    (data / "suite" / "esc50").symlink_to(data / "esc50")
    # the reference systems' files and the tokenizers `huggingface-cli download` would cache
    cache = root / "hub"
    peers.install_public_tokenizers(cache)
    for name, file_name in (
        ("msclap-2023", "CLAP_weights_2023.pth"),
        ("laion-htsat", "630k-audioset-best.pt"),
    ):
        shutil.copy(peer_files(name)[1], root / file_name)
    env = dict(
        os.environ,
        HOME=str(home),
        CLAPSEARCH_INDEX=str(root / "index"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_CACHE=str(cache),
        BROWSER="true",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("CLAPSEARCH_MODEL", None)
    return root, env


def _run(line: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )


def _make(line: str, env: dict) -> None:
    target = shlex.split(line)[1:]
    proc = subprocess.run(
        ["make", "-n", *target], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, (line, proc.stderr)


def _train(line: str, root: Path, env: dict) -> None:
    extra = f" --set max_steps=2 --set output_dir={root / 'runs'}"
    proc = _run(line + extra, REPO, env)  # configs name ../shared/data from the repository
    assert proc.returncode == 0, (line, proc.stderr[-2000:])
    assert (root / "runs" / "last" / "clapsearch.json").is_file()


def _watch(line: str, root: Path, env: dict) -> None:
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {line}"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        seen = []
        for err_line in proc.stderr:  # noqa: B007 (read until the watcher says it watches)
            seen.append(err_line)
            if err_line.startswith("watching") or time.monotonic() > deadline:
                break
        assert any(ln.startswith("watching") for ln in seen), (line, seen)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130, (line, proc.stderr.read())
    finally:
        if proc.poll() is None:
            proc.kill()


def _serve(line: str, root: Path, env: dict) -> None:
    index = Path(env["CLAPSEARCH_INDEX"])
    discovery = index / "server.json"
    discovery.unlink(missing_ok=True)
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {line} --port 0"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not discovery.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(0.2)
        url = json.loads(discovery.read_text())["url"]
        with urllib.request.urlopen(url + "api/health", timeout=30) as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert not discovery.exists()


def test_bash_blocks_run(sandbox):
    root, env = sandbox
    for lang, block in readme_blocks():
        if lang != "bash":
            continue
        for line in commands(block):
            words = shlex.split(line)
            if words[0] == "make":
                _make(line, env)
            elif words[:2] == ["clapsearch", "train"]:
                _train(line, root, env)
            elif "--watch" in words:
                _watch(line, root, env)
            elif words[:2] == ["clapsearch", "serve"]:
                _serve(line, root, env)
            else:
                proc = _run(line, root, env)
                assert proc.returncode == 0, (line, proc.stdout[-1000:], proc.stderr[-2000:])


def test_python_blocks_run(sandbox):
    root, env = sandbox
    subprocess.run(
        ["clapsearch", "index", "./sounds", "--workers", "0"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    blocks = [code for lang, code in readme_blocks() if lang == "python"]
    assert blocks
    for code in blocks:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert proc.returncode == 0, (code, proc.stderr[-2000:])
        assert proc.stdout.strip(), code  # the examples print what they found
