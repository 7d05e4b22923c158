"""Streamed training data: WebDataset shards in LAION's layout and manifests read row by row;
missing and broken clips counted and reported; exact resume; validation in bounded batches."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from clapsearch.config import AudioConfig
from tests.conftest import esc50_files
from tests.trainer_fixtures import TINY
from trainer.config import DataConfig, DataSource, TrainConfig, build
from trainer.data import Collate, ItemMaker
from trainer.stream import StreamDataset, iter_tar, list_shards, open_stream_source


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_shards(folder, files, per_shard: int = 4, broken: int | None = None, sizes=True):
    """LAION-CLAP's layout: `<key>.flac` + `<key>.json` ({"text": [...], "tag": [...]}),
    shards of `per_shard` samples and a `sizes.json`; sample `broken` gets non-audio bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for s in range(0, len(files), per_shard):
        name = f"{s // per_shard:06d}.tar"
        with tarfile.open(folder / name, "w") as tar:
            for i, f in enumerate(files[s : s + per_shard], start=s):
                audio = b"not audio at all" if i == broken else f.read_bytes()
                meta = {"text": [f"clip {i}", f"sound {i}"], "tag": [f"tag{i}"]}
                _add(tar, f"clips/{i:05d}.flac", audio)
                _add(tar, f"clips/{i:05d}.json", json.dumps(meta).encode())
        counts[name] = len(files[s : s + per_shard])
    if sizes:
        (folder / "sizes.json").write_text(json.dumps(counts))
    return folder


def test_tar_samples_group_members_by_key_and_read_laion_json(tmp_path):
    files = esc50_files(5)
    root = make_shards(tmp_path / "wds", files, per_shard=3, sizes=False)
    shards = list_shards(str(root))
    assert [s.name for s in shards] == ["000000.tar", "000001.tar"]
    assert list_shards(str(root / "{000000..000001}.tar")) == shards
    samples = list(iter_tar(shards[0]))
    assert [s.key for s in samples] == ["clips/00000", "clips/00001", "clips/00002"]
    assert samples[1].captions == ("clip 1", "sound 1") and samples[1].keywords == ("tag1",)
    assert samples[1].data == files[1].read_bytes() and samples[1].ext == "flac"
    assert open_stream_source(DataSource(kind="webdataset", root=str(root))).sizes == (3, 2)


def _stream(tmp_path, root, batches: int, rank: int = 0, world: int = 1, start: int = 0):
    source = open_stream_source(DataSource(kind="webdataset", root=str(root)))
    data = DataConfig(shuffle_buffer=3)
    front = AudioConfig(window_s=1.0)
    return StreamDataset(
        [source], ItemMaker(data, front), data, 48_000, 0, 0, 2, batches, rank, world, start
    )


def test_stream_is_deterministic_sharded_by_rank_and_skips_broken_clips(tmp_path):
    files = esc50_files(8)
    root = make_shards(tmp_path / "wds", files, per_shard=2, broken=3)
    items = list(_stream(tmp_path, root, batches=4))
    again = list(_stream(tmp_path, root, batches=4))
    assert len(items) == 8 and [i.caption for i in items] == [i.caption for i in again]
    assert all(np.array_equal(a.wave, b.wave) for a, b in zip(items, again))
    assert all(i.wave.shape == (48_000,) for i in items)
    # the broken clip is never trained on: it is replaced and reported
    assert sum(len(i.skipped) for i in items) >= 1
    assert all("3" not in i.caption for i in items)
    assert all(r == "not_audio" for i in items for r, _ in i.skipped)
    # two ranks read disjoint shards; a resume at batch 2 gives the same last batches
    r0 = {i.digest for i in _stream(tmp_path, root, 2, rank=0, world=2)}
    r1 = {i.digest for i in _stream(tmp_path, root, 2, rank=1, world=2)}
    assert r0 and r1 and not r0 & r1
    resumed = list(_stream(tmp_path, root, batches=4, start=2))
    assert [i.caption for i in resumed] == [i.caption for i in items[4:]]


