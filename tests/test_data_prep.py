"""The default model's data preparation: splits, captions, generators, determinism."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import CLOTHO_DIR, ESC50_DIR, esc50_files

from trainer.data_prep import build_default_data as bdd
from trainer.data_prep import common, midi, mixtures, real, unused_val

TOOLS = {"espeak-ng", "fluidsynth", "sox"}


def test_midi_varlen_and_header():
    assert midi._varlen(0) == b"\x00"
    assert midi._varlen(0x40) == b"\x40"
    assert midi._varlen(0x80) == b"\x81\x00"
    assert midi._varlen(0x3FFF) == b"\xff\x7f"
    data = midi.midi_bytes([midi.Note(0, 1, 60), midi.Note(1, 1, 64)], {0: 40}, bpm=120)
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    track = data[22:]
    assert bytes([0xC0, 40]) in track  # program change
    assert bytes([0x90, 60, 90]) in track and bytes([0x80, 64, 0]) in track
    assert track.endswith(b"\x00\xff\x2f\x00")


def test_fit_length_and_level():
    y = np.ones(common.CLIP_SAMPLES + 1000, dtype=np.float32)
    out = common.fit_length(y)
    assert out.shape == (common.CLIP_SAMPLES,) and out[-1] == 0.0 and out[0] == 1.0
    assert common.fit_length(np.ones(10, np.float32)).shape == (common.CLIP_SAMPLES,)
    assert common.fit_length(np.ones(10, np.float32), pad=False).shape == (10,)
    z = common.set_level(np.random.default_rng(0).normal(size=48_000).astype(np.float32), -20.0)
    assert abs(20 * np.log10(np.sqrt(np.mean(z**2))) + 20.0) < 0.1
    spike = np.zeros(1000, np.float32)
    spike[0] = 1.0
    assert np.max(np.abs(common.set_level(spike, -3.0))) <= 0.98 + 1e-6  # peak guard


def test_committed_splits_are_reproducible_and_recording_level():
    esc50_files(1)
    splits = real.make_splits(ESC50_DIR, CLOTHO_DIR, seed=0)
    for name, files in splits.items():
        assert real.load_split(name) == set(files), f"{name}.txt differs from make_splits"
    clips = {c.filename: c for c in real.esc50_clips(ESC50_DIR)}
    records = real.esc50_records(ESC50_DIR)
    side = {}  # (category, source recording) -> split: takes of one recording never straddle
    for r in records:
        clip = clips[Path(r.path).name]
        assert side.setdefault((clip.category, clip.recording), r.split) == r.split
    test_classes = {r.meta["category"] for r in records if r.split == "test"}
    assert len(test_classes) == 50  # every class is tested
    assert sum(r.split == "test" for r in records) == 101
    assert not real.load_split("esc50_test") & real.load_split("esc50_val")


def test_esc50_split_matches_the_trainers_rule():
    """The committed test split is what the trainer's `part: test` selects."""
    from trainer.config import DataSource
    from trainer.data import load_source

    test = load_source(DataSource(kind="esc50", root=str(ESC50_DIR), part="test"))
    assert {Path(p).name for p in test.eval_set.zs_paths} == real.load_split("esc50_test")


def test_esc50_captions_cover_phrasings_and_label_prompt():
    assert set(real.ESC50_PHRASES) == {c.category for c in real.esc50_clips(ESC50_DIR)}
    caps = real.esc50_captions("crying_baby")
    assert caps[0] == "a baby crying"
    assert "this is a sound of crying baby" in caps and len(set(caps)) == len(caps)


def test_mixtures_use_training_clips_only():
    pool = [
        common.ClipRecord("/a.flac", ("a dog barking",), "esc50", "train"),
        common.ClipRecord("/b.flac", ("rain falling",), "esc50", "train"),
        common.ClipRecord("/t.flac", ("a cat meowing",), "esc50", "test"),
        common.ClipRecord("/v.flac", ("a cow mooing",), "esc50", "val"),
        common.ClipRecord("/s.flac", ("a man speaking",), "speech", "train"),
        common.ClipRecord("/q.flac", ("silence",), "signals", "train"),
    ]
    specs = mixtures.specs(0, 40, pool)
    used = {s.path_a for s in specs} | {s.path_b for s in specs}
    assert used <= {"/a.flac", "/b.flac", "/s.flac"} and len(used) == 3
    assert all(s.path_a != s.path_b for s in specs)
    assert any(s.captions[0] == "a dog barking and rain falling" for s in specs)


