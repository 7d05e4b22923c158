"""What the loop eats: the training sources behind one loader per epoch, and the validator.

Two kinds of training data, never mixed in one run (`trainer.checks`):

- indexed (`esc50`, `clotho`, `audiocaps`, `manifest`): every clip listed in memory (a path
  and captions), read by `TrainDataset` through the seeded `EpochBatchSampler`;
- streamed (`webdataset`, `manifest` with `stream: true`): `trainer.stream.StreamDataset`,
  bounded memory whatever the dataset's size.

Clips a source lists whose files are absent are said in one line per source when the run
starts (rank 0), and the clips skipped while training (missing, undecodable, no caption) are
counted in the log (`skipped`) and said in one line at the end.
"""

from __future__ import annotations

import sys
from collections import Counter

import torch

from clapsearch.errors import UsageError
from trainer.checks import streams
from trainer.config import TrainConfig
from trainer.data import (
    Collate,
    EpochBatchSampler,
    TrainDataset,
    decode_or_none,
    load_source,
)
from trainer.evaluate import ShardEvalSet, Validator


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class TrainData:
    """Sources, per-epoch loaders and the validator of one run (see module doc)."""

    def __init__(self, cfg: TrainConfig, tokenizer, rank: int, world_size: int, pin: bool):
        self.cfg, self.rank, self.world_size, self.pin = cfg, rank, world_size, pin
        self.collate = Collate(tokenizer, cfg.model.text_encoder.max_length)
        self.streamed = any(streams(s) for s in cfg.data.train)
        n = self._setup_streamed() if self.streamed else self._setup_indexed()
        self.batches_per_epoch = EpochBatchSampler.batches_per_epoch(n, cfg.batch_size, world_size)
        if self.batches_per_epoch == 0:
            raise UsageError(
                f"{n} training clips make no full batch of {cfg.batch_size} x "
                f"{world_size} processes; lower batch_size."
            )
        self.validator = self._validator() if rank == 0 and cfg.data.val else None
        self.skipped: Counter = Counter()
        self.first_skipped = ""

    def _report_missing(self, name: str, listed: int, missing: tuple[str, ...]) -> None:
        if missing and self.rank == 0:
            say(
                f"data: {name}: {len(missing)} of {listed} listed clips are missing and "
                f"skipped (first: {missing[0]})."
            )

    def _setup_indexed(self) -> int:
        cfg, front = self.cfg, self.cfg.model.audio
        sources = [load_source(s) for s in cfg.data.train]
        examples = [ex for s in sources for ex in s.examples]
        for s in sources:
            self._report_missing(s.name, len(s.examples) + len(s.missing), s.missing)
        self.names = tuple(
            f"{s.name} from {src.root} ({len(s.examples)} clips)"
            for s, src in zip(sources, cfg.data.train)
        )
        cache = None
        if cfg.data.cache_audio:
            cache, kept, failed = [], [], []
            for ex in examples:
                wave, reason = decode_or_none(ex.path, front.sample_rate)
                if wave is None:
                    failed.append(f"{ex.path} ({reason.replace('_', ' ')})")
                    continue
                cache.append(wave)
                kept.append(ex)
            if failed and self.rank == 0:
                say(
                    f"data: {len(failed)} of {len(examples)} clips cannot be decoded and are "
                    f"skipped (first: {failed[0]})."
                )
            examples = kept
        self.dataset = TrainDataset(examples, cfg.data, front, cfg.seed, cache)
        return len(examples)

    def _setup_streamed(self) -> int:
        from trainer.data import ItemMaker
        from trainer.stream import open_stream_source

        self.sources = [open_stream_source(s) for s in self.cfg.data.train]
        self.maker = ItemMaker(self.cfg.data, self.cfg.model.audio)
        self.names = tuple(
            f"{s.name} from {src.root} ({s.samples} clips, streamed)"
            for s, src in zip(self.sources, self.cfg.data.train)
        )
        return sum(s.samples for s in self.sources)

    def _validator(self) -> Validator:
        sets = []
        for src in self.cfg.data.val:
            if src.kind == "webdataset":
                from trainer.stream import list_shards

                shards = tuple(map(str, list_shards(src.root)))
                sets.append(
                    ShardEvalSet(f"webdataset/{src.root.rstrip('/').split('/')[-1]}", shards)
                )
                continue
            data = load_source(src)
            listed = len(data.examples) + len(data.missing)
            self._report_missing(f"validation {data.name}", listed, data.missing)
            sets.append(data.eval_set)
        return Validator(sets, self.cfg.model.audio.sample_rate, self.cfg.data.val_batch)

    def loader(self, epoch: int, start: int):
        """This rank's batches of `epoch` from batch `start` on."""
        cfg = self.cfg
        workers = cfg.data.workers
        if self.streamed:
            from trainer.stream import StreamDataset, stream_loader

            dataset = StreamDataset(
                self.sources,
                self.maker,
                cfg.data,
                cfg.model.audio.sample_rate,
                cfg.seed,
                epoch,
                cfg.batch_size,
                self.batches_per_epoch,
                self.rank,
                self.world_size,
                start,
            )
            return stream_loader(dataset, self.collate, workers, self.pin)
        sampler = EpochBatchSampler(
            len(self.dataset), cfg.batch_size, cfg.seed, epoch, self.rank, self.world_size, start
        )
        return torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=sampler,
            collate_fn=self.collate,
            num_workers=workers,
            pin_memory=self.pin,
            persistent_workers=False,
            prefetch_factor=4 if workers else None,
            # A private generator: worker seeding must not draw from the global RNG, or a
            # resumed run (fewer loader starts) would drift from an uninterrupted one.
            generator=torch.Generator().manual_seed(cfg.seed),
        )

    def count_skipped(self, skipped: list[tuple[str, str]]) -> None:
        for reason, path in skipped:
            self.skipped[reason] += 1
            self.first_skipped = self.first_skipped or path

    def final_report(self) -> None:
        """One line for the clips skipped while training, if any (rank 0)."""
        if self.skipped and self.rank == 0:
            what = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in sorted(self.skipped.items()))
            say(f"data: clips skipped while training: {what} (first: {self.first_skipped}).")


__all__ = ["TrainData"]
