"""Up-front checks of a `TrainConfig`: every bad setting is one sentence before anything runs.

`trainer.config.build` already refuses unknown keys, values outside an enumeration
(`pooling: max`, `truncation: fusoin`, `precision: fp16`) and values of the wrong type; here
are the numeric ranges and the settings that depend on each other (`best_metric` against the
validation sources, the temperature's init against its cap, encoder names against the
registry). A run that would otherwise fail after minutes of data loading, or silently do
something else than asked, stops here.
"""

from __future__ import annotations

from collections.abc import Iterator

from clapsearch.errors import UsageError
from clapsearch.prompts import normalize_template
from trainer.config import TrainConfig

# ESC-50 ships five official folds.
ESC50_FOLDS = range(1, 6)
LABELLED_KINDS = ("esc50",)  # sources whose validation view reports zero-shot accuracy
LOWER_IS_BETTER = ("median_rank",)


def metric_names() -> list[str]:
    """Every key the validator reports (`zeroshot`, `t2a.R@1`, ..., `a2t.median_rank`)."""
    from clapsearch.eval.metrics import METRIC_KEYS

    return ["zeroshot"] + [f"{d}.{k}" for d in ("t2a", "a2t") for k in METRIC_KEYS]


def resolved_best_metric(cfg: TrainConfig) -> str:
    """`best_metric`, with `auto` resolved against the validation sources."""
    if cfg.best_metric != "auto":
        return cfg.best_metric
    labelled = any(s.kind in LABELLED_KINDS for s in cfg.data.val)
    return "zeroshot" if labelled else "t2a.R@1"


def check_config(cfg: TrainConfig) -> None:
    """Raise `UsageError` with the first problem found (one sentence)."""
    for problem in _problems(cfg):
        raise UsageError(problem)


def _ranges(cfg: TrainConfig) -> Iterator[tuple[str, float, str]]:
    """(setting, value, rule) for every numeric setting; rule is `>0`, `>=0`, `>=1`,
    `[0,1]`, `[0,1)` or `(0,1)`."""
    m, d, o = cfg.model, cfg.data, cfg.optim
    a, ae, te = m.audio, m.audio_encoder, m.text_encoder
    yield from [
        ("epochs", cfg.epochs, ">=1"),
        ("max_steps", cfg.max_steps, ">=0"),
        ("batch_size", cfg.batch_size, ">=1"),
        ("grad_accum", cfg.grad_accum, ">=1"),
        ("save_every", cfg.save_every, ">=0"),
        ("eval_every", cfg.eval_every, ">=0"),
        ("log_every", cfg.log_every, ">=1"),
        ("threads", cfg.threads, ">=0"),
        ("text_top_layers", cfg.text_top_layers, ">=0"),
        ("optim.lr", o.lr, ">0"),
        ("optim.audio_lr", o.audio_lr, ">=0"),
        ("optim.text_lr", o.text_lr, ">=0"),
        ("optim.weight_decay", o.weight_decay, ">=0"),
        ("optim.betas[0]", o.betas[0], "[0,1)"),
        ("optim.betas[1]", o.betas[1], "[0,1)"),
        ("optim.eps", o.eps, ">0"),
        ("optim.warmup_steps", o.warmup_steps, ">=0"),
        ("optim.min_lr_ratio", o.min_lr_ratio, "[0,1]"),
        ("optim.grad_clip", o.grad_clip, ">=0"),
        ("optim.plateau_factor", o.plateau_factor, "(0,1)"),
        ("optim.plateau_patience", o.plateau_patience, ">=0"),
        ("data.clip_s", d.clip_s, ">=0"),
        ("data.gain_db", d.gain_db, ">=0"),
        ("data.time_shift", d.time_shift, "[0,1]"),
        ("data.mix_prob", d.mix_prob, "[0,1]"),
        ("data.workers", d.workers, ">=0"),
        ("data.shuffle_buffer", d.shuffle_buffer, ">=1"),
        ("data.val_batch", d.val_batch, ">=1"),
        ("data.keywords.prob", d.keywords.prob, "[0,1]"),
        ("data.keywords.max_new_tokens", d.keywords.max_new_tokens, ">=1"),
        ("model.embed_dim", m.embed_dim, ">=1"),
        ("model.logit_scale_init", m.logit_scale_init, ">0"),
        ("model.logit_scale_max", m.logit_scale_max, ">0"),
        ("model.audio.sample_rate", a.sample_rate, ">=1"),
        ("model.audio.window_s", a.window_s, ">0"),
        ("model.audio.n_fft", a.n_fft, ">=1"),
        ("model.audio.hop_length", a.hop_length, ">=1"),
        ("model.audio.n_mels", a.n_mels, ">=1"),
        ("model.audio.f_min", a.f_min, ">=0"),
        ("model.audio_encoder.embed_dim", ae.embed_dim, ">=0"),
        ("model.audio_encoder.dropout", ae.dropout, "[0,1)"),
        ("model.text_encoder.max_length", te.max_length, ">=1"),
    ]
    for i, c in enumerate(ae.channels):
        yield (f"model.audio_encoder.channels[{i}]", c, ">=1")


