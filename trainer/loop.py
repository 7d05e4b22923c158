"""The training loop: one process, or one per device under torchrun.

    clapsearch train --config configs/esc50_small.yaml              # 1 process
    torchrun --nproc_per_node=2 -m trainer --config configs/X.yaml   # DDP (gloo on CPU, nccl on GPU)

Each step: waveforms -> log-mel on the training device -> both towers -> symmetric contrastive
loss over the global batch (gathered across ranks) -> AdamW with warmup + cosine, gradient
clipping, bf16 autocast on GPU, `grad_accum` micro-batches per step. Rank 0 validates every
`eval_every` epochs, keeps `best/`, writes `last/` (resumable) every `save_every` steps and at
every epoch end, logs to TensorBoard (`OUT/tb`) and `OUT/metrics.jsonl`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from clapsearch.config import to_dict
from clapsearch.errors import UsageError
from clapsearch.features import clap_features
from clapsearch.models import ClapsearchModel, Provenance, build_model, save_checkpoint
from clapsearch.training_record import read_training_hashes, write_training_hashes
from trainer.checks import LOWER_IS_BETTER, check_config, resolved_best_metric
from trainer.config import TrainConfig
from trainer.evaluate import headline
from trainer.feed import TrainData
from trainer.loss import ClipLoss
from trainer.resume import (
    apply_hyperparameters,
    check_global_batch,
    check_resume,
    fresh_hyperparameters,
)
from trainer.state import Progress, load_resumable, save_resumable, seed_everything
from trainer.syncbn import convert_sync_batchnorm


@dataclass
class TrainResult:
    output_dir: str
    steps: int
    epochs: int
    samples_seen: int
    seconds: float
    samples_per_s: float
    best_score: float | None
    best_step: int
    final_metrics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_choice: str) -> tuple[Dist, torch.device]:
    """Read torchrun's environment; start the process group when there are several ranks."""
    from clapsearch.device import resolve_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world, local), device


def lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warmup to 1 over `warmup` steps, then cosine down to `min_ratio` at `total`."""

    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def make_optimizer(model: ClapsearchModel, cfg: TrainConfig):
    """AdamW or Adam (`optim.name`); per-tower learning rates; no weight decay on biases,
    norms and the logit scale (as CLIP)."""
    o = cfg.optim
    rates = {"audio_encoder.": o.audio_lr or o.lr, "text_encoder.": o.text_lr or o.lr}
    groups: dict[tuple[float, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lr = next((r for prefix, r in rates.items() if name.startswith(prefix)), o.lr)
        decay = p.ndim >= 2 and "logit_scale" not in name
        groups.setdefault((lr, decay), []).append(p)
    params = [
        {"params": ps, "lr": lr, "weight_decay": o.weight_decay if decay else 0.0}
        for (lr, decay), ps in sorted(groups.items())
    ]
    opt = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return opt(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps)


def make_scheduler(optimizer, cfg: TrainConfig, total_steps: int, higher_is_better: bool):
    """`cosine`: a LambdaLR stepped after every optimizer step. `plateau`: ReduceLROnPlateau
    stepped once per epoch with the epoch's score (`Trainer.epoch_score`)."""
    o = cfg.optim
    if o.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max" if higher_is_better else "min",
            factor=o.plateau_factor,
            patience=o.plateau_patience,
        )
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda(o.warmup_steps, total_steps, o.min_lr_ratio)
    )


def unfreeze_top_layers(text_encoder: torch.nn.Module, n: int) -> None:
    """Train the top `n` transformer layers of a frozen text tower (it stays in eval mode:
    no dropout). Needs a transformers encoder with `encoder.layer` (BERT family, MiniLM)."""
    layers = getattr(getattr(text_encoder.hf_model, "encoder", None), "layer", None)
    if layers is None or n > len(layers):
        raise UsageError(f"text_top_layers={n}: the text encoder has no {n} layers to train.")
    for layer in list(layers)[-n:]:
        for p in layer.parameters():
            p.requires_grad_(True)


class Logger:
    """TensorBoard scalars (when installed and enabled) plus `metrics.jsonl` (rank 0 only).
    When TensorBoard is asked for but not installed, one line says so (it comes with
    `pip install 'clapsearch[train]'`) and the run goes on with `metrics.jsonl`."""

    def __init__(self, out: Path, enabled: bool, tensorboard: bool):
        self.enabled = enabled
        self.tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"))
            except ImportError:
                print(
                    f"TensorBoard logging is off: the tensorboard package is not installed "
                    f"(pip install 'clapsearch[train]'); metrics go to {out / 'metrics.jsonl'} "
                    f"only.",
                    file=sys.stderr,
                )
        self.path = out / "metrics.jsonl"

    def log(self, step: int, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **record}) + "\n")
        if self.tb is not None:
            for key, value in _flatten(record).items():
                if isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


