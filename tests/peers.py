"""The reference systems' own code (msclap 1.3.4, laion_clap 1.1.7), imported for parity tests.

Both are installed `--no-deps` by `make install` (their pins would pull torchaudio and
torchvision, which cannot be installed with this torch, and numpy<2). What their model code
touches is real: torch, transformers, torchlibrosa, and librosa's filters. Substituted, only for
the import and never called by the code under test:

- `torchaudio` (msclap's CLAPWrapper imports it for `torchaudio.load` and `Resample`; the tests
  hand the wrapper a decoded waveform through `read_audio` instead),
- `torchvision` (laion_clap's `clap_module` imports `FrozenBatchNorm2d` and image transforms,
  which only its image towers and training utilities use),
- `h5py` (imported by laion_clap's training utilities).

transformers is imported first, so its own availability checks never see these stand-ins, and
they are removed from `sys.modules` once the peers are imported.

The peers' classes download their text towers (`AutoModel.from_pretrained("bert-base-uncased")`,
`RobertaModel.from_pretrained("roberta-base")`): the tests pass a local directory, or patch
`from_pretrained` to build a tiny random tower of the same family.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

import pytest

_STUBS = ("torchaudio", "torchvision", "h5py")


def _stub(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules[name] = module
    return module


def _install_stubs() -> None:
    audio = _stub("torchaudio")
    audio.transforms = _stub("torchaudio.transforms")
    vision = _stub("torchvision")
    vision.ops = _stub("torchvision.ops")
    vision.ops.misc = _stub("torchvision.ops.misc", FrozenBatchNorm2d=object)
    names = ("Normalize", "Compose", "RandomResizedCrop", "InterpolationMode", "ToTensor")
    vision.transforms = _stub(
        "torchvision.transforms", **{n: object for n in (*names, "Resize", "CenterCrop")}
    )
    vision.datasets = _stub("torchvision.datasets")
    _stub("h5py")


def _remove_stubs() -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in _STUBS]:
        if getattr(sys.modules[name], "__spec__", None) is not None and (
            sys.modules[name].__spec__.loader is None
        ):
            del sys.modules[name]


def _import_peers():
    missing = [n for n in ("msclap", "laion_clap", "torchlibrosa", "librosa") if not _found(n)]
    if missing:
        pytest.skip(
            f"the reference packages are not installed ({', '.join(missing)}): make install"
        )
    import transformers  # noqa: F401  (its availability checks must run before the stubs)
    from transformers import AutoModel, GPT2Model, RobertaModel  # noqa: F401

    for real in _STUBS:
        if _found(real) and real not in sys.modules:
            pytest.skip(f"{real} is installed: the parity tests expect it absent")
    _install_stubs()
    try:
        import msclap.CLAPWrapper as wrapper
        import msclap.models.clap as ms_clap
        import msclap.models.htsat as ms_htsat

        laion_dir = list(importlib.util.find_spec("laion_clap").submodule_search_locations)[0]
        if laion_dir not in sys.path:
            sys.path.append(laion_dir)  # what laion_clap/__init__.py itself does
        import clap_module
        import clap_module.htsat as laion_htsat
        import clap_module.model as laion_model
        import clap_module.pann_model as laion_pann
    finally:
        _remove_stubs()
    return types.SimpleNamespace(
        msclap_wrapper=wrapper,
        msclap_clap=ms_clap,
        msclap_htsat=ms_htsat,
        laion=clap_module,
        laion_model=laion_model,
        laion_htsat=laion_htsat,
        laion_pann=laion_pann,
    )


def _found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_PEERS = None


def peers():
    """The imported peer modules (skips the test when they are not installed)."""
    global _PEERS
    if _PEERS is None:
        _PEERS = _import_peers()
    return _PEERS


# --- stand-ins for the public tokenizers, in a temporary Hugging Face hub cache ---------------
def _hub_snapshot(cache, repo_id: str):
    from pathlib import Path

    repo = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def install_public_tokenizers(cache) -> None:
    """Stand-ins for bert-base-uncased (the bundled MiniLM's tokenizer: BERT's uncased
    WordPiece vocabulary, 30522 tokens), gpt2 (`build_gpt2_tokenizer`, 50257 tokens, `!` = 0)
    and roberta-base (a byte-level BPE padded to 50265 tokens), under their hub ids, laid out as
    `huggingface-cli download` leaves them: what `load_tokenizer` finds offline."""
    import json
    import shutil
    from pathlib import Path

    from clapsearch.models.presets import minilm_path
    from clapsearch.synthetic_models import _build_tokenizer, build_gpt2_tokenizer

    minilm = Path(minilm_path())
    gpt2 = build_gpt2_tokenizer()
    for repo_id in ("google-bert/bert-base-uncased", "bert-base-uncased"):
        snap = _hub_snapshot(cache, repo_id)
        for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json"):
            shutil.copy(minilm / name, snap / name)
        (snap / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": 30522}))
    for repo_id in ("openai-community/gpt2", "gpt2"):
        snap = _hub_snapshot(cache, repo_id)
        gpt2.save_pretrained(str(snap))
        (snap / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 50257}))
    for repo_id in ("FacebookAI/roberta-base", "roberta-base"):
        snap = _hub_snapshot(cache, repo_id)
        _build_tokenizer(snap, 50265).save_pretrained(str(snap))
        config = {"model_type": "roberta", "vocab_size": 50265}
        (snap / "config.json").write_text(json.dumps(config))


def hub_cache_with_tokenizers(tmp_path_factory):
    """Context manager: huggingface_hub's cache pointed at a fresh folder holding the
    stand-in tokenizers (restored on exit)."""
    import huggingface_hub.constants

    cache = tmp_path_factory.mktemp("hub")
    install_public_tokenizers(cache)
    patch = pytest.MonkeyPatch()
    patch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache, patch


# --- the peers' models, built with their own classes and random weights ----------------------
def randomise_norms(module) -> None:
    """Random BatchNorm statistics and affine weights (fresh ones are the identity, which
    would hide a mis-mapped tensor)."""
    import torch

    gen = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) - 0.5)


def tiny_text_tower(folder, family: str, width: int = 64):
    """A random 1-layer text tower of the family msclap names (`bert`, `gpt2`), saved where
    msclap's `AutoModel.from_pretrained(text_model)` reads it; 64-wide heads. msclap's own
    loader needs `width` 768 (its yml's `transformer_embed_dim`)."""
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

    heads = width // 64
    if family == "bert":
        model = BertModel(
            BertConfig(
                vocab_size=30522,
                hidden_size=width,
                num_hidden_layers=1,
                num_attention_heads=heads,
                intermediate_size=128,
            )
        )
    else:
        config = GPT2Config(vocab_size=50257, n_embd=width, n_layer=1, n_head=heads, n_inner=128)
        model = GPT2Model(config)
    model.save_pretrained(str(folder))
    return folder


def _shrink_cnn14(cnn, block, embed: int) -> None:
    """Swap a CNN14's six conv blocks for the same class at 8..256 wide, and its fc1 / AudioSet
    head to match (CNN14's __init__ has its widths as literals)."""
    import torch

    widths = (1, 8, 16, 32, 64, 128, 256)
    for i in range(6):
        setattr(cnn, f"conv_block{i + 1}", block(widths[i], widths[i + 1]))
    cnn.fc1 = torch.nn.Linear(256, embed)
    cnn.fc_audioset = torch.nn.Linear(embed, 527)


TINY_SWIN = dict(embed_dim=16, depths=[1, 2, 1, 1], num_heads=[1, 1, 2, 2])


def _tiny_msclap_htsat(*args):
    """msclap's `HTSATWrapper` holding its own HTSAT class at `TINY_SWIN` sizes (the wrapper
    hard-codes HTSAT-tiny's)."""
    import torch

    htsat = peers().msclap_htsat
    wrapper = htsat.HTSATWrapper.__new__(htsat.HTSATWrapper)
    torch.nn.Module.__init__(wrapper)
    wrapper.htsat = htsat.HTSAT_Swin_Transformer(config=htsat.config, **TINY_SWIN)
    return wrapper


def _tiny_laion_htsat(audio_cfg, enable_fusion=False, fusion_type="None"):
    """laion_clap's `create_htsat_model` with `TINY_SWIN` sizes instead of HTSAT-tiny's."""
    return peers().laion_htsat.HTSAT_Swin_Transformer(
        spec_size=256,
        patch_size=4,
        patch_stride=(4, 4),
        num_classes=audio_cfg.class_num,
        window_size=8,
        config=audio_cfg,
        enable_fusion=enable_fusion,
        fusion_type=fusion_type,
        **TINY_SWIN,
    )


def msclap_yml(version: str):
    """msclap's own config for `version`, read by its own reader."""
    from pathlib import Path

    wrapper = peers().msclap_wrapper
    text = (Path(wrapper.__file__).parent / f"configs/config_{version}.yml").read_text()
    return wrapper.CLAPWrapper.read_config_as_args(None, text, is_config_str=True)


def build_msclap(version: str, text_dir, tiny: bool = True, text_width: int = 64):
    """msclap's `CLAP` for `version` ("2022" CNN14 + BERT, "2023" HTSAT + GPT-2) with random
    weights, built from its yml as `CLAPWrapper.load_clap` does, the text tower read from
    `text_dir` (a tiny one). `tiny`: the audio tower's own classes at small widths (CNN14
    8..256 wide; HTSAT 16 wide, depths 1-2-1-1) and a 32-d projection; else msclap's sizes."""
    import sys

    p = peers()
    args = msclap_yml(version)
    audio_module = sys.modules["msclap.models.audio"]
    with pytest.MonkeyPatch.context() as patch:
        if tiny and version == "2023":
            patch.setattr(p.msclap_clap, "get_audio_encoder", lambda name: _tiny_msclap_htsat)
        out_emb = (64 if version == "2022" else 128) if tiny else args.out_emb
        clap = p.msclap_clap.CLAP(
            audioenc_name=args.audioenc_name,
            sample_rate=args.sampling_rate,
            window_size=args.window_size,
            hop_size=args.hop_size,
            mel_bins=args.mel_bins,
            fmin=args.fmin,
            fmax=args.fmax,
            classes_num=args.num_classes,
            out_emb=out_emb,
            text_model=str(text_dir),
            transformer_embed_dim=text_width,
            d_proj=32 if tiny else args.d_proj,
        )
    if tiny and version == "2022":  # CNN14's widths are literals in its __init__
        _shrink_cnn14(clap.audio_encoder.base, audio_module.ConvBlock, out_emb)
    randomise_norms(clap)
    return clap.eval()


def msclap_wrapper(clap, version: str, tokenizer):
    """msclap's `CLAPWrapper` around `clap`, set up as its `load_clap` does (yml args, token
    keys, `!` as GPT-2's pad token) without its download. `read_audio` is the one method
    replaced (it calls torchaudio): it returns the waveform registered in `wrapper.waves`."""
    import re

    import torch

    wrapper_cls = peers().msclap_wrapper.CLAPWrapper
    wrapper = wrapper_cls.__new__(wrapper_cls)
    wrapper.np_str_obj_array_pattern = re.compile(r"[SaUO]")
    wrapper.default_collate_err_msg_format = "default_collate: unsupported {}"
    wrapper.args = msclap_yml(version)
    wrapper.use_cuda = False
    wrapper.clap = clap
    wrapper.token_keys = (
        ["input_ids", "attention_mask"]
        if version == "2023"
        else ["input_ids", "token_type_ids", "attention_mask"]
    )
    if version == "2023":
        tokenizer.add_special_tokens({"pad_token": "!"})
    # transformers 5 dropped `encode_plus` (msclap targets transformers 4); for one text it
    # was the tokenizer's call with the same arguments.
    tokenizer.encode_plus = tokenizer.__call__
    wrapper.tokenizer = tokenizer
    wrapper.waves = {}
    rate = wrapper.args.sampling_rate

    def read_audio(key, resample=True):
        return torch.from_numpy(wrapper.waves[key])[None], rate

    wrapper.read_audio = read_audio
    return wrapper


class _RobertaFromTinyConfig:
    """Stands for `transformers.RobertaModel` inside laion_clap's model module: its
    `from_pretrained("roberta-base")` (a download) builds a random 1-layer, 64-wide RoBERTa."""

    @staticmethod
    def from_pretrained(name):
        from transformers import RobertaConfig, RobertaModel

        config = RobertaConfig(
            vocab_size=50265,
            hidden_size=64,
            num_hidden_layers=1,
            num_attention_heads=1,
            intermediate_size=128,
            max_position_embeddings=514,
            type_vocab_size=1,
            layer_norm_eps=1e-5,
            pad_token_id=1,
        )
        return RobertaModel(config)


def laion_audio_cfg(kind: str, size: str = "tiny") -> dict:
    """LAION's `audio_cfg` (model_configs/HTSAT-tiny.json, HTSAT-base.json, PANN-14.json)."""
    return dict(
        audio_length=1024,
        clip_samples=480000,
        mel_bins=64,
        sample_rate=48000,
        window_size=1024,
        hop_size=480,
        fmin=50,
        fmax=14000,
        class_num=527,
        model_type="HTSAT" if kind == "htsat" else "PANN",
        model_name=size if kind == "htsat" else "Cnn14",
    )


def build_laion(kind: str = "htsat", fusion: bool = False, tiny: bool = True, size: str = "tiny"):
    """laion_clap's `CLAP` (HTSAT or PANN CNN14 audio, RoBERTa text) with random weights, made
    by its own `CLAP(**model_cfg)` as `create_model` does. `tiny`: HTSAT at 16 wide, depths
    1-2-1-1 (its own class), CNN14 8..256 wide, 32-d heads; else HTSAT-tiny's sizes. The text
    tower is always a tiny RoBERTa (see `_RobertaFromTinyConfig`)."""

    import torch

    p = peers()
    joint = 32 if tiny else 512
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(p.laion_model, "RobertaModel", _RobertaFromTinyConfig)
        if tiny and kind == "htsat":
            patch.setattr(p.laion_model, "create_htsat_model", _tiny_laion_htsat)
        htsat_width = 128 if tiny else {"tiny": 768, "base": 1024}[size]
        embed = {"htsat": htsat_width, "pann": 64 if tiny else 2048}[kind]
        model = p.laion_model.CLAP(
            embed_dim=embed,
            audio_cfg=laion_audio_cfg(kind, size),
            text_cfg=dict(
                context_length=77, vocab_size=49408, width=512, heads=8, layers=12,
                model_type="roberta",
            ),
            enable_fusion=fusion,
            fusion_type="aff_2d" if fusion else "None",
            joint_embed_shape=joint,
        )  # fmt: skip
    model.text_projection[0] = torch.nn.Linear(64, joint)  # LAION hard-codes roberta-base's 768
    if tiny and kind == "pann":  # CNN14's widths are literals in its __init__
        _shrink_cnn14(model.audio_branch, p.laion_pann.ConvBlock, embed)
    randomise_norms(model)
    return model.eval()


def save_laion(model, path) -> None:
    """As LAION's training saves: epoch, name, and the DDP-wrapped (`module.`) state dict."""
    import torch

    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": 45, "name": "clapsearch-parity", "state_dict": state}, str(path))


def laion_get_audio_features():
    """laion_clap's own `get_audio_features` (training/data.py), compiled from its source.
    Importing that module downloads three tokenizers at import time, so only this function's
    definition is taken; its `get_mel` (torchaudio, fusion models only) raises if reached."""
    import ast
    import contextlib
    from pathlib import Path

    import numpy as np
    import torch
    import torch.nn.functional as F

    laion_dir = Path(importlib.util.find_spec("laion_clap").submodule_search_locations[0])
    source = (laion_dir / "training" / "data.py").read_text()
    tree = ast.parse(source)
    func = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "get_audio_features"
    )

    def get_mel(*args, **kwargs):
        raise RuntimeError("laion_clap's get_mel needs torchaudio")

    namespace = {
        "torch": torch,
        "np": np,
        "F": F,
        "suppress": contextlib.suppress,
        "get_mel": get_mel,
    }
    exec(
        compile(ast.Module([func], type_ignores=[]), str(laion_dir / "training/data.py"), "exec"),
        namespace,
    )
    return namespace["get_audio_features"]


