"""Regenerate `clapsearch/assets/demo_sounds/`: the small folder `make demo` indexes.

    python -m trainer.data_prep.demo_sounds [--esc50-dir ../shared/data/esc50-mini]

Six generated sounds (espeak-ng, fluidsynth, sox) and six ESC-10 clips (CC BY 3.0 as a subset,
attributions in ATTRIBUTION.md), all six from the held-out test split, so the demo shows the
default model on recordings it never trained on. The folder is committed; this script is the
recipe, not a step of `make demo`.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from trainer.data_prep.common import fit_length, read_mono, set_level, write_clip
from trainer.data_prep.midi import Note
from trainer.data_prep.music import MusicSpec
from trainer.data_prep.real import load_split
from trainer.data_prep.signals import SignalSpec
from trainer.data_prep.speech import SpeechSpec, Utterance

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "clapsearch" / "assets" / "demo_sounds"

MELODY = (60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72)
GENERATED = {
    "hello.flac": SpeechSpec(
        "hello",
        (
            Utterance(
                "en",
                "m3",
                "Hello, and welcome to clap search. You can search your sounds by describing them.",
                160,
                50,
            ),
        ),
        ("a man speaking",),
        -20.0,
    ),
    "bonjour.flac": SpeechSpec(
        "bonjour",
        (Utterance("fr", "f2", "Bonjour a tous, merci d'etre venus aujourd'hui.", 150, 60),),
        ("a woman speaking French",),
        -20.0,
    ),
    "piano.flac": MusicSpec(
        "piano",
        tuple(Note(i * 0.5, 0.5, p, 90) for i, p in enumerate(MELODY)),
        ((0, 0),),
        140,
        ("a piano playing a melody",),
        -20.0,
    ),
    "violin.flac": MusicSpec(
        "violin",
        tuple(Note(i, 1.0, p, 90) for i, p in enumerate(MELODY[:8])),
        ((0, 40),),
        100,
        ("a violin playing a melody",),
        -20.0,
    ),
    "beep_440hz.flac": SignalSpec(
        "beep", ("synth", "5", "sine", "440"), 1, ("a pure sine tone",), -22.0
    ),
    "white_noise.flac": SignalSpec(
        "noise", ("synth", "5", "whitenoise"), 1, ("white noise",), -24.0
    ),
}
# demo file -> (ESC-50 file, freesound attribution from esc50-mini/LICENSE)
ESC10 = {
    "dog.flac": (
        "4-182395-A-0.flac",
        "Big_dog_bark_01.aiff by pgonsilva "
        "(http://www.freesound.org/people/pgonsilva/sounds/182395/) [CC-BY]",
    ),
    "rooster.flac": (
        "4-164859-A-1.flac",
        "rooster.wav by bob58 (http://www.freesound.org/people/bob58/sounds/164859/) [CC0]",
    ),
    "rain.flac": (
        "4-177250-A-10.flac",
        "Rain and Storm by josephsardin "
        "(http://www.freesound.org/people/josephsardin/sounds/177250/) [CC0]",
    ),
    "sea_waves.flac": (
        "4-167063-B-11.flac",
        "Close sea waves by slag777 "
        "(http://www.freesound.org/people/slag777/sounds/167063/) [CC-BY]",
    ),
    "crying_baby.flac": (
        "4-167077-A-20.flac",
        "JM_HUMAN_Baby 01c - Crying.wav by Julien Matthey "
        "(http://www.freesound.org/people/Julien%20Matthey/sounds/167077/) [CC0]",
    ),
    "helicopter.flac": (
        "4-161579-A-40.flac",
        "Helicopter Flyover by doctor567 "
        "(http://www.freesound.org/people/doctor567/sounds/161579/) [CC0]",
    ),
}

ATTRIBUTION = """# Demo sounds

The folder `make demo` (`python -m clapsearch.demo`) indexes. Regenerate it with
`python -m trainer.data_prep.demo_sounds` (needs espeak-ng, fluidsynth, fluid-soundfont-gm, sox).

## Generated here (no third-party rights)
{generated}

## From ESC-50 (ESC-10 subset, CC BY 3.0)
K. J. Piczak, "ESC: Dataset for Environmental Sound Classification", ACM Multimedia 2015,
https://github.com/karolpiczak/ESC-50 ; the ESC-10 subset is licensed under the Creative
Commons Attribution 3.0 Unported license (https://creativecommons.org/licenses/by/3.0/).
Clips resampled to 48 kHz; otherwise unchanged. These clips are in the default model's held-out
test split: it never trained on them.

{esc}
"""


def build(esc50_dir: Path, out: Path = OUT) -> list[Path]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    test = load_split("esc50_test")
    for name, spec in GENERATED.items():
        spec.render(out / name)
    for name, (src, _) in ESC10.items():
        assert src in test, f"{src} is not a held-out clip"
        y = read_mono(esc50_dir / "audio" / src)
        write_clip(out / name, set_level(fit_length(y, pad=False), -20.0, peak=0.99))
    generated = "\n".join(f"- `{n}`: {s.captions[0]}" for n, s in GENERATED.items())
    esc = "\n".join(
        f"- `{n}`: ESC-50 `{src}`, derived from {who}" for n, (src, who) in ESC10.items()
    )
    (out / "ATTRIBUTION.md").write_text(ATTRIBUTION.format(generated=generated, esc=esc))
    return sorted(out.glob("*.flac"))


def main() -> None:
    p = argparse.ArgumentParser(description="Regenerate clapsearch/assets/demo_sounds/.")
    p.add_argument("--esc50-dir", type=Path, default=REPO.parent / "shared/data/esc50-mini")
    for path in build(p.parse_args().esc50_dir):
        print(path)


if __name__ == "__main__":
    main()
