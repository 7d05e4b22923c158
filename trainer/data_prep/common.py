"""What every generator shares: the clip format, external tools, level and length fitting, manifests.

Every clip of the corpus is mono 16-bit FLAC at 48 kHz (the CLAP front end's rate, so training
never resamples generated audio) and at most `CLIP_S` seconds. A generated clip is a pure
function of its spec: the same spec gives the same bytes on every run and in any worker.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from clapsearch.atomic import atomic_open

SAMPLE_RATE = 48_000
CLIP_S = 5.0
CLIP_SAMPLES = int(CLIP_S * SAMPLE_RATE)
FADE_S = 0.05


@dataclass(frozen=True)
class ClipRecord:
    """One manifest row: an audio file, its captions (first = canonical) and where it came from.

    `split` is `train`, `val` or `test`; `source` names the generator or dataset.
    """

    path: str
    captions: tuple[str, ...]
    source: str
    split: str = "train"
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "caption": self.captions[0],
            "captions": list(self.captions),
            "source": self.source,
            "split": self.split,
        }


class ToolMissing(RuntimeError):
    """An external program a generator needs is not installed (the generator is skipped)."""


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise ToolMissing(
            f"{', '.join(missing)} not found on PATH "
            "(install with: apt-get install -y espeak-ng fluidsynth fluid-soundfont-gm sox)"
        )


def run_tool(cmd: Sequence[str]) -> None:
    """Run an external program quietly; its stderr becomes the error message on failure."""
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[:300]}")


def read_mono(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Any soundfile-readable file -> mono float32 at `sample_rate`."""
    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if sr != sample_rate:
        y = soxr.resample(y, sr, sample_rate)
    return np.ascontiguousarray(y, dtype=np.float32)


def fit_length(y: np.ndarray, n: int = CLIP_SAMPLES, pad: bool = True) -> np.ndarray:
    """Cut to `n` samples with a short fade-out (no click at the cut); zero-pad shorter clips
    when `pad` (generated clips all get the same length, which keeps batches uniform)."""
    if len(y) > n:
        y = y[:n].copy()
        fade = int(FADE_S * SAMPLE_RATE)
        y[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    elif pad and len(y) < n:
        y = np.pad(y, (0, n - len(y)))
    return y


def set_level(y: np.ndarray, rms_db: float, peak: float = 0.98) -> np.ndarray:
    """Scale to an RMS of `rms_db` dBFS, then down if needed so no sample exceeds `peak`."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
    if rms < 1e-8:
        return y.astype(np.float32)
    y = y * (10 ** (rms_db / 20) / rms)
    top = float(np.max(np.abs(y)))
    if top > peak:
        y = y * (peak / top)
    return y.astype(np.float32)


def write_clip(path: Path, y: np.ndarray) -> None:
    """Write mono 16-bit FLAC at 48 kHz atomically (a killed run never leaves half a file)."""
    with atomic_open(path, "wb") as fh:
        sf.write(fh, np.clip(y, -1.0, 1.0), SAMPLE_RATE, format="FLAC", subtype="PCM_16")


def write_manifest(records: Iterable[ClipRecord], path: Path) -> int:
    """JSONL, one `{"path", "caption", "captions", "source", "split"}` object a line; paths are
    absolute so the manifest is valid from any working directory."""
    n = 0
    with atomic_open(path, "w") as f:
        for rec in records:
            f.write(json.dumps(rec.to_json(), ensure_ascii=False) + "\n")
            n += 1
    return n


def read_manifest(path: Path) -> list[ClipRecord]:
    """A manifest `write_manifest` wrote, read by the one manifest rule
    (`clapsearch.datasets.manifest`)."""
    from clapsearch.datasets.manifest import read_manifest as read_clips

    return [ClipRecord(str(c.path), c.captions, c.source, c.split) for c in read_clips(path)]


def log(msg: str) -> None:
    print(f"[data_prep] {msg}", file=sys.stderr, flush=True)
