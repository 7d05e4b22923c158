"""Training data: sources, ESC-50 hold-out, deterministic augmentation, rank sharding, config."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from clapsearch.config import AudioConfig
from clapsearch.errors import UsageError
from tests.conftest import CLOTHO_DIR, ESC50_DIR, clotho_files, esc50_files
from trainer.config import DataConfig, DataSource, TrainConfig, load_train_config
from trainer.data import (
    EpochBatchSampler,
    Example,
    TrainDataset,
    crop_or_pad,
    load_source,
)
from trainer.loop import lr_lambda


def _esc(part: str):
    return load_source(DataSource(kind="esc50", root=str(ESC50_DIR), part=part))


def test_esc50_hold_out_keeps_recordings_together_and_covers_every_class():
    esc50_files(1)
    parts = {p: _esc(p) for p in ("train", "val", "test")}
    with open(ESC50_DIR / "esc50.csv") as f:
        recording = {r["filename"]: (r["category"], r["src_file"]) for r in csv.DictReader(f)}
    seen = {}
    for name, data in parts.items():
        for ex in data.examples:
            rec = recording[ex.path.rsplit("/", 1)[1]]
            assert seen.setdefault(rec, name) == name  # takes of one recording share a part
    assert sum(len(d.examples) for d in parts.values()) == len(recording)
    test = parts["test"].eval_set
    assert len(test.prompts) == 50 and len(set(test.zs_labels)) == 50
    # retrieval view: one clip per class, so every caption has exactly one right clip
    assert len(set(test.captions)) == len(test.audio_paths) == len(test.caption_to_audio)
    assert parts["train"].examples[0].captions[0].startswith("the sound of ")


def test_clotho_source_keeps_the_five_human_captions():
    clotho_files()
    data = load_source(DataSource(kind="clotho", root=str(CLOTHO_DIR), split="evaluation"))
    assert len(data.examples) == 7 and all(len(ex.captions) == 5 for ex in data.examples)
    assert len(data.eval_set.captions) == 35


def test_manifest_reads_split_and_dedupes_captions(tmp_path):
    files = esc50_files(3)
    rows = [
        {
            "path": str(files[0]),
            "caption": "a dog",
            "captions": ["a dog", "barking"],
            "split": "train",
        },
        {"path": str(files[1]), "caption_1": "rain", "caption_2": "rainfall", "split": "test"},
        {"audio": str(files[2]), "captions": ["a cat"]},
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    train = load_source(DataSource(kind="manifest", root=str(path), split="train"))
    assert [ex.captions for ex in train.examples] == [("a dog", "barking")]
    assert len(load_source(DataSource(kind="manifest", root=str(path))).examples) == 3
    with pytest.raises(UsageError, match="no rows for split"):
        load_source(DataSource(kind="manifest", root=str(path), split="val"))
    with pytest.raises(UsageError, match="unknown data source kind"):
        load_source(DataSource(kind="freesound", root=str(path)))


def test_crop_and_repeat_pad():
    rng = np.random.default_rng(0)
    long = np.arange(100, dtype=np.float32)
    crop = crop_or_pad(long, 30, rng)
    assert crop.shape == (30,) and np.array_equal(crop, np.arange(crop[0], crop[0] + 30))
    short = np.arange(1, 8, dtype=np.float32)
    padded = crop_or_pad(short, 20, rng)
    assert np.array_equal(padded[:14], np.tile(short, 2)) and not padded[14:].any()


def test_items_depend_only_on_seed_epoch_and_index():
    clips = [str(p) for p in clotho_files()[:3]]
    examples = [Example(p, (f"caption {i}a", f"caption {i}b")) for i, p in enumerate(clips)]
    data = DataConfig(gain_db=6.0, time_shift=0.2, mix_prob=0.5, clip_s=2.0)
    ds = TrainDataset(examples, data, AudioConfig(), seed=3)
    again = TrainDataset(examples, data, AudioConfig(), seed=3)
    w1, c1 = ds[1].wave, ds[1].caption
    w2, c2 = again[1].wave, again[1].caption
    assert np.array_equal(w1, w2) and c1 == c2 and w1.shape == (96_000,)
    w_next_epoch = ds[len(examples) + 1].wave  # same clip, next epoch: another crop/augmentation
    assert not np.array_equal(w1, w_next_epoch)
    mixed = [ds[k].caption for k in range(30)]
    assert any(" and " in c for c in mixed) and any(" and " not in c for c in mixed)


def test_rank_shards_partition_each_global_batch():
    single = list(EpochBatchSampler(22, 4, seed=1, epoch=2, world_size=1))
    r0 = list(EpochBatchSampler(22, 2, seed=1, epoch=2, rank=0, world_size=2))
    r1 = list(EpochBatchSampler(22, 2, seed=1, epoch=2, rank=1, world_size=2))
    assert len(single) == len(r0) == len(r1) == 5  # 22 // 4, incomplete batch dropped
    for whole, a, b in zip(single, r0, r1):
        assert whole == a + b
    assert all(k // 22 == 2 for batch in single for k in batch)  # keys carry the epoch
    assert list(EpochBatchSampler(22, 4, seed=1, epoch=2, start=3)) == single[3:]
    assert single != list(EpochBatchSampler(22, 4, seed=1, epoch=3))


def test_warmup_then_cosine():
    f = lr_lambda(warmup=4, total=14, min_ratio=0.1)
    assert [round(f(s), 3) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(9) == pytest.approx(0.55) and f(14) == pytest.approx(0.1)


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "model: {audio_encoder: {name: cnn10, channels: [8, 16]}}\n"
        "data: {train: [{kind: esc50, root: /x, part: train}]}\nepochs: 3\n"
    )
    cfg = load_train_config(
        path, ["optim.lr=3e-4", "data.train.0.part=test", "freeze_text=true", "model.embed_dim=64"]
    )
    assert isinstance(cfg, TrainConfig) and cfg.epochs == 3 and cfg.optim.lr == 3e-4
    assert cfg.data.train[0] == DataSource(kind="esc50", root="/x", part="test")
    assert cfg.model.audio_encoder.channels == (8, 16) and cfg.model.embed_dim == 64
    assert cfg.freeze_text is True
    with pytest.raises(UsageError, match="no setting 'lrr'"):
        load_train_config(path, ["optim.lrr=1"])
    with pytest.raises(UsageError, match="key=value"):
        load_train_config(path, ["epochs"])
    with pytest.raises(UsageError, match="does not exist"):
        load_train_config(tmp_path / "missing.yaml")


def test_every_shipped_config_parses():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    assert len(configs) >= 3
    for path in configs:
        cfg = load_train_config(path)
        assert cfg.data.train, path
