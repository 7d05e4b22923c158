"""Streamed training data: WebDataset tar shards (LAION-CLAP's layout) and manifests read row
by row, in memory that does not grow with the dataset.

**Sources.**
- `webdataset`: `.tar` shards (a folder, a glob, a `{000000..000099}` range, or a text file
  listing shards). Members that share a key (`dir/0001.flac`, `dir/0001.json`) are one
  sample: the audio member (flac, wav, mp3, ogg, opus, m4a, aac, aiff) and a JSON member as
  LAION-CLAP writes it (`text`: a caption or a list; `tag`: keywords, used by keyword-to-
  caption augmentation) or a `.txt` caption. The sample count comes from the shard folder's
  `sizes.json` ({"shard.tar": n}, LAION's) or from one pass over the tar headers.
- `manifest` with `stream: true`: `clapsearch.datasets.manifest.iter_manifest`, one row a clip.

**Order, sharding, resume.** Each epoch the shards are shuffled with (seed, epoch). A loader
worker of a rank owns a *slot* (rank x workers + role); with at least as many shards as
slots a slot reads every slots-th shard, otherwise (few shards, manifests) every slots-th
sample of all of them. Its samples pass a shuffle buffer of `data.shuffle_buffer` encoded
clips seeded with (seed, epoch, slot, pass) and are cycled when the slot runs out, so every
slot delivers its quota of batches: `batches_per_epoch = samples // (batch_size x world)`
for every rank, as the indexed sampler. Global batch b of the epoch comes from the slot with
role b mod workers, as its (b // workers)-th batch, so the loader's round-robin order and a
resume at batch b are exact (the skipped samples are read, not decoded). A sample's random
choices (crop, caption, augmentation) come from (seed, epoch, slot, position).

**Missing and broken clips.** A sample whose file is missing, whose audio does not decode,
or that has no caption and no keyword is replaced by the next usable sample of the same slot
(so positions, and resume, stay exact) and counted (`TrainItem.skipped`); the trainer logs
the counts and says them in one line at the end.

Memory per worker: the shuffle buffer (encoded clips) plus one decoded clip; the trainer
process keeps nothing per sample except the content hashes for `trained_on.json`.
"""

from __future__ import annotations

import glob
import json
import os
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from clapsearch.errors import UsageError
from trainer.config import DataConfig, DataSource
from trainer.data import Example, ItemMaker, TrainItem, decode_or_none

AUDIO_EXTS = ("flac", "wav", "mp3", "ogg", "opus", "m4a", "aac", "aiff", "aif")


@dataclass(frozen=True)
class RawSample:
    """One sample before decoding: a file (`path`) or a tar member's bytes (`data`)."""

    key: str
    captions: tuple[str, ...]
    keywords: tuple[str, ...] = ()
    path: str = ""
    data: bytes | None = None
    ext: str = ""
    problem: str = ""  # "no_caption", "no_audio": counted, never trained on


# --- webdataset shards -----------------------------------------------------------------------
def _expand_braces(pattern: str) -> list[str]:
    """`a{000..003}b` -> a000b .. a003b (one numeric range, zero-padded as written)."""
    m = re.search(r"\{(\d+)\.\.(\d+)\}", pattern)
    if not m:
        return [pattern]
    lo, hi = m.group(1), m.group(2)
    width = len(lo)
    return [
        name
        for n in range(int(lo), int(hi) + 1)
        for name in _expand_braces(pattern[: m.start()] + str(n).zfill(width) + pattern[m.end() :])
    ]


def list_shards(root: str) -> list[Path]:
    """The `.tar` shards a `webdataset` root names (see module doc), in a stable order."""
    path = Path(root).expanduser()
    if path.is_dir():
        shards = sorted(path.glob("*.tar"))
    elif path.is_file() and path.suffix != ".tar":
        base = path.parent
        lines = path.read_text(encoding="utf-8").splitlines()
        shards = [base / line.strip() for line in lines if line.strip()]
    elif any(c in root for c in "*?[{"):
        shards = sorted(Path(p) for pat in _expand_braces(root) for p in glob.glob(pat))
    else:
        shards = [path]
    missing = [s for s in shards if not s.is_file()]
    if not shards or missing:
        what = f"{missing[0]} does not exist" if missing else "names no .tar shards"
        raise UsageError(f"webdataset {root}: {what}.")
    return shards


