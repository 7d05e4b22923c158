"""Shared fixtures: real audio from ../shared/data and tiny CLAP models built offline."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config):
    """Tests drive `clapsearch.cli.app` directly: every command registered (the console
    entry point loads only the one on its command line)."""
    from clapsearch.cli import load_commands

    load_commands()


# Fixtures of the reference systems' models (msclap, laion_clap) for the parity tests.
pytest_plugins = ("tests.peers",)


REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data").resolve()
ESC50_DIR = DATA / "esc50-mini"
CLOTHO_DIR = DATA / "clotho-mini"


def esc50_files(n: int | None = None) -> list[Path]:
    files = sorted((ESC50_DIR / "audio").glob("*.flac"))
    if not files:
        pytest.skip(f"no ESC-50 clips under {ESC50_DIR}")
    return files[:n] if n else files


def clotho_files() -> list[Path]:
    files = sorted((CLOTHO_DIR / "evaluation").glob("*.wav"))
    if not files:
        pytest.skip(f"no Clotho clips under {CLOTHO_DIR}")
    return files


def run_cli(args: list[str], capsys, stdin: bytes | None = None) -> tuple[int, str, str]:
    """The real entry point (`run_app`) in-process: exit code, stdout, stderr."""
    import io
    import sys

    from clapsearch.cli import app
    from clapsearch.cli.common import run_app

    old_argv, old_stdin = sys.argv, sys.stdin
    sys.argv = ["clapsearch", *args]
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        run_app(app)
        code = 0
    except SystemExit as ex:
        code = ex.code
    finally:
        sys.argv, sys.stdin = old_argv, old_stdin
    out = capsys.readouterr()
    return code, out.out, out.err


# the CLI's real entry point in a fresh process, reporting at exit whether torch was imported
_CLI_PROBE = (
    "import sys\n"
    "from clapsearch.cli import main\n"
    "sys.argv = ['clapsearch'] + sys.argv[1:]\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    print('torch' in sys.modules, file=sys.stderr)\n"
)


def run_cli_process(*args: str, env: dict | None = None, timeout: float = 300):
    """`clapsearch ARGS` as a fresh process -> (exit code, stdout, stderr without the probe
    line, whether torch was imported): for what a process pays, which in-process runs hide."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _CLI_PROBE, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    *rest, probe = proc.stderr.rstrip("\n").split("\n")
    return proc.returncode, proc.stdout, "\n".join(rest), probe == "True"


@pytest.fixture(scope="session")
def tiny_clap_dir(tmp_path_factory) -> Path:
    """A random tiny transformers `ClapModel` (rand_trunc front end) saved with its processor."""
    from clapsearch.synthetic_models import build_random_clap

    return build_random_clap(tmp_path_factory.mktemp("tiny_clap"), "tiny", "rand_trunc")


@pytest.fixture(scope="session")
def tiny_clap_fusion_dir(tmp_path_factory) -> Path:
    """Like `tiny_clap_dir` with `enable_fusion=True` and the HTK `fusion` front end."""
    from clapsearch.synthetic_models import build_random_clap

    return build_random_clap(tmp_path_factory.mktemp("tiny_clap_fusion"), "tiny", "fusion")


@pytest.fixture(scope="session")
def tiny_embedder(tiny_clap_dir):
    from clapsearch.sources import load_embedder

    return load_embedder(str(tiny_clap_dir), device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def tiny_native_dir(tmp_path_factory) -> Path:
    """A random tiny clapsearch checkpoint (CNN6 8..64 + 1-layer BERT, dim 16, 5 s window)."""
    import torch
    from transformers import AutoTokenizer

    from clapsearch.models import Provenance, build_model, save_checkpoint
    from clapsearch.models.presets import tiny_config

    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    tokenizer = AutoTokenizer.from_pretrained(model.text_encoder.tokenizer_source())
    folder = tmp_path_factory.mktemp("tiny_native") / "tiny-native"
    return save_checkpoint(model, tokenizer, folder, Provenance(data=("random init",)))


@pytest.fixture(scope="session")
def tiny_clap_words_dir(tiny_clap_dir) -> Path:
    """Alias kept for tests written while the synthetic tokenizer held only special tokens
    (fixed in `synthetic_models._build_tokenizer`): texts now tokenize into words."""
    return tiny_clap_dir


@pytest.fixture(scope="session")
def words_embedder(tiny_clap_words_dir):
    from clapsearch.sources import load_embedder

    return load_embedder(str(tiny_clap_words_dir), device="cpu", precision="fp32")


def write_test_index(folder: Path, embedder, files: list[Path]) -> dict[str, tuple]:
    """An index of `files` written through `IndexWriter`, one vector per model
    window as the indexer stores them -> {stored path: (spans, float16-rounded vectors)}."""
    import numpy as np

    from clapsearch.audio import load_audio
    from clapsearch.features import window_starts
    from clapsearch.index.paths import normalize_path
    from clapsearch.index.schema import FileRecord, IndexConfig
    from indexer.writer import IndexWriter

    sr, window = embedder.sample_rate, embedder.audio_config.window_samples
    stored = {}
    with IndexWriter.create(folder, embedder.model_identity, IndexConfig()) as store:
        for f in files:
            wave = load_audio(str(f), sr)
            starts = window_starts(len(wave), window)
            vecs = embedder.embed_audio([wave[s : s + window] for s in starts])
            spans = [(s / sr, min(s + window, len(wave)) / sr) for s in starts]
            st = f.stat()
            record = FileRecord(
                normalize_path(f),
                st.st_size,
                st.st_mtime_ns,
                f"sha-{f.name}",
                len(wave) / sr,
                sr,
                1,
            )
            store.add_file(record, spans, vecs)
            stored[record.path] = (spans, vecs.astype(np.float16).astype(np.float32))
    return stored


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory, words_embedder):
    """(index dir, {path: (spans, vectors)}) over 12 ESC-50 clips (5 s, one window each) and
    4 Clotho clips (15-30 s, several windows), built with `words_embedder`."""
    folder = tmp_path_factory.mktemp("tiny_index")
    return folder, write_test_index(folder, words_embedder, esc50_files(12) + clotho_files()[:4])


def window_counts(db: Path) -> dict[str, int]:
    """path -> its stored windows, read straight from a (possibly half-written) index
    database: {} before its schema is committed; asserts no orphan window and no path twice
    (the crash and kill -9 tests' view of what a killed run left)."""
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT f.path, count(s.id) FROM files f LEFT JOIN segments s ON s.file_id = f.id "
            "GROUP BY f.id"
        ).fetchall()
        orphans = con.execute(
            "SELECT count(*) FROM segments WHERE file_id NOT IN (SELECT id FROM files)"
        ).fetchone()[0]
    except sqlite3.OperationalError:  # killed before the schema was committed
        return {}
    finally:
        con.close()
    assert orphans == 0
    paths = [r[0] for r in rows]
    assert len(paths) == len(set(paths))
    return dict(rows)