_RULES = {
    ">0": (lambda v: v > 0, "greater than 0"),
    ">=0": (lambda v: v >= 0, "0 or more"),
    ">=1": (lambda v: v >= 1, "1 or more"),
    "[0,1]": (lambda v: 0 <= v <= 1, "between 0 and 1"),
    "[0,1)": (lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "(0,1)": (lambda v: 0 < v < 1, "strictly between 0 and 1"),
}


def _problems(cfg: TrainConfig) -> Iterator[str]:
    for name, value, rule in _ranges(cfg):
        ok, text = _RULES[rule]
        if not ok(value):
            yield f"{name} must be {text} (not {value})."
    yield from _model_problems(cfg)
    yield from _data_problems(cfg)
    if not cfg.output_dir.strip():
        yield "output_dir must name a folder."
    best = resolved_best_metric(cfg)
    if best not in metric_names():
        yield (
            f"best_metric {best!r} is not a validation metric; use auto or one of "
            f"{', '.join(metric_names())}."
        )
    elif cfg.data.val and best == "zeroshot":
        if not any(s.kind in LABELLED_KINDS for s in cfg.data.val):
            yield (
                "best_metric zeroshot needs a labelled validation source (esc50); these "
                "report retrieval only: use t2a.R@1, a2t.R@1 or another retrieval metric."
            )


def _model_problems(cfg: TrainConfig) -> Iterator[str]:
    from clapsearch.models import list_models

    m = cfg.model
    known = list_models()
    if m.audio_encoder.name not in known["audio"]:
        yield (
            f"model.audio_encoder.name must be one of {', '.join(known['audio'])} "
            f"(not {m.audio_encoder.name!r})."
        )
    if m.text_encoder.name not in known["text"]:
        yield (
            f"model.text_encoder.name must be one of {', '.join(known['text'])} "
            f"(not {m.text_encoder.name!r})."
        )
    a = m.audio
    if not a.f_min < a.f_max <= a.sample_rate / 2:
        yield (
            f"model.audio needs f_min < f_max <= sample_rate / 2 (got f_min {a.f_min}, f_max "
            f"{a.f_max}, sample_rate {a.sample_rate})."
        )
    if m.logit_cap == "scale" and m.logit_scale_init > m.logit_scale_max * (1 + 1e-6):
        yield (
            f"model.logit_scale_init {m.logit_scale_init:g} is above model.logit_scale_max "
            f"{m.logit_scale_max:g}, where the scale would be clamped and stuck; lower it, "
            f"raise the cap, or clip the logits instead (model.logit_cap: logits, as MS-CLAP)."
        )


def streams(src) -> bool:
    """Whether a source is read as a stream (`trainer.stream`)."""
    return src.kind == "webdataset" or (src.kind == "manifest" and src.stream)


def _data_problems(cfg: TrainConfig) -> Iterator[str]:
    from trainer.data import SOURCES

    if not cfg.data.train:
        yield "the training config lists no data.train sources."
    streamed = [s for s in cfg.data.train if streams(s)]
    if streamed and len(streamed) != len(cfg.data.train):
        yield (
            "data.train mixes streamed sources (webdataset, or stream: true) with indexed "
            "ones; stream them all (a manifest can list any files: stream: true) or none."
        )
    if streamed and cfg.data.mix_prob > 0:
        yield "data.mix_prob is not available with streamed sources; set it to 0."
    if streamed and cfg.data.cache_audio:
        yield "data.cache_audio is not available with streamed sources; set it to false."
    kw = cfg.data.keywords
    if kw.generator == "t5" and not kw.model.strip():
        yield "data.keywords.generator t5 needs data.keywords.model (a seq2seq model folder)."
    if "{keywords}" not in kw.prompt:
        yield "data.keywords.prompt must contain {keywords}."
    for part in ("train", "val"):
        for i, src in enumerate(getattr(cfg.data, part)):
            where = f"data.{part}[{i}]"
            if src.stream and src.kind != "manifest":
                yield f"{where}.stream applies to manifests only (webdataset always streams)."
            if src.kind not in SOURCES and src.kind != "webdataset":
                kinds = ", ".join(sorted([*SOURCES, "webdataset"]))
                yield f"{where}.kind must be one of {kinds} (not {src.kind!r})."
            if not src.root.strip():
                yield f"{where}.root must name the dataset's folder or file."
            bad_folds = [f for f in src.folds if f not in ESC50_FOLDS]
            if bad_folds:
                yield f"{where}.folds must be ESC-50 folds 1 to 5 (not {bad_folds[0]})."
            if not src.templates:
                yield f"{where}.templates must list at least one template."
            for t in src.templates:
                try:
                    normalize_template(t)
                except UsageError as err:
                    yield f"{where}.templates: {err}"


__all__ = ["check_config", "metric_names", "resolved_best_metric", "LOWER_IS_BETTER"]
