"""Musical instruments: seeded MIDI phrases rendered by fluidsynth with the General MIDI soundfont.

Each clip is one instrument (or a drum kit, or a small band) playing one pattern: a single
note, a melody, chords, an arpeggio or a scale, at a random tempo and key. Captions name the
instrument and the pattern ("a violin playing a melody", "solo violin", "violin music").
Needs `fluidsynth` and `fluid-soundfont-gm` (Debian); see `SOUNDFONTS`.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trainer.data_prep.common import (
    SAMPLE_RATE,
    ToolMissing,
    fit_length,
    read_mono,
    require_tools,
    run_tool,
    set_level,
    write_clip,
)
from trainer.data_prep.midi import DRUM_CHANNEL, Note, write_midi

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")

# (GM program, name, lowest, highest MIDI pitch, polyphonic)
INSTRUMENTS: tuple[tuple[int, str, int, int, bool], ...] = (
    (0, "piano", 48, 84, True),
    (4, "electric piano", 48, 79, True),
    (6, "harpsichord", 48, 79, True),
    (9, "glockenspiel", 72, 96, False),
    (10, "music box", 67, 91, False),
    (11, "vibraphone", 55, 84, True),
    (12, "marimba", 48, 79, False),
    (13, "xylophone", 65, 93, False),
    (14, "tubular bells", 60, 77, False),
    (19, "church organ", 36, 79, True),
    (21, "accordion", 53, 81, True),
    (22, "harmonica", 60, 84, False),
    (24, "acoustic guitar", 40, 76, True),
    (27, "electric guitar", 40, 76, True),
    (30, "distorted electric guitar", 40, 72, True),
    (33, "bass guitar", 28, 52, False),
    (40, "violin", 55, 88, False),
    (42, "cello", 36, 69, False),
    (46, "harp", 36, 84, True),
    (47, "timpani", 36, 55, False),
    (48, "string orchestra", 43, 79, True),
    (52, "choir", 48, 76, True),
    (56, "trumpet", 55, 82, False),
    (57, "trombone", 40, 70, False),
    (58, "tuba", 28, 55, False),
    (60, "french horn", 41, 72, False),
    (65, "saxophone", 49, 80, False),
    (68, "oboe", 58, 88, False),
    (70, "bassoon", 34, 65, False),
    (71, "clarinet", 50, 86, False),
    (73, "flute", 60, 93, False),
    (75, "pan flute", 60, 88, False),
    (79, "ocarina", 60, 84, False),
    (80, "synthesizer lead", 48, 84, False),
    (105, "banjo", 48, 76, True),
    (109, "bagpipes", 55, 77, False),
    (114, "steel drums", 52, 76, False),
)
PATTERNS = ("note", "melody", "melody", "chords", "arpeggio", "scale")
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)

# GM drum keys
KICK, SNARE, HAT, OPEN_HAT, CRASH, RIDE, TOM_LO, TOM_HI, CLAP = 36, 38, 42, 46, 49, 51, 45, 50, 39


@dataclass(frozen=True)
class MusicSpec:
    key: str
    notes: tuple[Note, ...]
    programs: tuple[tuple[int, int], ...]  # (channel, program)
    bpm: float
    captions: tuple[str, ...]
    rms_db: float

    def render(self, out_path: Path) -> None:
        font = soundfont()
        with tempfile.TemporaryDirectory() as tmp:
            mid, wav = Path(tmp) / "x.mid", Path(tmp) / "x.wav"
            write_midi(mid, list(self.notes), dict(self.programs), self.bpm)
            run_tool(
                [
                    "fluidsynth",
                    "-ni",
                    "-q",
                    "-g",
                    "0.7",
                    "-r",
                    str(SAMPLE_RATE),
                    "-T",
                    "wav",
                    "-F",
                    str(wav),
                    font,
                    str(mid),
                ]
            )
            y = read_mono(wav)
        write_clip(out_path, set_level(fit_length(y), self.rms_db))


def soundfont() -> str:
    for path in SOUNDFONTS:
        if Path(path).is_file():
            return path
    raise ToolMissing("no General MIDI soundfont (apt-get install -y fluid-soundfont-gm)")


def check() -> None:
    require_tools("fluidsynth")
    soundfont()


def _scale_pitches(rng: random.Random, lo: int, hi: int) -> list[int]:
    root = rng.randrange(lo, max(lo + 1, hi - 12))
    steps = rng.choice((MAJOR, MINOR))
    return [root + 12 * o + s for o in range(3) for s in steps if root + 12 * o + s <= hi]


def _pattern(rng: random.Random, kind: str, lo: int, hi: int, ch: int) -> list[Note]:
    pitches = _scale_pitches(rng, lo, hi)
    vel = rng.randint(70, 110)
    if kind == "note":
        return [Note(0, 8, rng.choice(pitches), vel, ch)]
    if kind == "scale":
        step = rng.choice((0.25, 0.5))
        run = pitches[:16] if rng.random() < 0.5 else pitches[:16][::-1]
        return [Note(i * step, step, p, vel, ch) for i, p in enumerate(run)]
    if kind == "chords":
        out = []
        for bar in range(4):
            base = rng.randrange(0, max(1, len(pitches) - 5))
            for k in (0, 2, 4):
                out.append(Note(bar * 2, 2, pitches[base + k], vel, ch))
        return out
    if kind == "arpeggio":
        base = rng.randrange(0, max(1, len(pitches) - 7))
        chord = [pitches[base + k] for k in (0, 2, 4, 7) if base + k < len(pitches)]
        seq = (chord + chord[-2:0:-1]) * 4
        return [Note(i * 0.25, 0.3, p, vel, ch) for i, p in enumerate(seq[:20])]
    # melody: a random walk on the scale with varied note lengths
    out, t, i = [], 0.0, rng.randrange(len(pitches))
    while t < 10:
        d = rng.choice((0.25, 0.5, 0.5, 1.0))
        i = min(max(i + rng.choice((-2, -1, -1, 1, 1, 2)), 0), len(pitches) - 1)
        out.append(Note(t, d * 0.95, pitches[i], vel + rng.randint(-10, 10), ch))
        t += d
    return out


def _captions(name: str, kind: str, fast: bool) -> tuple[str, ...]:
    a = "an" if name[0] in "aeiou" else "a"
    by_kind = {
        "note": (
            f"a single {name} note",
            f"{a} {name} note ringing",
            f"one note played on {a} {name}",
        ),
        "melody": (f"{a} {name} playing a melody", f"solo {name} music", f"{name} music"),
        "chords": (f"{a} {name} playing chords", f"{name} chords", f"{name} music"),
        "arpeggio": (f"{a} {name} playing an arpeggio", f"{name} arpeggios", f"{name} music"),
        "scale": (
            f"{a} {name} playing a scale",
            f"{name} scale going up and down",
            f"{name} notes",
        ),
    }
    caps = by_kind[kind]
    if fast and kind in ("melody", "scale", "arpeggio"):
        caps = caps + (f"fast {name} music",)
    return caps + (f"the sound of {a} {name}",)


def _drums(rng: random.Random) -> tuple[list[Note], tuple[str, ...]]:
    style = rng.choice(("rock", "rock", "fast", "roll", "cymbals", "toms", "claps"))
    ch, notes = DRUM_CHANNEL, []
    if style in ("rock", "fast"):
        step = 0.5 if style == "rock" else 0.25
        for i in range(int(12 / step)):
            t = i * step
            notes.append(Note(t, step, HAT, rng.randint(60, 90), ch))
            if i % 4 == 0:
                notes.append(Note(t, step, KICK, 110, ch))
            if i % 4 == 2:
                notes.append(Note(t, step, SNARE, 105, ch))
        caps = ("a drum kit playing a beat", "drums", "a drummer playing a rock beat")
        if style == "fast":
            caps = ("fast drumming", "a drum kit playing a fast beat", "drums")
    elif style == "roll":
        notes = [Note(i * 0.125, 0.1, SNARE, 50 + min(70, i), ch) for i in range(64)]
        caps = ("a snare drum roll", "a drum roll", "drums")
    elif style == "cymbals":
        notes = [Note(i * 2, 2, rng.choice((CRASH, RIDE)), 100, ch) for i in range(5)]
        caps = ("cymbals crashing", "a cymbal crash", "drum cymbals")
    elif style == "toms":
        notes = [Note(i * 0.25, 0.25, rng.choice((TOM_LO, TOM_HI)), 100, ch) for i in range(40)]
        caps = ("tom drums being played", "drums", "percussion")
    else:
        notes = [Note(i * 0.5, 0.5, CLAP, 100, ch) for i in range(20)]
        caps = ("rhythmic hand claps from a drum machine", "a drum machine", "percussion")
    return notes, caps


def specs(seed: int, count: int) -> list[MusicSpec]:
    """`count` music clips: ~80% single instruments (cycling through `INSTRUMENTS`), then drum
    kits and small bands (drums + bass + a chord instrument)."""
    rng = random.Random(f"music:{seed}")
    out, solo = [], 0
    for i in range(count):
        bpm = rng.choice((80, 100, 120, 140, 170))
        roll = i % 10
        if roll < 8:
            program, name, lo, hi, poly = INSTRUMENTS[solo % len(INSTRUMENTS)]
            solo += 1
            kind = rng.choice([p for p in PATTERNS if poly or p != "chords"])
            notes = _pattern(rng, kind, lo, hi, 0)
            programs, caps = ((0, program),), _captions(name, kind, bpm >= 140)
        elif roll == 8:
            notes, caps = _drums(rng)
            programs = ()
        else:
            drums, _ = _drums(random.Random(rng.random()))
            program, name, lo, hi, _ = rng.choice([x for x in INSTRUMENTS if x[4]])
            notes = drums + _pattern(rng, "chords", lo, hi, 0) + _pattern(rng, "melody", 28, 52, 1)
            programs = ((0, program), (1, 33))
            caps = (
                f"a band playing music with drums, bass and {name}",
                "pop music",
                "a band playing a song",
                f"drums, bass guitar and {name}",
            )
        out.append(
            MusicSpec(f"music{i:04d}", tuple(notes), programs, bpm, caps, rng.uniform(-24.0, -16.0))
        )
    return out
