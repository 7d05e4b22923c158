"""Copy a trained checkpoint into the package as the default model, in float16.

    python -m trainer.data_prep.package_default_model runs/default_model/best

Why float16: the checkpoint holds the frozen MiniLM text tower (22.7 M parameters, 91 MB in
float32); halving it keeps the wheel at a few tens of MB, and `load_checkpoint` casts the
weights back to the model's float32 on load (the embeddings move by ~1e-3 cosine, checked
here before anything is written). Resumable state (optimizer, RNG) is not copied.
`trained_on.json` records the content hash of every audio file the training manifests name
(`clapsearch.training_record`), so evaluation can tell when it scores a clip the model has heard.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from trainer.data_prep.common import log

REPO = Path(__file__).resolve().parents[2]
DEST = REPO / "clapsearch" / "assets" / "default_model"
KEEP = ("clapsearch.json", "tokenizer", "text_config")
PROBES = ("a dog barking", "a man speaking", "piano music", "rain falling", "white noise")


def half_copy(src: Path, dest: Path) -> None:
    """Write `src` to `dest` with every floating tensor of model.safetensors in float16."""
    import safetensors.torch

    dest.mkdir(parents=True)
    for name in KEEP:
        path = src / name
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, dest / name)
    portable_config(dest / "clapsearch.json")
    state = safetensors.torch.load_file(str(src / "model.safetensors"))
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    safetensors.torch.save_file(half, str(dest / "model.safetensors"), {"format": "pt"})


def portable_config(path: Path) -> None:
    """Name the bundled MiniLM by its alias instead of this machine's site-packages path, and
    point the provenance at the model card."""
    from clapsearch.models.text import bundled_minilm

    meta = json.loads(path.read_text())
    text = meta["model"]["text_encoder"]
    for key in ("pretrained", "tokenizer"):
        if text.get(key) and Path(text[key]).resolve() == Path(bundled_minilm()).resolve():
            text[key] = "minilm"
    meta["provenance"]["notes"] = (
        "clapsearch packaged default model; data, recipe and held-out metrics in "
        "docs/model-card.md (configs/default_model.yaml, trainer/data_prep/)."
    )
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def check_close(a: Path, b: Path, min_cos: float = 0.995) -> float:
    """Both checkpoints embed probe texts and a noise clip alike -> the worst cosine."""
    from clapsearch.sources import load_embedder

    rng = np.random.default_rng(0)
    worst = 1.0
    ea, eb = (load_embedder(str(p), device="cpu", precision="fp32") for p in (a, b))
    wave = (0.1 * rng.standard_normal(ea.audio_config.window_samples)).astype(np.float32)
    for fa, fb in (
        (ea.embed_text(PROBES), eb.embed_text(PROBES)),
        (ea.embed_audio([wave]), eb.embed_audio([wave])),
    ):
        worst = min(worst, float(np.min(np.sum(fa * fb, axis=1))))
    if worst < min_cos:
        raise SystemExit(f"float16 copy drifts too far (cosine {worst:.4f} < {min_cos})")
    return worst


def record_training_files(src: Path, staged: Path, base: Path = REPO) -> int:
    """Write `trained_on.json` (content hashes of every file the training manifests name)."""
    from clapsearch.training_record import read_training_hashes, write_training_record
    from trainer.data_prep.trained_on import training_files

    meta = json.loads((src / "clapsearch.json").read_text())
    train_config = (meta.get("provenance") or {}).get("train_config")
    if not train_config:
        log(f"{src} records no training config: no trained_on.json written")
        return 0
    write_training_record(staged, training_files(train_config, base))
    return len(read_training_hashes(staged) or ())


def package(src: Path, dest: Path = DEST) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        staged = Path(tmp) / "default_model"
        half_copy(src, staged)
        n = record_training_files(src, staged)
        log(f"trained_on.json: {n} distinct training files")
        cos = check_close(src, staged)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.move(str(staged), dest)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    log(f"packaged {src} -> {dest} ({size / 1e6:.1f} MB, float16 cosine >= {cos:.5f})")
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--dest", type=Path, default=DEST)
    a = p.parse_args()
    package(a.checkpoint.resolve(), a.dest.resolve())


if __name__ == "__main__":
    main()