def _split_key(name: str) -> tuple[str, str]:
    """WebDataset's rule: the key is the path up to the first dot of the file name."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), (ext.lower() if dot else "")


def _text_fields(meta: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    text = meta.get("text", meta.get("caption", meta.get("captions", ())))
    texts = [text] if isinstance(text, str) else list(text or ())
    tags = meta.get("tag", meta.get("tags", meta.get("keywords", ())))
    tags = tags.split(";") if isinstance(tags, str) else list(tags or ())
    clean = tuple(dict.fromkeys(str(t).strip() for t in texts if str(t).strip()))
    return clean, tuple(dict.fromkeys(str(t).strip() for t in tags if str(t).strip()))


def _sample_of(key: str, members: dict[str, bytes]) -> RawSample:
    audio_ext = next((e for e in AUDIO_EXTS if e in members), "")
    captions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    if "json" in members:
        try:
            meta = json.loads(members["json"].decode("utf-8"))
            if isinstance(meta, dict):
                captions, keywords = _text_fields(meta)
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
    if not captions and "txt" in members:
        text = members["txt"].decode("utf-8", "replace").strip()
        captions = (text,) if text else ()
    problem = "" if audio_ext else "no_audio"
    if not problem and not captions and not keywords:
        problem = "no_caption"
    return RawSample(
        key, captions, keywords, data=members.get(audio_ext), ext=audio_ext, problem=problem
    )


def iter_tar(path: Path) -> Iterator[RawSample]:
    """The samples of one shard, read front to back (no seeking: works on pipes too)."""
    try:
        with tarfile.open(path, mode="r|*") as tar:
            key, members = None, {}
            for info in tar:
                if not info.isfile():
                    continue
                k, ext = _split_key(info.name)
                if k != key and key is not None:
                    yield _sample_of(key, members)
                    members = {}
                key = k
                fh = tar.extractfile(info)
                members[ext] = fh.read() if fh is not None else b""
            if key is not None:
                yield _sample_of(key, members)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise UsageError(f"shard {path} cannot be read ({err}).") from None


def shard_sizes(shards: list[Path]) -> list[int]:
    """Samples per shard: from `sizes.json` beside them (LAION), else one header pass."""
    sizes: dict[str, int] = {}
    for folder in {s.parent for s in shards}:
        f = folder / "sizes.json"
        if f.is_file():
            try:
                sizes.update({k: int(v) for k, v in json.loads(f.read_text()).items()})
            except (ValueError, AttributeError):
                raise UsageError(f"{f} is not a JSON map of shard name to sample count.") from None
    out = []
    for shard in shards:
        if shard.name in sizes:
            out.append(sizes[shard.name])
            continue
        try:
            with tarfile.open(shard) as tar:
                out.append(len({_split_key(m.name)[0] for m in tar if m.isfile()}))
        except (tarfile.TarError, OSError) as err:
            raise UsageError(f"shard {shard} cannot be read ({err}).") from None
    return out


# --- sources as units of samples -------------------------------------------------------------
@dataclass(frozen=True)
class StreamSource:
    """A streamed source: `units` (shards, or the one manifest) and their sample counts."""

    name: str
    units: tuple[str, ...]
    sizes: tuple[int, ...]
    kind: str
    split: str = ""

    @property
    def samples(self) -> int:
        return sum(self.sizes)

    def read(self, unit: str) -> Iterator[RawSample]:
        if self.kind == "webdataset":
            yield from iter_tar(Path(unit))
            return
        from clapsearch.datasets.manifest import iter_manifest

        for n, clip in enumerate(iter_manifest(unit, split=self.split)):
            problem = "" if (clip.captions or clip.keywords) else "no_caption"
            yield RawSample(
                f"{unit}:{n}", clip.captions, clip.keywords, str(clip.path), problem=problem
            )


def open_stream_source(src: DataSource) -> StreamSource:
    """List and count a streamed source (one pass over a manifest's rows; shard sizes)."""
    if src.kind == "webdataset":
        shards = list_shards(src.root)
        name = f"webdataset/{Path(src.root).name}"
        return StreamSource(name, tuple(map(str, shards)), tuple(shard_sizes(shards)), src.kind)
    from clapsearch.datasets.manifest import iter_manifest

    count = sum(1 for _ in iter_manifest(src.root, split=src.split))
    if not count:
        raise UsageError(f"manifest {src.root} has no rows for split {src.split!r}.")
    name = f"manifest/{Path(src.root).name}" + (f":{src.split}" if src.split else "")
    return StreamSource(name, (src.root,), (count,), "manifest", src.split)


# --- the iterable dataset --------------------------------------------------------------------
class StreamDataset(torch.utils.data.IterableDataset):
    """This rank's `TrainItem`s of one epoch, `batches` batches of `batch_size` from
    `start` on, split over the loader's workers as the module doc says."""

    def __init__(
        self,
        sources: list[StreamSource],
        maker: ItemMaker,
        data: DataConfig,
        sample_rate: int,
        seed: int,
        epoch: int,
        batch_size: int,
        batches: int,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
    ):
        self.sources, self.maker, self.data = sources, maker, data
        self.sample_rate, self.seed, self.epoch = sample_rate, seed, epoch
        self.batch_size, self.batches, self.start = batch_size, batches, start
        self.rank, self.world_size = rank, world_size

    def _units(self) -> list[tuple[StreamSource, str]]:
        units = [(s, u) for s in self.sources for u in s.units]
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(units))
        return [units[i] for i in order]

    def _raw(self, slot: int, slots: int) -> Iterator[RawSample]:
        """This slot's samples, shuffled, cycled for ever (module doc)."""
        units = self._units()
        by_unit = len(units) >= slots
        for cycle in range(1 << 62):
            rng = np.random.default_rng([self.seed, self.epoch, slot, cycle])
            buffer: list[RawSample] = []
            produced = False
            for sample in self._slot_samples(units, slot, slots, by_unit):
                produced = True
                buffer.append(sample)
                if len(buffer) >= self.data.shuffle_buffer:
                    yield buffer.pop(int(rng.integers(len(buffer))))
            while buffer:
                yield buffer.pop(int(rng.integers(len(buffer))))
            if not produced:
                raise UsageError("a streamed source delivered no samples to a loader worker.")

    @staticmethod
    def _slot_samples(units, slot: int, slots: int, by_unit: bool) -> Iterator[RawSample]:
        if by_unit:
            for source, unit in units[slot::slots]:
                yield from source.read(unit)
            return
        n = 0
        for source, unit in units:
            for sample in source.read(unit):
                if n % slots == slot:
                    yield sample
                n += 1

    def _decode(self, sample: RawSample, workdir: str) -> tuple[np.ndarray | None, str, str]:
        """-> (waveform or None, failure reason, content hash)."""
        from clapsearch.hashing import content_hash

        if sample.problem:
            return None, sample.problem, ""
        path = sample.path
        if sample.data is not None:
            path = os.path.join(workdir, f"clip.{sample.ext}")
            with open(path, "wb") as f:
                f.write(sample.data)
        wave, reason = decode_or_none(path, self.sample_rate)
        digest = content_hash(path) if wave is not None else ""
        return wave, reason, digest

    def __iter__(self) -> Iterator[TrainItem]:
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        role = (worker + self.start) % workers
        slot, slots = self.rank * workers + role, self.world_size * workers
        mine = [b for b in range(self.start, self.batches) if b % workers == role]
        if not mine:
            return
        first = mine[0] // workers * self.batch_size  # this role's position of batch mine[0]
        needed = len(mine) * self.batch_size
        raw = self._raw(slot, slots)
        for _ in range(first):
            next(raw)  # read, not decoded
        pending: list[RawSample] = []
        with tempfile.TemporaryDirectory(prefix="clapsearch-stream-") as workdir:
            for k in range(needed):
                sample = pending.pop(0) if pending else next(raw)
                position = first + k
                rng = np.random.default_rng([self.seed, self.epoch, slot, position])
                wave, reason, digest = self._decode(sample, workdir)
                skipped = []
                lookahead = 0
                while wave is None:
                    skipped.append((reason, sample.path or sample.key))
                    if lookahead < len(pending):
                        sample = pending[lookahead]
                    else:
                        sample = next(raw)
                        pending.append(sample)
                    lookahead += 1
                    wave, reason, digest = self._decode(sample, workdir)
                    if len(skipped) > 1000:
                        raise UsageError("over 1000 streamed clips in a row could not be used.")
                example = Example(sample.path or sample.key, sample.captions, sample.keywords)
                clip = self.maker.fit(wave, rng)
                caption = self.maker.caption(example, rng)
                clip, caption = self.maker.finish(clip, caption, rng)
                yield TrainItem(clip, caption, digest, tuple(skipped))


def stream_loader(dataset: StreamDataset, collate: Callable, workers: int, pin: bool):
    """A DataLoader over `dataset`: each worker yields whole batches (`batch_size` items)."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=dataset.batch_size,
        collate_fn=collate,
        num_workers=workers,
        pin_memory=pin,
        prefetch_factor=2 if workers else None,
        persistent_workers=False,
        # A private generator: the loader's base seed must not come from the global RNG, or
        # a resumed run (fewer loader starts) would drift from an uninterrupted one.
        generator=torch.Generator().manual_seed(dataset.seed),
    )


__all__ = [
    "RawSample",
    "StreamDataset",
    "StreamSource",
    "iter_tar",
    "list_shards",
    "open_stream_source",
    "shard_sizes",
    "stream_loader",
]
