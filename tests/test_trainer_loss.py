"""Contrastive loss: symmetric CE, and the cross-rank gather (patched, then real gloo)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from trainer import loss as loss_mod
from trainer.loss import ClipLoss, symmetric_ce


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=-1)


def test_symmetric_ce_is_the_mean_of_both_directions():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0], [0.0, 3.0, 1.0]])
    rows = -sum(torch.log_softmax(logits[i], 0)[i] for i in range(3)) / 3
    cols = -sum(torch.log_softmax(logits[:, i], 0)[i] for i in range(3)) / 3
    assert symmetric_ce(logits).item() == pytest.approx(0.5 * (rows + cols).item(), rel=1e-6)


def test_perfect_alignment_gives_low_loss_and_shuffled_high():
    a = _unit(8, 16, 0)
    scale = torch.tensor(100.0)
    assert ClipLoss(0, 1)(a, a, scale).item() < 1e-3
    assert ClipLoss(0, 1)(a, a.roll(1, 0), scale).item() > math.log(8)


def test_patched_gather_gives_the_global_loss_and_local_gradients(monkeypatch):
    """Two simulated ranks: each sees the global loss; their local gradients add up to the
    gradient of the single-process loss on the concatenated batch."""
    world, b, d = 2, 3, 8
    audio, text = _unit(world * b, d, 1), _unit(world * b, d, 2)
    scale = torch.tensor(10.0, requires_grad=True)
    full_a, full_t = audio.clone().requires_grad_(), text.clone().requires_grad_()
    ref = ClipLoss(0, 1)(full_a, full_t, scale)
    ref.backward()
    full_scale_grad, scale.grad = scale.grad.clone(), None

    for rank in range(world):
        local_a = audio[rank * b : (rank + 1) * b].clone().requires_grad_()
        local_t = text[rank * b : (rank + 1) * b].clone().requires_grad_()

        def fake_gather(x, local_a=local_a):
            full = audio if torch.equal(x, local_a.detach()) else text
            assert not x.requires_grad  # the gather must never carry gradients
            return [full[r * b : (r + 1) * b].clone() for r in range(world)]

        monkeypatch.setattr(loss_mod, "_all_gather", fake_gather)
        out = ClipLoss(rank, world)(local_a, local_t, scale)
        out.backward()
        assert out.item() == pytest.approx(ref.item(), rel=1e-6)
        torch.testing.assert_close(local_a.grad, full_a.grad[rank * b : (rank + 1) * b])
        torch.testing.assert_close(local_t.grad, full_t.grad[rank * b : (rank + 1) * b])
    # the scale is seen whole by every rank: each holds 1/world of its gradient, so the sum
    # over ranks (what the trainer's x world_size on DDP's average gives) is the global one
    torch.testing.assert_close(scale.grad, full_scale_grad)


def _gloo_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        b = 3
        audio = _unit(world * b, 8, 1)[rank * b : (rank + 1) * b].clone().requires_grad_()
        text = _unit(world * b, 8, 2)[rank * b : (rank + 1) * b].clone().requires_grad_()
        loss = ClipLoss()(audio, text, torch.tensor(10.0))  # rank/world from the process group
        loss.backward()
        torch.save(
            {"loss": loss.detach(), "ga": audio.grad, "gt": text.grad}, f"{out_dir}/r{rank}.pt"
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_real_two_process_gloo_gather(tmp_path):
    import torch.multiprocessing as mp

    world, b = 2, 3
    # spawn, not fork: forking after torch has started its thread pools can deadlock.
    mp.spawn(_gloo_worker, args=(world, str(tmp_path / "init"), str(tmp_path)), nprocs=world)
    full_a = _unit(world * b, 8, 1).requires_grad_()
    full_t = _unit(world * b, 8, 2).requires_grad_()
    ref = ClipLoss(0, 1)(full_a, full_t, torch.tensor(10.0))
    ref.backward()
    for rank in range(world):
        got = torch.load(tmp_path / f"r{rank}.pt")
        assert got["loss"].item() == pytest.approx(ref.item(), rel=1e-6)
        torch.testing.assert_close(got["ga"], full_a.grad[rank * b : (rank + 1) * b])
        torch.testing.assert_close(got["gt"], full_t.grad[rank * b : (rank + 1) * b])


# --- the learned temperature (issue 18.1) ----------------------------------------------------
def _scale_after_steps(model, steps: int = 5) -> float:
    """Adam on the logit scale alone, on pairs of unrelated random vectors (no pairing to be
    confident about, so a lower scale lowers the loss); the trainer's post-step clamp after
    each step."""
    audio, text = _unit(8, 16, 3), _unit(8, 16, 5)
    opt = torch.optim.Adam([model.logit_scale], lr=0.05)
    loss_fn = ClipLoss(0, 1, model.logit_clip)
    for _ in range(steps):
        loss_fn(audio, text, model.scale()).backward()
        opt.step()
        opt.zero_grad()
        model.clamp_logit_scale()
    return model.scale().item()


def _model(**changes):
    import dataclasses

    from clapsearch.models import build_model
    from clapsearch.models.presets import tiny_config

    return build_model(dataclasses.replace(tiny_config(), **changes))


def test_temperature_at_the_cap_still_learns():
    """A run started at (or clamped to) the cap of 100 must be able to come back down: float32
    log(100) has exp 100.0000076, above the cap, and a clamp there had a zero gradient."""
    model = _model(logit_scale_init=100.0)
    assert model.scale().item() <= 100.0
    model.scale().backward()
    assert model.logit_scale.grad.item() > 0  # the gradient is not cut by the clamp
    model.logit_scale.grad = None
    assert _scale_after_steps(model) < 95.0
    # clamped after a step that pushed it over the cap: at most the cap, and still learning
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    model.clamp_logit_scale()
    assert model.scale().item() <= 100.0 and model.scale().item() > 99.999
    assert _scale_after_steps(model) < 95.0


def test_logit_clipping_leaves_the_scale_free_and_learning():
    """MS-CLAP: init 1/0.007 is kept (not clamped to 100), the logits are clipped at 100, and
    the scale still gets a gradient from the logits below the clip."""
    model = _model(logit_scale_init=1 / 0.007, logit_cap="logits")
    assert model.scale().item() == pytest.approx(142.857, rel=1e-5)
    assert model.logit_clip == 100.0
    a = _unit(8, 16, 4)
    logits = loss_mod.contrastive_logits(a, a, model.scale(), model.logit_clip)
    assert logits.max().item() == pytest.approx(100.0)  # the diagonal (cos 1) is clipped
    model.clamp_logit_scale()  # a no-op for clipped logits
    assert model.scale().item() == pytest.approx(142.857, rel=1e-5)
    assert _scale_after_steps(model) < 140.0