class Trainer:
    """Holds the run's pieces; `run()` trains to the end (or `max_steps`)."""

    def __init__(
        self,
        cfg: TrainConfig,
        resume: bool = False,
        on_step: Callable[[Progress], None] | None = None,
        override: bool = False,
    ):
        from transformers import AutoTokenizer

        check_config(cfg)
        self.cfg = cfg
        self.on_step = on_step
        self.best_metric = resolved_best_metric(cfg)
        self.higher_is_better = self.best_metric.rsplit(".", 1)[-1] not in LOWER_IS_BETTER
        self.out = Path(cfg.output_dir)
        if resume:
            check_resume(self.out / "last", cfg, override)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.dist, self.device = setup_distributed(cfg.device)
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed)
        model = build_model(cfg.model)
        model.freeze(audio=cfg.freeze_audio, text=cfg.freeze_text)
        if cfg.text_top_layers:
            unfreeze_top_layers(model.text_encoder, cfg.text_top_layers)
        self.model = model.to(self.device)
        if self.dist.world_size > 1 and cfg.sync_batchnorm:
            # Before the optimizer is built: the synchronised layers are new modules.
            convert_sync_batchnorm(self.model, self.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model.text_encoder.tokenizer_source())
        self.data = TrainData(
            cfg, self.tokenizer, self.dist.rank, self.dist.world_size, self.device.type == "cuda"
        )
        self.batches_per_epoch = self.data.batches_per_epoch
        self.validator = self.data.validator
        per_epoch = math.ceil(self.batches_per_epoch / cfg.grad_accum)
        self.total_steps = cfg.epochs * per_epoch
        if cfg.max_steps:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.optimizer = make_optimizer(self.model, cfg)
        # Plateau on the training loss when there is no validation (lower is better).
        self.scheduler = make_scheduler(
            self.optimizer, cfg, self.total_steps, self.higher_is_better and bool(cfg.data.val)
        )
        self.global_batch = cfg.batch_size * self.dist.world_size
        self.progress = Progress(global_batch=self.global_batch)
        self.validated_step = -1
        self.last_score: float | None = None
        self.seen: set[str] = set()  # clip hashes this rank trained on since the last save
        self.trained_on: set[str] = set()  # rank 0: all of them (trained_on.json)
        if resume:
            self._resume(override)
        self.ddp = self.model
        if self.dist.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.loss_fn = ClipLoss(self.dist.rank, self.dist.world_size, self.model.logit_clip)
        use_bf16 = cfg.precision == "bf16" or (
            cfg.precision == "auto" and self.device.type == "cuda"
        )
        self.autocast = lambda: torch.autocast(self.device.type, torch.bfloat16, enabled=use_bf16)
        self.logger = Logger(self.out, self.dist.main, cfg.tensorboard)

    def _resume(self, override: bool) -> None:
        """Load `OUT/last` (settings already compared by `check_resume`); with `override`,
        the new hyper-parameters and global batch take effect from here."""
        fresh = fresh_hyperparameters(self.optimizer)
        p = load_resumable(self.out / "last", self.model, self.optimizer, self.scheduler)
        check_global_batch(p.global_batch, self.global_batch, override)
        self.trained_on = set(read_training_hashes(self.out / "last") or ())
        if override:
            apply_hyperparameters(self.optimizer, self.scheduler, fresh)
            if p.global_batch and p.global_batch != self.global_batch:
                p.batch = p.batch * p.global_batch // self.global_batch
            p.global_batch = self.global_batch
        self.progress = p

    def _micro_step(self, batch, sync: bool) -> float:
        front = self.cfg.model.audio
        waves = batch.waveforms.to(self.device, non_blocking=True)
        clips = [w[: int(n)] for w, n in zip(waves, batch.lengths)]
        # Fusion models: random crops in training (LAION-CLAP), drawn from a generator that
        # depends only on where the run is, so a resumed run draws the same.
        crop_rng = None
        if front.truncation == "fusion":
            p = self.progress
            crop_rng = np.random.default_rng([self.cfg.seed, p.epoch, p.batch, self.dist.rank])
        features, is_longer = clap_features(clips, front, crop_rng)
        self.seen.update(d for d in batch.digests if d)
        self.data.count_skipped(batch.skipped)
        ctx = contextlib.nullcontext() if sync or self.ddp is self.model else self.ddp.no_sync()
        with ctx:
            with self.autocast():
                audio, text, scale = self.ddp(
                    features,
                    is_longer,
                    batch.input_ids.to(self.device),
                    batch.attention_mask.to(self.device),
                )
                loss = self.loss_fn(audio, text, scale)
            # x world_size: each rank's loss only reaches its own slot of the global batch and
            # DDP averages over ranks, so this makes the gradient that of the global loss, the
            # same as one process with the whole batch (and grad_clip means the same).
            (loss * (self.dist.world_size / self.cfg.grad_accum)).backward()
        return float(loss.detach())

    def _optimizer_step(self) -> float:
        params = [p for p in self.model.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.optim.grad_clip or float("inf"))
        self.optimizer.step()
        if self.cfg.optim.schedule == "cosine":
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.model.clamp_logit_scale()
        return float(norm)

    def provenance(self, metrics: dict) -> Provenance:
        p = self.progress
        return Provenance(
            data=self.data.names,
            steps=p.step,
            epochs=p.epoch + p.batch / max(1, self.batches_per_epoch),
            samples_seen=p.samples_seen,
            metrics=metrics,
            train_config=to_dict(self.cfg),
        )

    def merge_seen(self) -> None:
        """Collect every rank's newly seen clip hashes on rank 0 (all ranks call this)."""
        new = sorted(self.seen)
        self.seen.clear()
        if self.dist.world_size > 1:
            parts: list = [None] * self.dist.world_size
            dist.all_gather_object(parts, new)
            new = [d for part in parts for d in part]
        if self.dist.main:
            self.trained_on.update(new)

    def write_trained_on(self, folder: Path) -> None:
        """`trained_on.json`: the content hashes of every clip trained on so far."""
        write_training_hashes(folder, self.trained_on)

    def save_last(self, metrics: dict) -> None:
        self.merge_seen()
        if self.dist.main:
            save_resumable(
                self.out / "last",
                self.model,
                self.tokenizer,
                self.optimizer,
                self.scheduler,
                self.progress,
                self.provenance(metrics),
                extra=self.write_trained_on,
            )
        if self.dist.world_size > 1:
            dist.barrier()

    def validate(self) -> dict:
        """Rank 0 scores the model; keeps `best/` when `best_metric` improved."""
        metrics = {}
        self.validated_step = self.progress.step
        self.merge_seen()
        if self.validator is not None:
            metrics = self.validator(self.model, self.tokenizer)
            self.model.train()
            score = headline(metrics, self.best_metric)
            if score is not None and not self.higher_is_better:
                score = -score  # best_score is always "higher is better"
            self.logger.log(
                self.progress.step,
                {"epoch": self.progress.epoch, "val": metrics, **self.temperature()},
            )
            self.last_score = score
            if score is not None and score > self.progress.best_score:
                self.progress.best_score, self.progress.best_step = score, self.progress.step
                save_checkpoint(
                    self.model,
                    self.tokenizer,
                    self.out / "best",
                    self.provenance(metrics),
                    extra=self.write_trained_on,
                )
        if self.dist.world_size > 1:
            dist.barrier()
        return metrics

    def report_skipped(self) -> None:
        """Sum every rank's skipped-clip counts on rank 0 and say them in one line."""
        if self.dist.world_size > 1:
            parts: list = [None] * self.dist.world_size
            dist.all_gather_object(parts, (dict(self.data.skipped), self.data.first_skipped))
            self.data.skipped.clear()
            for counts, first in parts:
                self.data.skipped.update(counts)
                self.data.first_skipped = self.data.first_skipped or first
        self.data.final_report()

    def temperature(self) -> dict:
        """The learned temperature: the logit scale and its inverse."""
        scale = float(self.model.scale().detach())
        return {"logit_scale": scale, "temperature": 1.0 / scale}

    def epoch_end(self) -> dict:
        """Validate when due, and step the plateau schedule with the epoch's score."""
        cfg, p = self.cfg, self.progress
        metrics: dict = {}
        self.last_score = None
        if cfg.eval_every and p.epoch % cfg.eval_every == 0:
            metrics = self.validate()
        if cfg.optim.schedule == "plateau":
            self.scheduler.step(self.epoch_score())
        p.loss_sum, p.loss_count = 0.0, 0
        return metrics

    def epoch_score(self) -> float:
        """Plateau schedule's score: validation `best_metric` when validated this epoch (as
        a higher-is-better or lower-is-better value, per the scheduler's mode), else the
        epoch's mean training loss, averaged over ranks."""
        p = self.progress
        if self.cfg.data.val:
            # Rank 0 validated; every rank must step its scheduler with the same value.
            score = torch.tensor([self.last_score if self.last_score is not None else math.nan])
            if self.dist.world_size > 1:
                dist.broadcast(score, 0)
            value = float(score)
            if not math.isnan(value):
                return value if self.higher_is_better else -value
        loss = torch.tensor([p.loss_sum, float(p.loss_count)], dtype=torch.float64)
        if self.dist.world_size > 1:
            dist.all_reduce(loss)
        return float(loss[0] / max(1.0, float(loss[1])))

    def run(self) -> TrainResult:
        from tqdm.auto import tqdm

        cfg, p = self.cfg, self.progress
        self.model.train()
        bar = tqdm(
            total=self.total_steps,
            initial=p.step,
            unit="step",
            desc="train",
            disable=not (cfg.progress and self.dist.main),
            dynamic_ncols=True,
        )
        self.meter, metrics, t0 = Meter(), {}, time.perf_counter()
        while p.epoch < cfg.epochs and p.step < self.total_steps:
            self._epoch(bar, metrics)
            with self.meter.paused():
                if p.batch >= self.batches_per_epoch:
                    p.epoch, p.batch = p.epoch + 1, 0
                    metrics = self.epoch_end() or metrics
                self.save_last(metrics)
        bar.close()
        if cfg.data.val and self.validated_step != p.step:  # same decision on every rank
            metrics = self.validate()
            self.save_last(metrics)
        self.report_skipped()
        self.logger.close()
        return TrainResult(
            output_dir=str(self.out),
            steps=p.step,
            epochs=p.epoch,
            samples_seen=p.samples_seen,
            seconds=time.perf_counter() - t0,
            samples_per_s=self.meter.rate(),
            best_score=p.best_score if p.best_step >= 0 else None,
            best_step=p.best_step,
            final_metrics=metrics,
        )

    def _epoch(self, bar, metrics: dict) -> None:
        """The rest of the current epoch (or up to `total_steps`)."""
        cfg, p = self.cfg, self.progress
        global_batch = cfg.batch_size * self.dist.world_size
        pending = 0
        for batch in self.data.loader(p.epoch, p.batch):
            pending += 1
            last = p.batch + 1 == self.batches_per_epoch
            sync = pending == cfg.grad_accum or last
            loss = self._micro_step(batch, sync)
            p.loss_sum, p.loss_count = p.loss_sum + loss, p.loss_count + 1
            p.batch += 1
            p.samples_seen += global_batch
            self.meter.add(global_batch)
            if not sync:
                continue
            norm = self._optimizer_step()
            pending = 0
            p.step += 1
            bar.update(1)
            if p.step % cfg.log_every == 0 or p.step == self.total_steps:
                rate = self.meter.window_rate()
                self.logger.log(
                    p.step,
                    {
                        "loss": loss,
                        "lr": max(g["lr"] for g in self.optimizer.param_groups),
                        **self.temperature(),
                        "grad_norm": norm,
                        **({"skipped": dict(self.data.skipped)} if self.data.skipped else {}),
                        "samples_per_s": rate,
                    },
                )
                bar.set_postfix(loss=f"{loss:.3f}", sps=f"{rate:.1f}")
            if cfg.save_every and p.step % cfg.save_every == 0 and not last:
                with self.meter.paused():
                    self.save_last(metrics)
            if self.on_step is not None:
                self.on_step(p)
            if p.step >= self.total_steps:
                return


