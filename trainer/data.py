"""Training data: datasets -> (clip, caption) examples, augmentation, batches.

Sources (one function each in `SOURCES`, chosen by `DataSource.kind`):
- `esc50`: captions from the class label through prompt templates; `folds` and `part` select
  clips; its validation view scores retrieval (one clip per class, so every caption has one
  right answer) and zero-shot accuracy over all classes;
- `clotho`, `audiocaps`: the human captions;
- `manifest`: CSV or JSONL rows of an audio path and caption(s), optionally a `split` column.
Every layout is read by `clapsearch.datasets` (the same readers as the benchmarks); label
captions use `clapsearch.prompts` templates ("the sound of {label}").

Randomness is a pure function of (seed, epoch, example index): the batch sampler yields keys
`epoch * n + index` and each item draws its crop, caption and augmentation from
`default_rng([seed, epoch, index])`. So any worker count gives the same batches, and a run
resumed mid-epoch sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from clapsearch.audio import load_audio
from clapsearch.errors import UsageError
from clapsearch.prompts import normalize_template, render
from trainer import augment
from trainer.config import DataConfig, DataSource


@dataclass(frozen=True)
class Example:
    """One training clip and the captions it may be paired with."""

    path: str
    captions: tuple[str, ...]


@dataclass(frozen=True)
class EvalSet:
    """A validation view: retrieval (`caption_to_audio[i]` indexes `audio_paths`) and, when
    `class_names` is set, zero-shot classification of `zs_paths` with `prompts`."""

    name: str
    audio_paths: tuple[str, ...]
    captions: tuple[str, ...]
    caption_to_audio: tuple[int, ...]
    zs_paths: tuple[str, ...] = ()
    zs_labels: tuple[int, ...] = ()
    prompts: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceData:
    name: str
    examples: tuple[Example, ...]
    eval_set: EvalSet


# --- sources ---------------------------------------------------------------------------------
def _esc50(src: DataSource) -> SourceData:
    from clapsearch.datasets.esc50 import holdout_parts, read_esc50

    clips = read_esc50(src.root)
    labels = sorted({c.target for c in clips})
    class_names = tuple(next(c.label for c in clips if c.target == t) for t in labels)
    label_index = {t: i for i, t in enumerate(labels)}
    parts = holdout_parts(clips) if src.part != "all" else {}
    templates = [normalize_template(t) for t in src.templates]
    picked = [
        (str(c.path), label_index[c.target])
        for c in clips
        if (not src.folds or c.fold in src.folds)
        and (src.part == "all" or parts[c.filename] == src.part)
        and c.path.is_file()
    ]
    if not picked:
        raise UsageError(
            f"ESC-50 under {src.root} has no clips for folds {src.folds} part {src.part}."
        )
    examples = tuple(
        Example(p, tuple(t.format(label=class_names[y]) for t in templates)) for p, y in picked
    )
    first_of_class: dict[int, str] = {}
    for p, y in picked:
        first_of_class.setdefault(y, p)
    present = sorted(first_of_class)
    eval_set = EvalSet(
        name=f"esc50/{src.part}",
        audio_paths=tuple(first_of_class[y] for y in present),
        captions=tuple(render([class_names[y] for y in present], templates[0])),
        caption_to_audio=tuple(range(len(present))),
        zs_paths=tuple(p for p, _ in picked),
        zs_labels=tuple(y for _, y in picked),
        prompts=tuple(render(class_names, templates[0])),
    )
    return SourceData(eval_set.name, examples, eval_set)


def _from_retrieval_set(rs) -> SourceData:
    captions: dict[int, list[str]] = defaultdict(list)
    for c, a in zip(rs.captions, rs.caption_to_audio):
        captions[a].append(c)
    examples = tuple(Example(p, tuple(captions[i])) for i, p in enumerate(rs.audio_paths))
    eval_set = EvalSet(
        rs.name, tuple(rs.audio_paths), tuple(rs.captions), tuple(rs.caption_to_audio)
    )
    return SourceData(rs.name, examples, eval_set)


def _clotho(src: DataSource) -> SourceData:
    from clapsearch.datasets.clotho import load_clotho

    return _from_retrieval_set(load_clotho(src.root, src.split or "development"))


def _audiocaps(src: DataSource) -> SourceData:
    from clapsearch.datasets.audiocaps import load_audiocaps

    return _from_retrieval_set(load_audiocaps(src.root, src.split or "train", src.audio_pattern))


def _manifest(src: DataSource) -> SourceData:
    """The manifest rule of `clapsearch.datasets.manifest`; clips without captions are skipped
    (nothing to pair them with)."""
    from clapsearch.datasets.manifest import read_manifest

    clips = read_manifest(src.root, split=src.split)
    examples = [Example(str(c.path), c.captions) for c in clips if c.captions]
    if not examples:
        raise UsageError(f"manifest {src.root} has no rows for split {src.split!r}.")
    caps = [(c, i) for i, ex in enumerate(examples) for c in ex.captions]
    name = f"manifest/{Path(src.root).name}" + (f":{src.split}" if src.split else "")
    eval_set = EvalSet(
        name,
        tuple(ex.path for ex in examples),
        tuple(c for c, _ in caps),
        tuple(i for _, i in caps),
    )
    return SourceData(name, tuple(examples), eval_set)


SOURCES: dict[str, Callable[[DataSource], SourceData]] = {
    "esc50": _esc50,
    "clotho": _clotho,
    "audiocaps": _audiocaps,
    "manifest": _manifest,
}


def load_source(src: DataSource) -> SourceData:
    if src.kind not in SOURCES:
        raise UsageError(f"unknown data source kind {src.kind!r}; use one of {sorted(SOURCES)}.")
    return SOURCES[src.kind](src)


# --- audio -----------------------------------------------------------------------------------
def decode_all(paths: Sequence[str], sample_rate: int, threads: int = 4) -> list[np.ndarray]:
    """Decode clips in parallel threads (soundfile and soxr release the GIL)."""
    with ThreadPoolExecutor(max(1, threads)) as pool:
        return list(pool.map(lambda p: load_audio(p, sample_rate), paths))


def crop_or_pad(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Training only: a random `length` window of a long clip; short clips are tiled whole
    and zero-padded (`repeatpad`, as the CLAP front end)."""
    n = wave.shape[0]
    if n > length:
        start = int(rng.integers(0, n - length + 1))
        return wave[start : start + length]
    if n == 0:
        return np.zeros(length, np.float32)
    tiled = np.tile(wave, length // n)
    return np.pad(tiled, (0, length - tiled.shape[0]))


class TrainDataset(torch.utils.data.Dataset):
    """Key `epoch * n + i` -> (waveform `(clip_samples,)` float32, caption str)."""

    def __init__(
        self,
        examples: Sequence[Example],
        data: DataConfig,
        sample_rate: int,
        clip_samples: int,
        seed: int,
        cache: list[np.ndarray] | None = None,
    ):
        self.examples = list(examples)
        self.data = data
        self.sample_rate = sample_rate
        self.clip_samples = clip_samples
        self.seed = seed
        self.cache = cache

    def __len__(self) -> int:
        return len(self.examples)

    def _wave(self, i: int, rng: np.random.Generator) -> np.ndarray:
        wave = (
            self.cache[i]
            if self.cache is not None
            else load_audio(self.examples[i].path, self.sample_rate)
        )
        return crop_or_pad(wave, self.clip_samples, rng).astype(np.float32, copy=True)

    def __getitem__(self, key: int) -> tuple[np.ndarray, str]:
        epoch, i = divmod(int(key), len(self.examples))
        rng = np.random.default_rng([self.seed, epoch, i])
        wave = self._wave(i, rng)
        caption = self.examples[i].captions[int(rng.integers(len(self.examples[i].captions)))]
        d = self.data
        if d.mix_prob > 0 and len(self.examples) > 1 and rng.random() < d.mix_prob:
            j = (i + 1 + int(rng.integers(len(self.examples) - 1))) % len(self.examples)
            other = self._wave(j, rng)
            other_caption = self.examples[j].captions[
                int(rng.integers(len(self.examples[j].captions)))
            ]
            wave = mix(wave, other, rel_db=float(rng.uniform(-5.0, 5.0)))
            caption = f"{caption} and {other_caption}"
        if d.gain_db > 0:
            wave = wave * np.float32(10 ** (rng.uniform(-d.gain_db, d.gain_db) / 20))
        if d.time_shift > 0:
            wave = np.roll(wave, int(rng.uniform(-d.time_shift, d.time_shift) * wave.shape[0]))
        if d.augment.active:
            n = len(self.examples)
            other = (i + 1 + int(rng.integers(max(1, n - 1)))) % n
            wave = augment.apply(
                wave, self.sample_rate, rng, d.augment, lambda: self._wave(other, rng)
            )
        return wave, caption


def mix(a: np.ndarray, b: np.ndarray, rel_db: float) -> np.ndarray:
    """`a + b` with `b` at `rel_db` relative to `a`'s RMS, scaled back to `a`'s peak range."""
    rms_a = float(np.sqrt(np.mean(a**2)) + 1e-8)
    rms_b = float(np.sqrt(np.mean(b**2)) + 1e-8)
    out = a + b * np.float32(rms_a / rms_b * 10 ** (rel_db / 20))
    peak = float(np.abs(out).max())
    limit = max(float(np.abs(a).max()), 1e-4)
    return (out * np.float32(limit / peak) if peak > limit else out).astype(np.float32)


@dataclass
class TrainBatch:
    """`waveforms (B, samples)` float32; `input_ids`, `attention_mask` `(B, L)`."""

    waveforms: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    captions: list[str]

    def __len__(self) -> int:
        return self.waveforms.shape[0]


class Collate:
    """Stack waveforms and tokenise captions (in the loader's workers)."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, items: list[tuple[np.ndarray, str]]) -> TrainBatch:
        captions = [c for _, c in items]
        tokens = self.tokenizer(
            captions, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        waves = torch.from_numpy(np.stack([w for w, _ in items]))
        return TrainBatch(waves, tokens["input_ids"], tokens["attention_mask"], captions)


class EpochBatchSampler(torch.utils.data.Sampler):
    """This rank's batches of one epoch: a permutation seeded by `seed + epoch`, cut into
    global batches of `batch_size * world_size` (the incomplete last one dropped, so every
    contrastive batch has the same size); rank r takes slot r of each. `start` skips batches
    already done (resume)."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        epoch: int,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
    ):
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.rank, self.world_size, self.start = rank, world_size, start

    @staticmethod
    def batches_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
        return n // (batch_size * world_size)

    def __len__(self) -> int:
        return self.batches_per_epoch(self.n, self.batch_size, self.world_size) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        global_batch = self.batch_size * self.world_size
        total = self.batches_per_epoch(self.n, self.batch_size, self.world_size)
        for b in range(self.start, total):
            lo = b * global_batch + self.rank * self.batch_size
            yield [self.epoch * self.n + i for i in perm[lo : lo + self.batch_size]]
