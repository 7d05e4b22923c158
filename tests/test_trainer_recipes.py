"""The two recipe configs (configs/msclap.yaml, configs/laion_clap.yaml) run end to end on
small data: the real files, shrunk by `--set` overrides (tiny towers, 1 s windows), with
every setting that makes the recipe what it is left as written."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import esc50_files
from trainer.config import load_train_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _manifest(path: Path, files, start: int = 0) -> str:
    rows = [{"path": str(f), "caption": f"sound number {i + start}"} for i, f in enumerate(files)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


def _bert(hidden: int = 16, model_type: str = "bert", positions: int = 64) -> str:
    return (
        f"{{model_type: {model_type}, vocab_size: 30522, hidden_size: {hidden}, "
        f"num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, "
        f"max_position_embeddings: {positions}}}"
    )


@pytest.mark.slow
def test_msclap_recipe_trains_end_to_end(tmp_path):
    from trainer.loop import train
    from trainer.state import read_state

    files = esc50_files(12)
    train_m = _manifest(tmp_path / "train.jsonl", files[:8])
    val_m = _manifest(tmp_path / "val.jsonl", files[8:], start=8)
    cfg = load_train_config(
        CONFIGS / "msclap.yaml",
        [
            "model.audio.window_s=1.0",
            "model.audio_encoder.channels=[4, 4, 4, 4, 4, 8]",
            "model.audio_encoder.embed_dim=16",
            "model.audio_encoder.pretrained=",
            "model.text_encoder.pretrained=",
            "model.text_encoder.tokenizer=minilm",
            "model.text_encoder.max_length=16",
            f"model.text_encoder.hf_config={_bert()}",
            "model.embed_dim=8",
            f"data.train=[{{kind: manifest, root: {train_m}}}]",
            f"data.val=[{{kind: manifest, root: {val_m}}}]",
            "data.clip_s=1.0",
            "data.workers=0",
            "optim.plateau_patience=0",
            "epochs=3",
            "batch_size=4",
            "save_every=0",
            "log_every=1",
            "tensorboard=false",
            "progress=false",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    result = train(cfg)
    assert result.steps == 6  # 8 clips, batch 4, 3 epochs
    last = tmp_path / "run" / "last"
    meta = json.loads((last / "clapsearch.json").read_text())["model"]
    assert meta["projection"] == "msclap" and meta["logit_cap"] == "logits"
    assert meta["audio"]["sample_rate"] == 44100 and meta["audio"]["padding"] == "repeat"
    assert (meta["audio"]["n_mels"], meta["audio"]["f_min"], meta["audio"]["f_max"]) == (
        64,
        50.0,
        14000.0,
    )
    assert meta["text_encoder"]["pooling"] == "cls" and meta["embed_dim"] == 8
    state = read_state(last)
    group = state["optimizer"]["param_groups"][0]
    assert group["decoupled_weight_decay"] is False  # Adam, not AdamW
    # both towers trained: every parameter group has a rate, none frozen
    assert not cfg.freeze_audio and not cfg.freeze_text
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert steps[0]["logit_scale"] > 100  # started at 1/0.007, not clamped to the cap
    assert steps[-1]["logit_scale"] != pytest.approx(142.857, abs=1e-3)  # and learned
    # reduce-on-plateau was stepped once an epoch with the validation score
    val = [r["val"]["manifest/val.jsonl"]["t2a.R@1"] for r in records if "val" in r]
    model = torch.nn.Linear(1, 1)
    ref_opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, "max", factor=0.1, patience=0)
    for score in val[:3]:
        ref.step(score)
    assert state["scheduler"]["num_bad_epochs"] == ref.num_bad_epochs
    assert group["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"])


def _wav_bytes(wave: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="FLAC")
    return buf.getvalue()


def _laion_shards(folder: Path) -> Path:
    """LAION's layout: long clips (5 s ESC-50, longer than the 1 s test window), short clips
    (0.5 s), and label-only clips (json with "tag" and no "text")."""
    folder.mkdir()
    files = esc50_files(8)
    with tarfile.open(folder / "000000.tar", "w") as tar:
        for i, f in enumerate(files):
            audio = f.read_bytes()
            meta: dict = {"text": [f"sound number {i}"]}
            if i % 4 == 1:
                wave, rate = sf.read(f, dtype="float32")
                audio = _wav_bytes(wave[: rate // 2], rate)  # shorter than the window
            if i % 4 == 2:
                meta = {"tag": [f"label_{i}", "outdoor"]}  # keywords only
            for name, data in (
                (f"{i:04d}.flac", audio),
                (f"{i:04d}.json", json.dumps(meta).encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return folder


@pytest.mark.slow
def test_laion_clap_recipe_trains_fusion_on_long_clips(tmp_path, monkeypatch):
    import trainer.loop as loop
    from clapsearch.models import build_model, load_checkpoint
    from trainer import keywords
    from trainer.state import seed_everything

    shards = _laion_shards(tmp_path / "wds")
    seen = {"longer": 0, "short": 0, "random_crops": 0, "generated": 0}
    real_features = loop.clap_features

    def features(clips, front, crop_rng=None):
        out, is_longer = real_features(clips, front, crop_rng)
        seen["longer"] += int(is_longer.sum())
        seen["short"] += int((~is_longer).sum())
        seen["random_crops"] += crop_rng is not None
        return out, is_longer

    real_generate = keywords.TemplateGenerator.generate

    def generate(self, words, rng):
        seen["generated"] += 1
        return real_generate(self, words, rng)

    monkeypatch.setattr(loop, "clap_features", features)
    monkeypatch.setattr(keywords.TemplateGenerator, "generate", generate)
    htsat = (
        "{hidden_size: 64, patch_embeds_hidden_size: 8, depths: [1, 1, 1, 1], "
        "num_attention_heads: [1, 2, 2, 4], window_size: 8, enable_fusion: true}"
    )
    cfg = load_train_config(
        CONFIGS / "laion_clap.yaml",
        [
            "model.audio.window_s=1.0",
            "model.audio_encoder.pretrained=",
            f"model.audio_encoder.hf_config={htsat}",
            "model.text_encoder.pretrained=",
            "model.text_encoder.tokenizer=minilm",
            "model.text_encoder.max_length=16",
            f"model.text_encoder.hf_config={_bert(model_type='roberta', positions=40)}",
            "model.embed_dim=8",
            f"data.train=[{{kind: webdataset, root: {shards}}}]",
            f"data.val=[{{kind: webdataset, root: {shards}}}]",
            "data.shuffle_buffer=4",
            "data.workers=0",
            "optim.warmup_steps=1",
            "epochs=2",
            "batch_size=4",
            "save_every=0",
            "tensorboard=false",
            "progress=false",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    result = train_and_check = loop.train(cfg)
    assert train_and_check.steps == 4
    assert seen["longer"] > 0 and seen["short"] > 0  # real lengths: both kinds trained
    assert seen["random_crops"] == 4  # every training batch drew its fusion crops
    assert seen["generated"] > 0  # label-only clips got captions written from keywords
    assert "t2a.mAP@10" in result.final_metrics[next(iter(result.final_metrics))]

    model, _, config = load_checkpoint(tmp_path / "run" / "last")
    assert config.audio.truncation == "fusion" and config.text_encoder.pooling == "pooler"
    assert config.audio_encoder.hf_config["enable_fusion"] is True
    # the fusion branch trained (it only gets gradients from long clips)
    seed_everything(cfg.seed)
    initial = build_model(cfg.model).state_dict()
    fusion = [k for k in initial if "fusion" in k and initial[k].is_floating_point()]
    assert fusion and any(not torch.equal(initial[k], model.state_dict()[k]) for k in fusion)
    pooler = [k for k in initial if ".pooler." in k]
    assert pooler and any(not torch.equal(initial[k], model.state_dict()[k]) for k in pooler)
