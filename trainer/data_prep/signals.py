"""Test-signal vocabulary from sox: tones, beeps, sweeps, coloured noise, waveforms, hum, clicks,
telephone tones and near-silence.

Noise clips are random segments of a long sox noise stream (sox `-R` makes the stream itself
repeatable) passed through seeded filters, so clips differ yet every run gives the same bytes.
Needs `sox` (Debian).
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trainer.data_prep.common import (
    CLIP_S,
    SAMPLE_RATE,
    fit_length,
    read_mono,
    require_tools,
    run_tool,
    set_level,
    write_clip,
)


@dataclass(frozen=True)
class SignalSpec:
    key: str
    effects: tuple[str, ...]  # sox arguments after `sox -R -n -r 48000 -c C out.wav`
    channels: int
    captions: tuple[str, ...]
    rms_db: float

    def render(self, out_path: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "x.wav"
            run_tool(
                [
                    "sox",
                    "-R",
                    "-n",
                    "-r",
                    str(SAMPLE_RATE),
                    "-c",
                    str(self.channels),
                    str(wav),
                    *self.effects,
                ]
            )
            y = read_mono(wav)
        write_clip(out_path, set_level(fit_length(y), self.rms_db))


def check() -> None:
    require_tools("sox")


def _pitch_words(f: float) -> tuple[str, str]:
    if f < 250:
        return "low", "a low-pitched hum"
    if f > 1500:
        return "high", "a high-pitched whine"
    return "medium", "a steady tone"


def _tone(rng):
    f = round(rng.choice((rng.uniform(60, 250), rng.uniform(250, 1500), rng.uniform(1500, 8000))))
    wave = rng.choice(("sine", "sine", "sine", "square", "sawtooth", "triangle"))
    height, phrase = _pitch_words(f)
    caps = {
        "sine": (
            f"a pure {height}-pitched sine tone",
            "a continuous beep tone",
            phrase,
            "a test tone",
        ),
        "square": (
            f"a buzzing {height}-pitched square wave",
            "a harsh electronic buzz",
            "a synthesizer tone",
        ),
        "sawtooth": (
            f"a {height}-pitched sawtooth wave",
            "a raspy buzzing synthesizer tone",
            "an electronic buzz",
        ),
        "triangle": (
            f"a soft {height}-pitched triangle wave tone",
            "a mellow electronic tone",
            phrase,
        ),
    }[wave]
    return ("synth", str(CLIP_S), wave, str(f)), 1, caps


def _beeps(rng):
    f = rng.choice((440, 800, 1000, 1500, 2000, 2500, 3000))
    on = rng.choice((0.05, 0.1, 0.2, 0.3))
    off = rng.choice((0.05, 0.1, 0.3, 0.7))
    n = int(CLIP_S / (on + off)) + 1
    effects = ("synth", str(on), "sine", str(f), "pad", "0", str(off), "repeat", str(n - 1))
    if on + off <= 0.2:
        caps = ("rapid electronic beeping", "a fast beeping alarm", "beep beep beep")
    else:
        caps = (
            "repeated beeping",
            "an electronic device beeping",
            "a beeping sound",
            "a series of short beeps",
        )
    return effects, 1, caps


def _sweep(rng):
    lo, hi = rng.choice(((100, 2000), (200, 8000), (50, 500), (500, 4000)))
    up = rng.random() < 0.5
    a, b = (lo, hi) if up else (hi, lo)
    repeat = rng.random() < 0.4
    if repeat:
        dur = rng.choice((0.25, 0.5, 1.0))
        effects = ("synth", str(dur), "sine", f"{a}:{b}", "repeat", str(int(CLIP_S / dur)))
        caps = (
            ("a repeating rising tone" if up else "a repeating falling tone"),
            "laser sound effects" if dur <= 0.25 else "a sweeping electronic sound",
            "a frequency sweep",
        )
    else:
        effects = ("synth", str(CLIP_S), "sine", f"{a}:{b}")
        caps = (
            (
                "a tone rising in pitch from low to high"
                if up
                else "a tone falling in pitch from high to low"
            ),
            ("a rising sine sweep" if up else "a falling sine sweep"),
            "a frequency sweep",
        )
    return effects, 1, caps


def _noise(rng):
    color = rng.choice(("whitenoise", "pinknoise", "brownnoise"))
    offset = round(rng.uniform(0, 55), 2)
    effects = ["synth", "61", color, "trim", str(offset), str(CLIP_S)]
    caps = {
        "whitenoise": ("white noise", "static hiss", "a loud hissing noise", "radio static"),
        "pinknoise": ("pink noise", "a steady rushing noise", "broadband noise"),
        "brownnoise": ("brown noise", "a deep rumbling noise", "low rumbling noise"),
    }[color]
    shape = rng.random()
    if shape < 0.25:
        f = rng.choice((300, 600, 1000))
        effects += ["lowpass", str(f)]
        caps = ("muffled low-pass filtered noise", "a dull rumble", caps[0])
    elif shape < 0.4:
        f = rng.choice((3000, 5000))
        effects += ["highpass", str(f)]
        caps = ("high-pass filtered hiss", "a thin hissing sound", "steam hissing")
    return tuple(effects), 1, caps


def _telephone(rng):
    kind = rng.choice(("dial", "busy", "ring"))
    if kind == "dial":
        return (
            ("synth", str(CLIP_S), "sine", "350", "sine", "440"),
            2,
            ("a telephone dial tone", "a phone line tone", "a steady telephone tone"),
        )
    if kind == "busy":
        return (
            ("synth", "0.5", "sine", "480", "sine", "620", "pad", "0", "0.5", "repeat", "4"),
            2,
            ("a telephone busy signal", "a busy tone on the phone line", "beeping phone tone"),
        )
    return (
        ("synth", "2", "sine", "440", "sine", "480", "pad", "0", "1", "repeat", "1"),
        2,
        ("a telephone ringing tone", "a phone ringback tone", "a phone ringing on the line"),
    )


def _hum(rng):
    f = rng.choice((50, 60, 100, 120))
    return (
        ("synth", str(CLIP_S), "sawtooth", str(f), "lowpass", "500"),
        1,
        ("an electrical hum", "mains hum from an amplifier", "a low buzzing hum"),
    )


def _clicks(rng):
    period = rng.choice((0.25, 0.5, 0.75, 1.0))
    n = int(CLIP_S / period)
    return (
        ("synth", "0.004", "square", "3000", "pad", "0", str(period - 0.004), "repeat", str(n - 1)),
        1,
        ("a metronome clicking", "regular clicks", "a steady clicking"),
    )


def _tremolo(rng):
    f = rng.choice((300, 500, 800, 1200))
    speed = rng.choice((3, 6, 10))
    return (
        ("synth", str(CLIP_S), "sine", str(f), "tremolo", str(speed), "90"),
        1,
        ("a pulsating tone", "a wobbling electronic tone", "a tone with tremolo"),
    )


def _silence(rng):
    offset = round(rng.uniform(0, 55), 2)
    return (
        ("synth", "61", "pinknoise", "trim", str(offset), str(CLIP_S)),
        1,
        ("silence", "near silence with a faint background hiss", "a very quiet room"),
    )


GENERATORS = (
    (_tone, 0.22),
    (_beeps, 0.13),
    (_sweep, 0.13),
    (_noise, 0.2),
    (_telephone, 0.07),
    (_hum, 0.06),
    (_clicks, 0.06),
    (_tremolo, 0.07),
    (_silence, 0.06),
)


def specs(seed: int, count: int) -> list[SignalSpec]:
    rng = random.Random(f"signals:{seed}")
    funcs, weights = zip(*GENERATORS, strict=True)
    out = []
    for i in range(count):
        make = rng.choices(funcs, weights)[0]
        effects, channels, caps = make(rng)
        level = rng.uniform(-70.0, -60.0) if make is _silence else rng.uniform(-28.0, -16.0)
        out.append(SignalSpec(f"signal{i:04d}", tuple(effects), channels, tuple(caps), level))
    return out
