"""Build the default model's training corpus: real clips + generated speech, music and signals.

    python -m trainer.data_prep.build_default_data --out data/default-model [--jobs 2]

Writes under `--out`:
- `audio/{speech,music,signals,mixtures}/*.flac`: generated clips (48 kHz mono, 5 s);
- `train.jsonl`, `val.jsonl`, `trainval.jsonl`, `test.jsonl`: manifests (see `common.write_manifest`;
  real clips are referenced where they lie, not copied);
- `heldout.jsonl`: the clips of the held-out Debian packages (cross-source test, never trained on);
- `build.json`: parameters and counts per source and split.

Deterministic: the same arguments give the same manifests and the same audio bytes. A
generated file's name carries a hash of its spec, so reruns skip clips already rendered and a
changed recipe never reuses a stale file. A generator whose tool is missing is skipped with a
message (install them with `make default-model-deps`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from trainer.data_prep import mixtures, music, real, signals, speech
from trainer.data_prep.common import ClipRecord, ToolMissing, log, write_manifest
from trainer.data_prep.debian_fetch import DEFAULT_CACHE

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
VAL_EVERY = 20  # every 20th generated clip goes to validation
DEBIAN_PER_CAPTION = 40  # training clips of one caption per Debian package


@dataclass(frozen=True)
class BuildConfig:
    out: Path
    esc50_dir: Path = SHARED / "esc50-mini"
    clotho_dir: Path = SHARED / "clotho-mini"
    debian: Path | None = None  # harvest_debian's manifest (the CLI's default: the cache's)
    seed: int = 0
    speech: int = 260
    music: int = 320
    signals: int = 180
    mixtures: int = 360
    real_repeat: int = 3  # real training clips appear this many times per epoch
    jobs: int = 1


def spec_file(out: Path, group: str, spec) -> Path:
    digest = hashlib.sha1(repr(spec).encode()).hexdigest()[:8]
    return out / "audio" / group / f"{spec.key}-{digest}.flac"


def _render(job: tuple[object, Path]) -> None:
    spec, path = job
    spec.render(path)


def render_all(
    specs: list, group: str, cfg: BuildConfig, split_of: Callable[[int], str]
) -> list[ClipRecord]:
    """Render the specs whose file is missing (in `cfg.jobs` processes) and return records."""
    paths = [spec_file(cfg.out, group, s) for s in specs]
    todo = [(s, p) for s, p in zip(specs, paths, strict=True) if not p.exists()]
    t0 = time.time()
    if todo:
        if cfg.jobs > 1:
            with ProcessPoolExecutor(cfg.jobs) as pool:
                list(pool.map(_render, todo, chunksize=4))
        else:
            for job in todo:
                _render(job)
    log(f"{group}: {len(specs)} clips ({len(todo)} rendered in {time.time() - t0:.0f} s)")
    return [
        ClipRecord(str(p.resolve()), s.captions, group, split_of(i))
        for i, (s, p) in enumerate(zip(specs, paths, strict=True))
    ]


def _generated_split(i: int) -> str:
    return "val" if i % VAL_EVERY == VAL_EVERY - 1 else "train"


def real_records(cfg: BuildConfig) -> list[ClipRecord]:
    records: list[ClipRecord] = []
    if (cfg.esc50_dir / "esc50.csv").is_file():
        records += real.esc50_records(cfg.esc50_dir)
    else:
        log(f"skipping esc50: no {cfg.esc50_dir / 'esc50.csv'}")
    if (cfg.clotho_dir / "clotho_captions_evaluation.csv").is_file():
        records += real.clotho_records(cfg.clotho_dir)
    else:
        log(f"skipping clotho: no {cfg.clotho_dir / 'clotho_captions_evaluation.csv'}")
    return records


def debian_records(manifest: Path, per_caption: int = DEBIAN_PER_CAPTION) -> list[ClipRecord]:
    """The harvested Debian clips: held-out packages are `test`; of the rest, every 20th
    *source file* (by a hash of package and member, so the pieces of one long file stay
    together) is `val`. A package gives at most `per_caption` training clips of one caption
    (a drum kit's 300 "a guitar" chords would otherwise outweigh whole packages), chosen by
    that hash."""
    if not manifest.is_file():
        log(f"skipping debian sounds: no {manifest} (run trainer.data_prep.harvest_debian)")
        return []
    with open(manifest, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]

    def key(d: dict) -> bytes:
        return hashlib.sha1(f"{d['package']}/{d['member']}/{d['piece']}".encode()).digest()

    records, taken = [], Counter()
    for d in sorted(rows, key=key):
        split = d["split"]
        if split == "train":
            member = hashlib.sha1(f"{d['package']}/{d['member']}".encode()).digest()
            split = "val" if member[0] % VAL_EVERY == 0 else "train"
        if split == "train":
            taken[(d["package"], d["caption"])] += 1
            if taken[(d["package"], d["caption"])] > per_caption:
                continue
        records.append(ClipRecord(d["path"], tuple(d["captions"]), d["source"], split))
    return sorted(records, key=lambda r: r.path)


def generated_records(cfg: BuildConfig) -> list[ClipRecord]:
    records: list[ClipRecord] = []
    for group, module, count in (
        ("speech", speech, cfg.speech),
        ("music", music, cfg.music),
        ("signals", signals, cfg.signals),
    ):
        if count <= 0:
            continue
        try:
            module.check()
        except ToolMissing as e:
            log(f"skipping {group}: {e}")
            continue
        records += render_all(module.specs(cfg.seed, count), group, cfg, _generated_split)
    return records


def build(cfg: BuildConfig) -> dict:
    """Build the corpus described by `cfg`; returns the summary also written to build.json."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    debian = debian_records(cfg.debian) if cfg.debian else []
    records = real_records(cfg) + debian + generated_records(cfg)
    if cfg.mixtures > 0:
        mix_specs = mixtures.specs(cfg.seed, cfg.mixtures, records)
        records += render_all(mix_specs, "mixtures", cfg, _generated_split)
    train = [r for r in records if r.split == "train"]
    val = [r for r in records if r.split == "val"]
    test = [r for r in records if r.split == "test"]

    def weighted(rows: list[ClipRecord]) -> list[ClipRecord]:
        real_rows = [r for r in rows if r.source in ("esc50", "clotho")]
        return rows + real_rows * (cfg.real_repeat - 1)

    manifests = {
        "train": weighted(train),
        "val": val,
        "trainval": weighted(train + val),
        "test": [r for r in test if not r.source.startswith("debian:")],
        "heldout": [r for r in test if r.source.startswith("debian:")],
    }
    for name, rows in manifests.items():
        write_manifest(rows, cfg.out / f"{name}.jsonl")
    summary = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(cfg).items()},
        "clips": {
            f"{s}/{src}": n
            for (s, src), n in sorted(Counter((r.split, r.source) for r in records).items())
        },
        "manifest_rows": {name: len(rows) for name, rows in manifests.items()},
    }
    (cfg.out / "build.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"wrote {cfg.out}: " + ", ".join(f"{k} {v}" for k, v in summary["manifest_rows"].items()))
    return summary


def parse_args(argv: list[str] | None = None) -> BuildConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "data" / "default-model")
    p.add_argument("--esc50-dir", type=Path, default=BuildConfig.esc50_dir)
    p.add_argument("--clotho-dir", type=Path, default=BuildConfig.clotho_dir)
    p.add_argument(
        "--debian", type=Path, default=DEFAULT_CACHE / "manifest.jsonl", help="harvest manifest"
    )
    for name in ("seed", "speech", "music", "signals", "mixtures", "real_repeat", "jobs"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(BuildConfig, name))
    a = p.parse_args(argv)
    return BuildConfig(
        a.out.resolve(),
        a.esc50_dir.resolve(),
        a.clotho_dir.resolve(),
        a.debian.resolve(),
        a.seed,
        a.speech,
        a.music,
        a.signals,
        a.mixtures,
        a.real_repeat,
        a.jobs,
    )


def main(argv: list[str] | None = None) -> None:
    build(parse_args(argv))


if __name__ == "__main__":
    main()