def _config(tmp_path, train: list[dict], out: str, data: dict | None = None, **extra):
    config = {
        "model": TINY,
        "data": {"train": train, "workers": 0, "shuffle_buffer": 4, **(data or {})},
        "optim": {"lr": 3e-3},
        "output_dir": str(tmp_path / out),
        "epochs": 2,
        "batch_size": 2,
        "save_every": 2,
        "tensorboard": False,
        "progress": False,
        "log_every": 1,
    }
    config.update(extra)
    return build(TrainConfig, config)


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_webdataset_training_resumes_exactly_and_records_what_it_trained_on(tmp_path, capsys):
    from clapsearch.training_record import read_training_hashes
    from trainer.loop import train

    files = esc50_files(9)
    root = make_shards(tmp_path / "wds", files, per_shard=3, broken=4)
    source = [{"kind": "webdataset", "root": str(root)}]
    full = train(_config(tmp_path, source, "full"))
    assert full.steps == 8  # 9 samples -> 4 batches of 2 an epoch, 2 epochs
    err = capsys.readouterr().err
    assert "data: clips skipped while training:" in err and "not audio" in err

    def stop(progress):
        if progress.step == 6:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(_config(tmp_path, source, "cut"), on_step=stop)
    train(_config(tmp_path, source, "cut"), resume=True)
    a = load_file(str(tmp_path / "full" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "last" / "model.safetensors"))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # trained_on.json: the content of every clip trained on, the broken one excluded
    from clapsearch.hashing import content_hash

    hashes = read_training_hashes(tmp_path / "full" / "last")
    good = {content_hash(f) for i, f in enumerate(files) if i != 4}
    assert hashes and hashes <= good and len(hashes) >= 7
    assert content_hash(files[4]) not in hashes
    assert read_training_hashes(tmp_path / "cut" / "last") == hashes


@pytest.mark.slow
def test_streamed_manifest_reports_missing_files_and_validates_in_batches(
    tmp_path, capsys, monkeypatch
):
    from trainer import evaluate
    from trainer.loop import train

    files = esc50_files(6)
    rows = [{"path": str(f), "caption": f"clip {i}"} for i, f in enumerate(files)]
    rows.insert(2, {"path": str(tmp_path / "gone.flac"), "caption": "lost"})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    val = tmp_path / "v.jsonl"
    val.write_text("\n".join(json.dumps(r) for r in rows[:5]))
    batches = []
    real = evaluate.Validator._embed

    def spy(self, emb, waves):
        original = emb.embed_audio

        def embed_audio(batch):
            batches.append(len(batch))
            return original(batch)

        emb.embed_audio = embed_audio
        return real(self, emb, waves)

    monkeypatch.setattr(evaluate.Validator, "_embed", spy)
    cfg = _config(
        tmp_path,
        [{"kind": "manifest", "root": str(manifest), "stream": True}],
        "run",
        data={"val": [{"kind": "manifest", "root": str(val)}], "val_batch": 2},
        epochs=1,
        save_every=0,
        best_metric="t2a.R@1",
    )
    result = train(cfg)
    err = capsys.readouterr().err
    assert "missing" in err and "gone.flac" in err  # said, with the first missing file
    assert "validation manifest/v.jsonl: 1 of 5 listed clips are missing" in err
    assert result.steps == 3  # 7 rows -> 3 batches of 2; the missing row is replaced
    assert batches and max(batches) <= 2  # validation never decodes more than val_batch
    metrics = result.final_metrics["manifest/v.jsonl"]
    assert metrics["clips_skipped"] == 0.0 and "t2a.R@1" in metrics


def test_collate_keeps_real_lengths_for_fusion_models():
    from tests.conftest import clotho_files  # noqa: F401  (data present)
    from trainer.data import TrainItem

    class Tok:
        def __call__(self, texts, **kw):
            n = len(texts)
            return {
                "input_ids": torch.zeros(n, 3, dtype=torch.long),
                "attention_mask": torch.ones(n, 3),
            }

    batch = Collate(Tok(), 8)(
        [TrainItem(np.ones(5, np.float32), "a"), TrainItem(np.ones(3, np.float32), "b")]
    )
    assert batch.waveforms.shape == (2, 5) and batch.lengths.tolist() == [5, 3]
    assert [c.shape[0] for c in batch.clips()] == [5, 3]
