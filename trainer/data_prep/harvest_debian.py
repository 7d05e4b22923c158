"""Harvest real sound recordings from Debian packages into captioned, licensed clips.

    python -m trainer.data_prep.harvest_debian [--cache /work/cache/debian-sounds] [--fetch]

For every package of `debian_sources.PACKAGES` (`--fetch` first downloads and unpacks the
missing ones with `debian_fetch`, no installation):
1. licence: `licences.CopyrightPolicy` over the package's own copyright file decides each
   sound file (a package without one is dropped whole);
2. captions: speech packages by language (`speech_captions`), every other file through the
   curated keyword map (`caption_rules.CAPTION_MAP`); a file nothing describes is dropped;
3. clips: decoded to mono (rates above 48 kHz brought down to 48 kHz), near-silent files
   dropped; a file longer than `LONG_S` is cut into up to `MAX_PIECES` evenly spaced
   `PIECE_S` pieces (music and ambience become several clips);
4. duplicates: a clip whose 16-bit PCM hashes like an earlier one is dropped (the same
   sound shipped by two packages or twice in one);
5. per-language caps: at most `SPEECH_CAP` clips per language and package, and about
   `PACKAGE_SPEECH_CAP` per package (the per-language cap shrinks when a package speaks
   many languages), so speech packages (thousands of words read aloud) do not swamp the
   sound effects (files are taken in path order).

Writes `<cache>/clips/<package>/*.flac` (16-bit, the source's rate) and `<cache>/manifest.jsonl`
(path, captions, source `debian:<package>`, split `train` or, for held-out packages, `test`,
licence, copyleft, package, version, member path, piece) plus `<cache>/harvest.json` with
counts per package and why files were dropped. Deterministic: the same packages give the same
clips and manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from trainer.data_prep.caption_rules import (
    CAPTION_MAP,
    MUSIC_CAPTIONS,
    MUSIC_FOLDERS,
    MUSIC_PACKAGES,
    VOICE_CAPTIONS,
    VOICE_FOLDERS,
)
from trainer.data_prep.common import log
from trainer.data_prep.debian_fetch import AUDIO_SUFFIXES, DEFAULT_CACHE, fetch, read_origin
from trainer.data_prep.debian_sources import PACKAGES, DebianSource
from trainer.data_prep.licences import CopyrightPolicy
from trainer.data_prep.speech_captions import speech_captions

MAX_RATE = 48_000
LONG_S = 12.0
PIECE_S = 10.0
MAX_PIECES = 6
MIN_S = 0.15
SILENT_DBFS = -55.0
SPEECH_CAP = 60
PACKAGE_SPEECH_CAP = 300


@dataclass(frozen=True)
class HarvestConfig:
    cache: Path = DEFAULT_CACHE
    fetch: bool = False
    copyleft: bool = True
    speech_cap: int = SPEECH_CAP
    jobs: int = 2


def package_words(package: str) -> frozenset[str]:
    """Words of the package's own name (`frozen-bubble-data` -> frozen, bubble, data): they
    name the game, not the sound, and must not trigger a rule."""
    import re

    return frozenset(w for w in re.split(r"[^a-z]+", package.lower()) if w)


def caption_file(package: str, rel: str) -> tuple[tuple[str, ...] | None, str]:
    """-> (captions or None, group) for one installed file path of `package`."""
    caps, group = speech_captions(package, rel)
    if group:
        return caps, group
    if package in MUSIC_PACKAGES:
        return MUSIC_PACKAGES[package], "music"
    folders = {part.lower() for part in Path(rel).parent.parts}
    if MUSIC_FOLDERS & folders:
        return MUSIC_CAPTIONS, "music"
    if VOICE_FOLDERS & folders:
        return VOICE_CAPTIONS, f"speech:voices:{package}"
    return CAPTION_MAP.captions(rel, ignore=package_words(package)), ""


def read_pieces(path: Path) -> tuple[list[tuple[int, np.ndarray]], int]:
    """`pieces(decode(path))` without decoding a long file whole: only its pieces are read
    (a 6-minute soundtrack costs 60 s of decoding, not 6 minutes)."""
    with sf.SoundFile(str(path)) as f:
        sr, n = int(f.samplerate), int(f.frames)
        if n <= 0 or n <= LONG_S * sr or not f.seekable():
            y, rate = _mono_capped(f.read(dtype="float32", always_2d=True), sr)
            return pieces(y, rate), rate
        size = int(PIECE_S * sr)
        count = min(MAX_PIECES, n // size)
        starts = np.linspace(0, n - size, count).astype(int) if count > 1 else [0]
        out = []
        for k, start in enumerate(starts):
            f.seek(int(start))
            y, rate = _mono_capped(f.read(size, dtype="float32", always_2d=True), sr)
            out.append((k, y))
        return out, rate


def _mono_capped(y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    y = y.mean(axis=1)
    if sr > MAX_RATE:
        y, sr = soxr.resample(y, sr, MAX_RATE).astype(np.float32), MAX_RATE
    return np.ascontiguousarray(y, dtype=np.float32), int(sr)


def pieces(y: np.ndarray, sr: int) -> list[tuple[int, np.ndarray]]:
    """(index, samples) pieces: the whole file when short, else up to `MAX_PIECES` evenly
    spaced `PIECE_S` windows."""
    n = len(y)
    if n <= LONG_S * sr:
        return [(0, y)]
    size = int(PIECE_S * sr)
    count = min(MAX_PIECES, n // size)
    starts = np.linspace(0, n - size, count).astype(int) if count > 1 else [0]
    return [(k, y[s : s + size]) for k, s in enumerate(starts)]


def dbfs(y: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(y, dtype=np.float64))) + 1e-12))


def pcm_hash(y: np.ndarray) -> str:
    pcm = np.round(np.clip(y, -1, 1) * 32767).astype("<i2")
    return hashlib.blake2b(pcm.tobytes(), digest_size=16).hexdigest()


def audio_members(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
    )


def harvest_package(
    src: DebianSource, cfg: HarvestConfig, seen: set[str], stats: Counter
) -> list[dict]:
    origin = read_origin(cfg.cache, src.name)
    root = cfg.cache / "pkgs" / src.name
    if origin is None:
        stats["package not fetched"] += 1
        return []
    copyright_file = root / "usr" / "share" / "doc" / src.name / "copyright"
    members = audio_members(root)
    if not copyright_file.is_file():
        stats["no copyright file"] += len(members)
        return []
    policy = CopyrightPolicy(copyright_file.read_text(errors="replace"), members)
    rows: list[dict] = []
    per_group: Counter = Counter()
    languages = {caption_file(src.name, rel)[1] for rel in members} - {""}
    languages = {g for g in languages if g.startswith("speech")}
    cap = min(cfg.speech_cap, max(10, PACKAGE_SPEECH_CAP // max(1, len(languages))))
    out_dir = cfg.cache / "clips" / src.name
    for rel in members:
        decision = policy.decide(rel)
        if not decision.keep:
            stats[f"licence: {decision.reason}"] += 1
            continue
        if decision.copyleft and not cfg.copyleft:
            stats["copyleft excluded"] += 1
            continue
        captions, group = caption_file(src.name, rel)
        if captions is None:
            stats["no caption"] += 1
            continue
        if group.startswith("speech") and per_group[group] >= cap:
            stats["speech cap"] += 1
            continue
        try:
            cut, sr = read_pieces(root / rel)
        except (sf.LibsndfileError, RuntimeError, ValueError) as e:
            stats[f"undecodable ({type(e).__name__})"] += 1
            continue
        if len(cut) == 1 and len(cut[0][1]) < MIN_S * sr:
            stats["too short"] += 1
            continue
        kept_any = False
        for k, piece in cut:
            if dbfs(piece) < SILENT_DBFS:
                stats["silent"] += 1
                continue
            digest = pcm_hash(piece)
            if digest in seen:
                stats["duplicate"] += 1
                continue
            seen.add(digest)
            path = out_dir / f"{Path(rel).stem[:60]}-{digest[:10]}.flac"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(path.name + ".part")
                sf.write(str(tmp), np.clip(piece, -1, 1), sr, format="FLAC", subtype="PCM_16")
                tmp.replace(path)
            rows.append(
                {
                    "path": str(path),
                    "caption": captions[0],
                    "captions": list(captions),
                    "source": f"debian:{src.name}",
                    "split": "test" if src.heldout else "train",
                    "licence": decision.licence,
                    "copyleft": decision.copyleft,
                    "package": src.name,
                    "version": origin.version,
                    "member": rel,
                    "piece": k,
                    "group": group,
                    "digest": digest,
                }
            )
            kept_any = True
        if kept_any and group:
            per_group[group] += 1
        stats["kept files"] += kept_any
    return rows


def _harvest_one(job: tuple[DebianSource, HarvestConfig]) -> tuple[list[dict], Counter]:
    src, cfg = job
    stats: Counter = Counter()
    rows = harvest_package(src, cfg, set(), stats)
    log(f"{src.name}: {len(rows)} clips before cross-package dedupe")
    return rows, stats


def harvest(cfg: HarvestConfig, packages: tuple[DebianSource, ...] = PACKAGES) -> dict:
    """Run the harvest; -> the summary written to `harvest.json`."""
    if cfg.fetch:
        for src in packages:
            try:
                fetch(src.name, cfg.cache)
            except RuntimeError as e:
                log(f"skipping {src.name}: {e}")
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max(1, cfg.jobs)) as pool:
        results = list(pool.map(_harvest_one, [(src, cfg) for src in packages]))
    seen: set[str] = set()
    rows: list[dict] = []
    per_package: dict[str, dict] = {}
    for src, (found, stats) in zip(packages, results, strict=True):
        got = []
        for row in found:  # the same sound in two packages: the first package keeps it
            if row["digest"] in seen:
                stats["duplicate"] += 1
                continue
            seen.add(row["digest"])
            got.append(row)
        rows += got
        licences = sorted({r["licence"] for r in got})
        per_package[src.name] = {
            "clips": len(got),
            "heldout": src.heldout,
            "licences": licences,
            "version": got[0]["version"] if got else "",
            **dict(sorted(stats.items())),
        }
        log(f"{src.name}: {len(got)} clips {dict(stats)}")
    manifest = cfg.cache / "manifest.jsonl"
    tmp = manifest.with_name(manifest.name + ".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(manifest)
    by_split = Counter(r["split"] for r in rows)
    summary = {"clips": len(rows), "by_split": dict(by_split), "packages": per_package}
    (cfg.cache / "harvest.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"wrote {manifest}: {len(rows)} clips {dict(by_split)}")
    return summary


def read_harvest(cache: Path = DEFAULT_CACHE) -> list[dict]:
    path = cache / "manifest.jsonl"
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def groups_by_package(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        out[r["package"]].append(r)
    return dict(out)


def licence_table(summary: dict) -> str:
    """The model card's table: one row per package that gave clips."""
    lines = [
        "| package | version | clips | split | licences (as the copyright file names them) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, info in sorted(summary["packages"].items()):
        if not info["clips"]:
            continue
        split = "held out" if info["heldout"] else "train"
        licences = "; ".join(info["licences"])
        lines.append(f"| {name} | {info['version']} | {info['clips']} | {split} | {licences} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--fetch", action="store_true", help="download missing packages first")
    p.add_argument("--no-copyleft", action="store_true", help="drop GPL/CC-BY-SA/... files")
    p.add_argument("--speech-cap", type=int, default=SPEECH_CAP)
    p.add_argument("--jobs", type=int, default=2, help="packages processed in parallel")
    p.add_argument("--table", action="store_true", help="print the licence table of harvest.json")
    a = p.parse_args(argv)
    if a.table:
        print(licence_table(json.loads((a.cache / "harvest.json").read_text())))
        return
    harvest(HarvestConfig(a.cache, a.fetch, not a.no_copyleft, a.speech_cap, a.jobs))


if __name__ == "__main__":
    main()