# --- peer model files shared by the test modules ------------------------------------------------
@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub cache holding the stand-in tokenizers, huggingface_hub pointed at it for the
    module (the peers' loaders look their tokenizers up there)."""
    peers()
    cache, patch = hub_cache_with_tokenizers(tmp_path_factory)
    yield cache
    patch.undo()


@pytest.fixture(scope="session")
def peer_files(tmp_path_factory):
    """`get(name)` -> (the peer's model object, the file it was saved to), built once a session:
    `msclap-2022`, `msclap-2023`, `laion-htsat`, `laion-htsat-fusion`, `laion-pann`."""
    import torch

    built = {}

    def get(name: str):
        if name in built:
            return built[name]
        folder = tmp_path_factory.mktemp(name)
        if name.startswith("msclap-"):
            version = name.split("-")[1]
            family = "gpt2" if version == "2023" else "bert"
            text_dir = tiny_text_tower(folder / family, family)
            torch.manual_seed(int(version))
            model = build_msclap(version, text_dir)
            path = folder / f"CLAP_weights_{version}.pth"
            torch.save({"model": model.state_dict()}, str(path))
        else:
            kind, fusion = name.split("-")[1], name.endswith("-fusion")
            torch.manual_seed(7)
            model = build_laion(kind, fusion)
            path = folder / ("630k-audioset-fusion-best.pt" if fusion else "630k-audioset-best.pt")
            save_laion(model, path)
        built[name] = (model, path)
        return built[name]

    return get


MIN_COSINE = 0.9999


def assert_parity(label: str, got, want, minimum: float = MIN_COSINE) -> float:
    """Row-wise cosine between clapsearch's vectors and the peer's: print the smallest (the
    figure docs/checkpoints.md quotes: `pytest -s ... | grep parity`) and require `minimum`."""
    import numpy as np

    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    got = got / np.linalg.norm(got, axis=-1, keepdims=True)
    want = want / np.linalg.norm(want, axis=-1, keepdims=True)
    worst = float((got * want).sum(-1).min())
    print(f"parity {label}: min cosine {worst:.7f} over {got.shape[0]}")
    assert worst >= minimum, f"{label}: cosine {worst} < {minimum}"
    return worst
