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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from clapsearch.audio import load_audio
from clapsearch.config import AudioConfig
from clapsearch.errors import AudioDecodeError, UsageError
from clapsearch.prompts import normalize_template, render
from trainer import augment
from trainer.config import DataConfig, DataSource


@dataclass(frozen=True)
class Example:
    """One training clip, the captions it may be paired with, and keywords (class labels,
    tags) a caption can be written from (`trainer.keywords`)."""

    path: str
    captions: tuple[str, ...]
    keywords: tuple[str, ...] = ()


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
    """A loaded source; `missing`: the clips it lists whose files are absent (skipped, and
    reported by the trainer, never dropped without a word)."""

    name: str
    examples: tuple[Example, ...]
    eval_set: EvalSet
    missing: tuple[str, ...] = ()


# --- sources ---------------------------------------------------------------------------------
def _esc50(src: DataSource) -> SourceData:
    from clapsearch.datasets.esc50 import holdout_parts, read_esc50

    clips = read_esc50(src.root)
    labels = sorted({c.target for c in clips})
    class_names = tuple(next(c.label for c in clips if c.target == t) for t in labels)
    label_index = {t: i for i, t in enumerate(labels)}
    parts = holdout_parts(clips) if src.part != "all" else {}
    templates = [normalize_template(t) for t in src.templates]
    chosen = [
        c
        for c in clips
        if (not src.folds or c.fold in src.folds)
        and (src.part == "all" or parts[c.filename] == src.part)
    ]
    missing = tuple(str(c.path) for c in chosen if not c.path.is_file())
    picked = [(str(c.path), label_index[c.target]) for c in chosen if c.path.is_file()]
    if not picked:
        raise UsageError(
            f"ESC-50 under {src.root} has no clips for folds {src.folds} part {src.part}."
        )
    examples = tuple(
        Example(p, tuple(t.format(label=class_names[y]) for t in templates), (class_names[y],))
        for p, y in picked
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
    return SourceData(eval_set.name, examples, eval_set, missing)


def _from_retrieval_set(rs) -> SourceData:
    captions: dict[int, list[str]] = defaultdict(list)
    for c, a in zip(rs.captions, rs.caption_to_audio):
        captions[a].append(c)
    examples = tuple(Example(p, tuple(captions[i])) for i, p in enumerate(rs.audio_paths))
    eval_set = EvalSet(
        rs.name, tuple(rs.audio_paths), tuple(rs.captions), tuple(rs.caption_to_audio)
    )
    return SourceData(rs.name, examples, eval_set, tuple(m.path for m in rs.missing))


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
    missing = tuple(str(c.path) for c in clips if not c.path.is_file())
    examples = [
        Example(str(c.path), c.captions, c.keywords)
        for c in clips
        if (c.captions or c.keywords) and c.path.is_file()
    ]
    if not clips:
        raise UsageError(f"manifest {src.root} has no rows for split {src.split!r}.")
    if not examples:
        raise UsageError(
            f"manifest {src.root} has no clip with a caption and an existing file for split "
            f"{src.split!r} ({len(missing)} of {len(clips)} listed files are missing)."
        )
    caps = [(c, i) for i, ex in enumerate(examples) for c in ex.captions]
    name = f"manifest/{Path(src.root).name}" + (f":{src.split}" if src.split else "")
    eval_set = EvalSet(
        name,
        tuple(ex.path for ex in examples),
        tuple(c for c, _ in caps),
        tuple(i for _, i in caps),
    )
    return SourceData(name, tuple(examples), eval_set, missing)


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


def decode_or_none(path: str, sample_rate: int) -> tuple[np.ndarray | None, str]:
    """-> (waveform, "") or (None, the failure's reason: missing, truncated, not_audio, ...)."""
    try:
        return load_audio(path, sample_rate), ""
    except AudioDecodeError as err:
        return None, err.reason


def crop_or_pad(
    wave: np.ndarray, length: int, rng: np.random.Generator, mode: str = "repeatpad"
) -> np.ndarray:
    """Training only: a random `length` window of a long clip; a short clip is fitted the way
    the model's front end fits it at inference (`AudioConfig.padding`): `repeatpad` tiles
    whole copies and zero-pads, `repeat` tiles and cuts (MS-CLAP), `pad` zero-pads."""
    n = wave.shape[0]
    if n > length:
        start = int(rng.integers(0, n - length + 1))
        return wave[start : start + length]
    if n == 0:
        return np.zeros(length, np.float32)
    if mode == "pad":
        return np.pad(wave, (0, length - n))
    if mode == "repeat":
        return np.tile(wave, -(-length // n))[:length]
    tiled = np.tile(wave, length // n)
    return np.pad(tiled, (0, length - tiled.shape[0]))


def clip_samples(data: DataConfig, front: AudioConfig) -> int:
    """Samples a training clip keeps. Window models: `clip_s` (0 = the window), cropped at
    random or padded. Fusion models: at most `clip_s` (0 = no cap), never padded: the front
    end must see each clip's real length to tell long clips (fusion) from short ones."""
    if front.truncation == "fusion":
        return int(round(data.clip_s * front.sample_rate))  # 0: whole clips
    return int(round((data.clip_s or front.window_s) * front.sample_rate))


@dataclass
class TrainItem:
    """One training pair: `wave` float32 (fixed length for window models; the real clip, up
    to the cap, for fusion models), its caption, the source file's content hash (for
    `trained_on.json`; "" unknown) and the clips skipped to find it (reason, path)."""

    wave: np.ndarray
    caption: str
    digest: str = ""
    skipped: tuple[tuple[str, str], ...] = ()


class ItemMaker:
    """The per-clip training transform, shared by the map-style and streamed datasets:
    fit the clip (`clip_samples`), pick a caption (own or keyword-written), mix, gain, shift.
    Every draw comes from the `rng` it is given, in a fixed order."""

    def __init__(self, data: DataConfig, front: AudioConfig):
        self.data = data
        self.front = front
        self.samples = clip_samples(data, front)
        self.fusion = front.truncation == "fusion"
        self._generator = None

    def fit(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.fusion:
            if self.samples and wave.shape[0] > self.samples:
                start = int(rng.integers(0, wave.shape[0] - self.samples + 1))
                wave = wave[start : start + self.samples]
            return np.asarray(wave, np.float32).copy()
        return crop_or_pad(wave, self.samples, rng, self.front.padding).astype(np.float32)

    def caption(self, example: Example, rng: np.random.Generator) -> str:
        from trainer.keywords import make_generator, pick_caption

        kw = self.data.keywords
        if self._generator is None and kw.generator != "none":
            self._generator = make_generator(kw)  # built lazily, once per loader worker
        return pick_caption(example.captions, example.keywords, rng, self._generator, kw.prob)

    def finish(
        self,
        wave: np.ndarray,
        caption: str,
        rng: np.random.Generator,
        other: Callable[[], tuple[np.ndarray, str] | None] | None = None,
        background: Callable[[], Callable[[], np.ndarray]] | None = None,
    ) -> tuple[np.ndarray, str]:
        """Mixing (with the clip `other()` gives), gain, circular shift, then the robustness
        chain of `trainer.augment` (`background()` picks a background clip, drawing from
        `rng`, and returns its loader)."""
        d = self.data
        if d.mix_prob > 0 and other is not None and rng.random() < d.mix_prob:
            pair = other()
            if pair is not None:
                b, other_caption = pair
                wave = mix(wave, _fit_length(b, wave.shape[0]), rel_db=float(rng.uniform(-5, 5)))
                caption = f"{caption} and {other_caption}"
        if d.gain_db > 0:
            wave = wave * np.float32(10 ** (rng.uniform(-d.gain_db, d.gain_db) / 20))
        if d.time_shift > 0:
            wave = np.roll(wave, int(rng.uniform(-d.time_shift, d.time_shift) * wave.shape[0]))
        if d.augment.active:
            load = background() if background is not None else None
            wave = augment.apply(wave, self.front.sample_rate, rng, d.augment, load)
        return wave, caption


def _fit_length(wave: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad `wave` to `n` samples (a mixed-in clip takes the main clip's length)."""
    return wave[:n] if wave.shape[0] >= n else np.pad(wave, (0, n - wave.shape[0]))


class TrainDataset(torch.utils.data.Dataset):
    """Key `epoch * n + i` -> `TrainItem`. A clip that cannot be decoded is replaced by the
    next one that can (deterministically) and reported in `TrainItem.skipped`."""

    def __init__(
        self,
        examples: Sequence[Example],
        data: DataConfig,
        front: AudioConfig,
        seed: int,
        cache: list[np.ndarray] | None = None,
    ):
        self.examples = list(examples)
        self.data = data
        self.sample_rate = front.sample_rate
        self.maker = ItemMaker(data, front)
        self.seed = seed
        self.cache = cache
        self._digests: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.examples)

    def _load(self, i: int) -> tuple[np.ndarray | None, str]:
        if self.cache is not None:
            return self.cache[i], ""
        return decode_or_none(self.examples[i].path, self.sample_rate)

    def digest(self, i: int) -> str:
        """The content hash of example i's file (cached per worker)."""
        if i not in self._digests:
            from clapsearch.hashing import content_hash

            try:
                self._digests[i] = content_hash(self.examples[i].path)
            except OSError:
                self._digests[i] = ""
        return self._digests[i]

    def __getitem__(self, key: int) -> TrainItem:
        epoch, i = divmod(int(key), len(self.examples))
        rng = np.random.default_rng([self.seed, epoch, i])
        skipped = []
        wave, reason = self._load(i)
        while wave is None and len(skipped) < len(self.examples):
            skipped.append((reason, self.examples[i].path))
            i = (i + 1) % len(self.examples)
            wave, reason = self._load(i)
        if wave is None:
            raise UsageError("no training clip could be decoded.")
        wave = self.maker.fit(wave, rng)
        caption = self.maker.caption(self.examples[i], rng)

        def other() -> tuple[np.ndarray, str] | None:
            n = len(self.examples)
            if n < 2:
                return None
            j = (i + 1 + int(rng.integers(n - 1))) % n
            b, _ = self._load(j)
            if b is None:
                return None
            return self.maker.fit(b, rng), self.maker.caption(self.examples[j], rng)

        def background() -> Callable[[], np.ndarray]:
            n = len(self.examples)
            j = (i + 1 + int(rng.integers(max(1, n - 1)))) % n

            def load() -> np.ndarray:
                b, _ = self._load(j)
                return self.maker.fit(b, rng) if b is not None else np.zeros_like(wave)

            return load

        wave, caption = self.maker.finish(wave, caption, rng, other, background)
        return TrainItem(wave, caption, self.digest(i), tuple(skipped))


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
    """`waveforms (B, samples)` float32, zero-padded to the longest clip; `lengths (B,)` the
    real lengths (all equal for window models); `input_ids`, `attention_mask` `(B, L)`;
    `digests`: content hashes of the clips' files; `skipped`: (reason, path) of clips that
    could not be used."""

    waveforms: torch.Tensor
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    captions: list[str]
    lengths: torch.Tensor | None = None
    digests: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return self.waveforms.shape[0]

    def clips(self) -> list[torch.Tensor]:
        """The real clips, unpadded."""
        if self.lengths is None:
            return list(self.waveforms)
        return [w[: int(n)] for w, n in zip(self.waveforms, self.lengths)]


class Collate:
    """Stack waveforms and tokenise captions (in the loader's workers)."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, items: list[TrainItem]) -> TrainBatch:
        captions = [it.caption for it in items]
        tokens = self.tokenizer(
            captions, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        lengths = [it.wave.shape[0] for it in items]
        longest = max(lengths)
        waves = np.zeros((len(items), longest), np.float32)
        for row, it in zip(waves, items):
            row[: it.wave.shape[0]] = it.wave
        return TrainBatch(
            torch.from_numpy(waves),
            tokens["input_ids"],
            tokens["attention_mask"],
            captions,
            torch.tensor(lengths),
            [it.digest for it in items],
            [s for it in items for s in it.skipped],
        )


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
