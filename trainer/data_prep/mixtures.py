"""Mixtures of two training clips with joined captions ("a dog barking and rain falling").

Both sources come from the training split only (a held-out clip never leaks into a mixture).
The second source sits 3-12 dB under the first, so "X with Y in the background" is true.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from trainer.data_prep.common import ClipRecord, fit_length, read_mono, set_level, write_clip


@dataclass(frozen=True)
class MixSpec:
    key: str
    path_a: str
    path_b: str
    below_db: float  # how far b's RMS sits under a's
    captions: tuple[str, ...]
    rms_db: float

    def render(self, out_path: Path) -> None:
        a = fit_length(read_mono(self.path_a))
        b = fit_length(read_mono(self.path_b))
        a = set_level(a, -20.0, peak=10.0)
        b = set_level(b, -20.0 - self.below_db, peak=10.0)
        write_clip(out_path, set_level(a + b, self.rms_db))


def _phrase(rng: random.Random, rec: ClipRecord) -> str:
    """Mostly the canonical caption; sometimes another short one (under 8 words)."""
    short = [c for c in rec.captions if len(c.split()) <= 7] or [rec.captions[0]]
    return rec.captions[0] if rng.random() < 0.6 else rng.choice(short)


def join_captions(rng: random.Random, a: ClipRecord, b: ClipRecord) -> tuple[str, ...]:
    pa, pb = _phrase(rng, a), _phrase(rng, b)
    return (
        f"{pa} and {pb}",
        f"{pa} with {pb} in the background",
        f"{pb} and {pa}",
        f"{a.captions[0]} and {b.captions[0]}",
    )


def specs(seed: int, count: int, pool: list[ClipRecord]) -> list[MixSpec]:
    """`count` mixtures drawn from `pool` (training records): about 40% two ESC-50 clips of
    different classes, 35% ESC-50 with a generated clip, 25% two generated clips."""
    rng = random.Random(f"mixtures:{seed}")
    usable = [r for r in pool if r.split == "train" and r.captions[0] != "silence"]
    esc = [r for r in usable if r.source == "esc50"]
    gen = [r for r in usable if r.source not in ("esc50", "clotho")]
    out = []
    for i in range(count):
        roll = rng.random()
        kind = "esc+esc" if roll < 0.4 else "esc+gen" if roll < 0.75 else "gen+gen"
        if kind == "gen+gen" and len(gen) < 2:
            kind = "esc+gen"
        if kind == "esc+gen" and not (esc and gen):
            kind = "esc+esc" if esc else "gen+gen"
        if kind == "esc+esc":
            a = rng.choice(esc)
            others = [r for r in esc if r.captions[0] != a.captions[0]]
            if not others:
                break
            b = rng.choice(others)
        elif kind == "esc+gen":
            a, b = rng.choice(esc), rng.choice(gen)
            if rng.random() < 0.3:
                a, b = b, a
        elif len(gen) >= 2:
            a, b = rng.sample(gen, 2)
        else:
            break
        out.append(
            MixSpec(
                f"mix{i:04d}",
                a.path,
                b.path,
                rng.uniform(3.0, 12.0),
                join_captions(rng, a, b),
                rng.uniform(-26.0, -16.0),
            )
        )
    return out
