"""Hostile files and trees, for tests of anything that reads user files (indexer, query, classify,
the server's uploads). Each helper writes one thing that broke clapsearch once (issue 16) and
returns its path; the docstring says what a correct reader does with it.

Plain functions, not fixtures, so any test (or benchmark) can call them with its own folder:

    from tests import hostile
    wav = hostile.lying_rate_wav(tmp_path / "liar.wav")       # header says 1 Hz
    fifo = hostile.fifo(tmp_path / "x.wav")                    # must be refused unopened
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np

NON_UTF8_NAME = b"caf\xe9-\xff\xfe.wav"  # latin-1 bytes: not valid UTF-8 in any position
CONTROL_NAME = "bell\x07-esc\x1b[31mred\x1b[0m-new\nline\ttab\x7f.wav"


def wav_bytes(samples: np.ndarray, rate: int, bits: int = 16) -> bytes:
    """A PCM WAV file's bytes, written by hand so the header can say anything (libsndfile
    refuses to write most lies). `samples`: mono float in [-1, 1]; `bits` 8 or 16."""
    if bits == 8:
        data = np.clip(samples * 127 + 128, 0, 255).astype(np.uint8).tobytes()
    else:
        data = np.clip(samples * 32767, -32768, 32767).astype("<i2").tobytes()
    block = bits // 8
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def lying_rate_wav(path: Path, rate: int = 1, nbytes: int = 16_000) -> Path:
    """A 16 KB 8-bit WAV whose header says `rate` Hz: at 1 Hz, 16,000 s of "audio". Resampled
    to 48 kHz that is 768 M samples (3 GB of float32) from 16 KB. A reader must refuse the
    rate (`not_audio`) or stream it in bounded memory; never allocate what the header claims."""
    noise = np.random.default_rng(16).uniform(-0.5, 0.5, nbytes)
    path.write_bytes(wav_bytes(noise, rate, bits=8))
    return path


def lying_length_flac(path: Path, src: Path, total_samples: int = 1 << 35) -> Path:
    """A real FLAC (copied from `src`) whose STREAMINFO claims `total_samples` (default 2^35:
    ~200 h at 48 kHz). A reader must not allocate for the claim: it fails `truncated` (the
    claimed end does not decode) or reads what is there."""
    data = bytearray(Path(src).read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "STREAMINFO must come first"
    # STREAMINFO starts at byte 8; total samples are the low 36 bits of bytes 8+13 .. 8+17
    at = 8 + 13
    packed = int.from_bytes(data[at : at + 5], "big")
    packed = (packed & ~((1 << 36) - 1)) | (total_samples & ((1 << 36) - 1))
    data[at : at + 5] = packed.to_bytes(5, "big")
    path.write_bytes(bytes(data))
    return path


def fifo(path: Path) -> Path:
    """A named pipe (no writer: opening it for reading blocks forever). Must be refused from
    `stat`, never opened."""
    os.mkfifo(path)
    return path


def non_utf8_copy(folder: Path, src: Path, name: bytes = NON_UTF8_NAME) -> Path:
    """A copy of `src` under a file name that is not valid UTF-8. Python sees it with
    surrogate escapes (`os.fsdecode`); it must be indexed, stored, shown and found again."""
    target = os.path.join(os.fsencode(folder), name)
    shutil.copyfile(src, target)
    return Path(os.fsdecode(target))


def control_char_copy(folder: Path, src: Path, name: str = CONTROL_NAME) -> Path:
    """A copy of `src` whose name holds a bell, ANSI escape sequences, a newline, a tab and a
    DEL. Human output must show them escaped (no colour change, no broken table line)."""
    target = folder / name
    shutil.copyfile(src, target)
    return target


def symlink_loops(folder: Path) -> dict[str, Path]:
    """Links that never resolve, and a directory that contains itself:
    `self.wav -> self.wav`, `a.wav -> b.wav -> a.wav`, `sub/up -> ..` (a cycle of folders).
    A scan must end, list each real file once, and record the looping files as unreadable."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "self.wav").symlink_to("self.wav")
    (folder / "a.wav").symlink_to("b.wav")
    (folder / "b.wav").symlink_to("a.wav")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "up").symlink_to("..")
    return {
        "self": folder / "self.wav",
        "a": folder / "a.wav",
        "b": folder / "b.wav",
        "dir_loop": folder / "sub" / "up",
    }


def many_tiny_wavs(folder: Path, n: int, seconds: float = 0.5, rate: int = 16_000) -> list[Path]:
    """`n` distinct short 16-bit WAVs (seeded noise), in sub-folders of 500."""
    rng = np.random.default_rng(5000)
    out = []
    frames = int(seconds * rate)
    for i in range(n):
        sub = folder / f"part{i // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"tiny{i:05d}.wav"
        path.write_bytes(wav_bytes(rng.uniform(-0.3, 0.3, frames), rate))
        out.append(path)
    return out


def hostile_model_dir(src: Path, dst: Path, **preprocessor: object) -> Path:
    """A copy of a transformers CLAP folder whose `preprocessor_config.json` has the given
    keys overridden (e.g. `max_length_s=100000`: a 3 s clip repeat-padded to 4.8 G samples).
    Loading it must fail in one sentence before any clip is embedded."""
    shutil.copytree(src, dst)
    cfg_path = dst / "preprocessor_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(preprocessor)
    cfg_path.write_text(json.dumps(cfg))
    return dst


def damage(path: Path, offset: int, nbytes: int, seed: int = 0) -> None:
    """Overwrite `nbytes` of `path` at `offset` (negative: from the end) with random bytes
    that differ from the old ones."""
    data = bytearray(path.read_bytes())
    start = offset if offset >= 0 else len(data) + offset
    rng = np.random.default_rng(seed)
    for i in range(start, min(start + nbytes, len(data))):
        data[i] = (data[i] + int(rng.integers(1, 256))) % 256
    path.write_bytes(bytes(data))


__all__ = [
    "CONTROL_NAME",
    "NON_UTF8_NAME",
    "control_char_copy",
    "damage",
    "fifo",
    "hostile_model_dir",
    "lying_length_flac",
    "lying_rate_wav",
    "many_tiny_wavs",
    "non_utf8_copy",
    "symlink_loops",
    "wav_bytes",
]