def test_unused_val_takes_only_recordings_no_corpus_row_touched():
    def row(pkg, member, piece, caption, split="train"):
        path = f"/c/{pkg}/{member}-{piece}.flac"
        return {
            "path": path,
            "captions": [caption],
            "source": f"debian:{pkg}",
            "split": split,
            "package": pkg,
            "member": member,
        }

    harvest = [
        row("p", "gun.ogg", 0, "a gunshot"),  # used by the corpus
        row("p", "gun.ogg", 1, "a gunshot"),  # unused piece of a used file: never picked
        row("p", "axe.ogg", 0, "an axe"),
        row("p", "axe2.ogg", 0, "an axe"),
        row("p", "axe3.ogg", 0, "an axe"),
        row("q", "song.ogg", 0, "music"),
        row("h", "door.ogg", 0, "a door", split="test"),  # a held-out package
    ]
    picked = unused_val.select(harvest, {"/c/p/gun.ogg-0.flac"}, per_caption=2)
    paths = [r.path for r in picked]
    assert paths == ["/c/p/axe.ogg-0.flac", "/c/p/axe2.ogg-0.flac", "/c/q/song.ogg-0.flac"]
    assert all(r.split == "val" for r in picked) and picked[2].source == "debian:q"


def _digests(folder: Path) -> dict[str, str]:
    """Clip key -> md5 (file names also hash the spec, whose mixture paths differ by folder)."""
    return {
        p.stem.split("-")[0]: hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.flac"))
    }


@pytest.mark.slow
def test_build_small_corpus_is_deterministic(tmp_path):
    esc50_files(1)
    cfgs = [
        bdd.BuildConfig(out=tmp_path / d, speech=2, music=2, signals=3, mixtures=3)
        for d in ("a", "b")
    ]
    summaries = [bdd.build(c) for c in cfgs]
    assert summaries[0]["clips"] == summaries[1]["clips"]
    assert _digests(cfgs[0].out) == _digests(cfgs[1].out)
    rows = {
        name: [json.loads(line) for line in (cfgs[0].out / f"{name}.jsonl").open()]
        for name in ("train", "val", "trainval", "test")
    }
    test_paths = {r["path"] for r in rows["test"]}
    assert len(test_paths) == 103  # 101 ESC-50 + 2 Clotho held out
    assert not test_paths & {r["path"] for r in rows["trainval"]}
    assert all(
        Path(r["path"]).is_file() and r["captions"][0] == r["caption"] for r in rows["train"]
    )
    generated = [Path(r["path"]) for r in rows["train"] if r["source"] != "esc50"]
    for path in generated:
        if path.suffix == ".flac" and "clotho" not in str(path):
            info = sf.info(str(path))
            assert info.samplerate == 48_000 and info.channels == 1 and info.duration == 5.0
    sources = {r["source"] for r in rows["train"]}
    if all(shutil.which(t) for t in TOOLS):
        assert sources == {"esc50", "clotho", "speech", "music", "signals", "mixtures"}


def test_missing_tool_skips_its_generator(tmp_path, monkeypatch, capsys):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda n: None if n == "espeak-ng" else real_which(n))
    cfg = bdd.BuildConfig(
        out=tmp_path / "c",
        esc50_dir=tmp_path / "none",
        clotho_dir=tmp_path / "none",
        speech=2,
        music=0,
        signals=1 if real_which("sox") else 0,
        mixtures=0,
    )
    summary = bdd.build(cfg)
    err = capsys.readouterr().err
    assert "skipping speech: espeak-ng not found" in err and "skipping esc50" in err
    assert not any("speech" in k for k in summary["clips"])


@pytest.mark.slow
def test_package_default_model_halves_weights_and_still_loads(tiny_native_dir, tmp_path):
    import safetensors.torch

    from clapsearch.sources import load_embedder
    from trainer.data_prep.package_default_model import package

    dest = package(tiny_native_dir, tmp_path / "assets" / "default_model")
    state = safetensors.torch.load_file(str(dest / "model.safetensors"))
    assert {str(v.dtype) for v in state.values() if v.is_floating_point()} == {"torch.float16"}
    assert not (dest / "optimizer.pt").exists() and (dest / "tokenizer").is_dir()
    src_size = (tiny_native_dir / "model.safetensors").stat().st_size
    assert (dest / "model.safetensors").stat().st_size < 0.6 * src_size
    emb = load_embedder(str(dest), device="cpu", precision="fp32")
    ref = load_embedder(str(tiny_native_dir), device="cpu", precision="fp32")
    a, b = emb.embed_text(["a dog barking"]), ref.embed_text(["a dog barking"])
    assert float((a * b).sum()) > 0.995


def test_default_model_config_loads_and_matches_the_packaged_model():
    """configs/default_model.yaml is the recipe of clapsearch/assets/default_model: same
    front end, towers and heads (a drift would make `make default-model` ship another model)."""
    config_mod = pytest.importorskip("trainer.config")
    from clapsearch.assets import default_model_dir
    from clapsearch.models.checkpoint import read_checkpoint_meta

    cfg = config_mod.load_train_config(bdd.REPO / "configs" / "default_model.yaml")
    assert cfg.freeze_text and cfg.model.text_encoder.name == "minilm"
    assert cfg.data.train[0].root.endswith("trainval.jsonl")
    folder = default_model_dir()
    if folder is None:
        pytest.skip("no default model packaged")
    shipped, _ = read_checkpoint_meta(folder)
    assert shipped.audio == cfg.model.audio
    assert shipped.embed_dim == cfg.model.embed_dim and shipped.projection == cfg.model.projection
    assert shipped.audio_encoder.channels == tuple(cfg.model.audio_encoder.channels)
