"""`python -m clapsearch.demo` (`make demo`): index a small sample folder and answer a few
queries, offline, in about a minute on a laptop CPU.

The sample folder is `clapsearch/assets/demo_sounds/` (generated speech, music and signals plus
six CC-BY ESC-10 clips the default model never trained on), copied into a work directory and
indexed with `clapsearch index`; the queries go through `Library.search`, exactly the path a
user's `clapsearch query` takes.

Model: `--model`, else `$CLAPSEARCH_MODEL`, else the packaged default model. When no default
model is packaged (a checkout before `make default-model`), the demo builds a tiny random model
and says so loudly: its rankings are meaningless and only show the plumbing works.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from clapsearch.assets import default_model_dir, demo_sounds_dir
from clapsearch.sources import MODEL_ENV

# query -> the demo file a working model should rank first
QUERIES: dict[str, str] = {
    "a dog barking": "dog.flac",
    "a rooster crowing": "rooster.flac",
    "rain falling": "rain.flac",
    "ocean waves crashing on the shore": "sea_waves.flac",
    "a baby crying": "crying_baby.flac",
    "a helicopter flying overhead": "helicopter.flac",
    "a man speaking": "hello.flac",
    "a woman speaking French": "bonjour.flac",
    "a piano playing a melody": "piano.flac",
    "a violin": "violin.flac",
    "a pure sine tone": "beep_440hz.flac",
    "white noise": "white_noise.flac",
}


@dataclass(frozen=True)
class DemoModel:
    name: str  # what `--model` gets
    description: str
    random: bool = False


@dataclass(frozen=True)
class DemoAnswer:
    query: str
    expected: str
    hits: tuple[tuple[str, float], ...]  # (file name, score), best first

    @property
    def found_first(self) -> bool:
        return bool(self.hits) and self.hits[0][0] == self.expected


def pick_model(model: str | None, workdir: Path) -> DemoModel:
    """See module doc for the order; the random fallback is built under `workdir`."""
    if model:
        return DemoModel(model, f"{model} (--model)")
    if os.environ.get(MODEL_ENV):
        return DemoModel(os.environ[MODEL_ENV], f"{os.environ[MODEL_ENV]} (${MODEL_ENV})")
    packaged = default_model_dir()
    if packaged is not None:
        return DemoModel(str(packaged), f"the packaged default model ({packaged})")
    from transformers.utils import logging as hf_logging

    from clapsearch.synthetic_models import build_random_clap

    hf_logging.disable_progress_bar()
    folder = build_random_clap(workdir / "random-tiny-model", "tiny", "rand_trunc")
    return DemoModel(str(folder), "a tiny RANDOM model built for this demo", random=True)


def prepare_folder(workdir: Path) -> Path:
    """Copy the demo sounds into `workdir/sounds` (a fresh copy: the index watches it)."""
    folder = workdir / "sounds"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for src in sorted(demo_sounds_dir().glob("*.flac")):
        shutil.copy2(src, folder / src.name)
    return folder


def build_index(folder: Path, index_dir: Path, model: str) -> None:
    """`clapsearch index FOLDER --index DIR --model M`, the command a user runs (decoding
    in-process: a dozen clips do not pay for worker start-up)."""
    import subprocess

    from clapsearch.errors import ClapsearchError

    cmd = [sys.executable, "-m", "clapsearch.cli", "index", str(folder), "--index"]
    cmd += [str(index_dir), "--model", model, "--workers", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"]
        raise ClapsearchError(f"indexing the sample folder failed: {lines[-1]}")


def ask(index_dir: Path, queries: dict[str, str], k: int) -> list[DemoAnswer]:
    from clapsearch.library import Library

    texts = list(queries)
    with Library(index_dir, device="cpu") as lib:
        results = lib.search(texts, k=k)
    return [
        DemoAnswer(q, queries[q], tuple((Path(h.path).name, float(h.score)) for h in hits))
        for q, hits in zip(texts, results, strict=True)
    ]


def run_demo(
    workdir: Path,
    model: str | None = None,
    queries: dict[str, str] | None = None,
    k: int = 3,
    out: Callable[[str], None] = print,
) -> list[DemoAnswer]:
    """Set up, index, query, print; returns the answers (tests read them)."""
    queries = queries or QUERIES
    workdir.mkdir(parents=True, exist_ok=True)
    chosen = pick_model(model, workdir)
    if chosen.random:
        out(
            "NOTE: no trained default model is packaged in this checkout (run `make "
            "default-model`), so this demo uses a tiny RANDOM model: the rankings below are "
            "meaningless and only show that indexing and search work end to end."
        )
    folder = prepare_folder(workdir)
    out(f"model: {chosen.description}")
    out(f"sample folder: {folder} ({len(list(folder.glob('*.flac')))} sounds)")
    t0 = time.perf_counter()
    build_index(folder, workdir / "index", chosen.name)
    out(f"indexed in {time.perf_counter() - t0:.1f} s; asking {len(queries)} questions\n")
    answers = ask(workdir / "index", queries, k)
    for a in answers:
        mark = "ok " if a.found_first else "   "
        ranked = "   ".join(f"{name} {score:.2f}" for name, score in a.hits)
        out(f"{mark} {a.query!r:40s} -> {ranked}")
    right = sum(a.found_first for a in answers)
    out(
        f"\n{right}/{len(answers)} queries ranked the expected sound first"
        + (" (random model: chance is about 1 in 12)" if chosen.random else "")
    )
    return answers


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m clapsearch.demo", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--model", help="model to use (default: $CLAPSEARCH_MODEL, else the packaged one)"
    )
    p.add_argument(
        "--workdir", type=Path, help="where to put the sounds and the index (default: a temp dir)"
    )
    p.add_argument("-k", type=int, default=3, help="results shown per query")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from clapsearch.errors import ClapsearchError

    try:
        if args.workdir:
            run_demo(args.workdir.resolve(), args.model, k=args.k)
        else:
            with tempfile.TemporaryDirectory(prefix="clapsearch-demo-") as tmp:
                run_demo(Path(tmp), args.model, k=args.k)
    except ClapsearchError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