class Meter:
    """Training throughput, excluding time spent validating and writing checkpoints."""

    def __init__(self):
        self.samples = self.window_samples = 0
        self.seconds = self.window_seconds = 0.0
        self._since = time.perf_counter()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.seconds += now - self._since
        self.window_seconds += now - self._since
        self._since = now

    def add(self, n: int) -> None:
        self.samples += n
        self.window_samples += n

    @contextlib.contextmanager
    def paused(self):
        self._tick()
        try:
            yield
        finally:
            self._since = time.perf_counter()

    def window_rate(self) -> float:
        """Samples/s since the last call."""
        self._tick()
        rate = self.window_samples / max(self.window_seconds, 1e-9)
        self.window_samples, self.window_seconds = 0, 0.0
        return rate

    def rate(self) -> float:
        self._tick()
        return self.samples / max(self.seconds, 1e-9)


def train(
    cfg: TrainConfig, resume: bool = False, on_step=None, override: bool = False
) -> TrainResult:
    """Train per `cfg`; `resume` continues from `OUT/last/` (with the saved settings, or the
    new ones with `override`: `trainer.resume`). Returns a summary (rank 0's)."""
    trainer = None
    try:
        trainer = Trainer(cfg, resume=resume, on_step=on_step, override=override)
        return trainer.run()
    finally:
        trainer = None  # the DDP wrapper and its reducer hold the process group
        if dist.is_initialized():
            _end_process_group()


def _end_process_group() -> None:
    """Free everything that holds the process group (the DDP wrapper, its reducer, gloo's
    pending work and the tensors it references), then destroy the group, while the
    interpreter is fully alive. Left to interpreter shutdown, a gloo worker thread can free a
    tensor after Python is gone: the rank dies of SIGABRT ("terminate called without an
    active exception") after training finished (pytorch/pytorch#179291)."""
    import gc

    gc.collect()
    dist.destroy_process_group()
    gc.collect()


__all__ = ["Trainer", "TrainResult", "train", "lr_lambda"]
