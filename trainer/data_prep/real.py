"""The real recordings: esc50-mini (label-derived captions) and clotho-mini (human captions).

Held-out splits are files in `splits/` committed to the repository, so the model card's test
numbers can be reproduced exactly: `esc50_test.txt` (101 clips, every class, whole source recordings: never trained on),
`esc50_val.txt` (56 clips, for the trainer's per-epoch validation) and `clotho_test.txt`
(2 clips, never trained on). `make_splits` computed them once; rerunning it gives the same lists
(a test checks this).
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from clapsearch.datasets import read_name_list
from clapsearch.datasets.base import label_words
from clapsearch.datasets.clotho import ClothoClip, read_clotho
from clapsearch.datasets.esc50 import Esc50Clip, holdout_parts, read_esc50
from clapsearch.prompts import fill
from trainer.data_prep.common import ClipRecord

SPLITS_DIR = Path(__file__).parent / "splits"

# Several phrasings per ESC-50 class: the first is the canonical short caption (used when
# mixtures join two captions); varied wording teaches the text side more than one template.
ESC50_PHRASES: dict[str, tuple[str, ...]] = {
    "dog": ("a dog barking", "a dog barks", "barking dog", "the sound of a dog"),
    "rooster": ("a rooster crowing", "a rooster crows in the morning", "a cock crowing"),
    "pig": ("a pig oinking", "pigs grunting", "a pig snorts and grunts"),
    "cow": ("a cow mooing", "cattle mooing", "a cow moos"),
    "frog": ("frogs croaking", "a frog croaks", "croaking frogs in a pond"),
    "cat": ("a cat meowing", "a cat meows", "a kitten mewing"),
    "hen": ("a hen clucking", "chickens clucking", "a chicken cackles"),
    "insects": ("insects buzzing", "flying insects buzz", "the buzz of a fly"),
    "sheep": ("sheep bleating", "a sheep baas", "a lamb bleats"),
    "crow": ("a crow cawing", "crows caw", "a crow calls"),
    "rain": ("rain falling", "heavy rain pouring down", "rain on the ground"),
    "sea_waves": ("sea waves crashing", "ocean waves on the shore", "waves breaking at the beach"),
    "crackling_fire": ("a fire crackling", "crackling fire", "wood burning in a fireplace"),
    "crickets": ("crickets chirping", "crickets chirp at night", "chirping crickets"),
    "chirping_birds": ("birds chirping", "birds singing", "birdsong in the trees"),
    "water_drops": ("water dripping", "drops of water falling", "a dripping tap"),
    "wind": ("wind blowing", "strong wind howling", "gusts of wind"),
    "pouring_water": ("water being poured", "pouring water into a glass", "liquid pouring"),
    "toilet_flush": ("a toilet flushing", "a flushing toilet", "toilet flush"),
    "thunderstorm": ("thunder rumbling", "a thunderstorm", "thunder during a storm"),
    "crying_baby": ("a baby crying", "an infant wailing", "a crying baby"),
    "sneezing": ("a person sneezing", "someone sneezes", "a loud sneeze"),
    "clapping": ("people clapping", "hands clapping", "applause"),
    "breathing": ("a person breathing", "heavy breathing", "someone breathes in and out"),
    "coughing": ("a person coughing", "someone coughs", "a dry cough"),
    "footsteps": ("footsteps", "someone walking", "footsteps on the floor"),
    "laughing": ("people laughing", "a person laughs", "laughter"),
    "brushing_teeth": (
        "brushing teeth",
        "a toothbrush scrubbing teeth",
        "someone brushes their teeth",
    ),
    "snoring": ("a person snoring", "someone snores while sleeping", "loud snoring"),
    "drinking_sipping": ("someone drinking", "sipping a drink", "a person gulps a drink"),
    "door_wood_knock": (
        "knocking on a door",
        "a knock on a wooden door",
        "someone knocks at the door",
    ),
    "mouse_click": ("a computer mouse clicking", "mouse clicks", "clicking a mouse button"),
    "keyboard_typing": (
        "typing on a keyboard",
        "keyboard typing",
        "someone types on a computer keyboard",
    ),
    "door_wood_creaks": ("a door creaking", "a creaky wooden door opening", "a squeaking door"),
    "can_opening": ("a can being opened", "opening a soda can", "a drink can pops open"),
    "washing_machine": (
        "a washing machine running",
        "a washing machine spinning",
        "laundry machine",
    ),
    "vacuum_cleaner": ("a vacuum cleaner running", "vacuuming the floor", "a vacuum cleaner"),
    "clock_alarm": ("an alarm clock ringing", "an alarm clock goes off", "a ringing alarm clock"),
    "clock_tick": ("a clock ticking", "ticking clock", "the tick tock of a clock"),
    "glass_breaking": ("glass breaking", "glass shattering", "a window smashes"),
    "helicopter": (
        "a helicopter flying",
        "helicopter rotor blades",
        "a helicopter passes overhead",
    ),
    "chainsaw": ("a chainsaw running", "a chainsaw cutting wood", "a revving chainsaw"),
    "siren": ("a siren wailing", "an emergency vehicle siren", "a police siren"),
    "car_horn": ("a car horn honking", "a car honks", "a vehicle horn beeping"),
    "engine": ("an engine running", "a motor engine idling", "an engine revving"),
    "train": ("a train passing", "a train on the railway tracks", "a passing train"),
    "church_bells": ("church bells ringing", "bells tolling", "a church bell rings"),
    "airplane": ("an airplane flying", "a jet plane flying overhead", "an aircraft passing"),
    "fireworks": ("fireworks exploding", "fireworks bangs", "firecrackers popping"),
    "hand_saw": ("a hand saw cutting wood", "sawing wood by hand", "a saw cutting"),
}

# The label itself through templates, as zero-shot prompts phrase it ("This is a sound of dog").
LABEL_TEMPLATES = ("the sound of {label}", "this is a sound of {label}", "{label}")


def esc50_captions(category: str) -> tuple[str, ...]:
    return ESC50_PHRASES[category] + tuple(fill(t, label_words(category)) for t in LABEL_TEMPLATES)


def esc50_clips(esc_dir: Path) -> list[Esc50Clip]:
    """The ESC-50 collection's clips (`clapsearch.datasets.esc50`), sorted by file name."""
    return sorted(read_esc50(esc_dir), key=lambda c: c.filename)


def clotho_clips(clotho_dir: Path) -> list[ClothoClip]:
    """The Clotho evaluation split's clips (`clapsearch.datasets.clotho`), sorted by name."""
    return sorted(read_clotho(clotho_dir, "evaluation"), key=lambda c: c.file_name)


def make_splits(
    esc_dir: Path, clotho_dir: Path, seed: int = 0, clotho_test: int = 2
) -> dict[str, list[str]]:
    """-> `{"esc50_test": [...], "esc50_val": [...], "clotho_test": [...]}` (file names,
    sorted): ESC-50 by the recording-level hold-out (`clapsearch.datasets.esc50.esc50_part`:
    the A/B/C takes of one recording are near-duplicates, so they stay on one side), Clotho
    by a seeded shuffle."""
    parts: dict[str, list[str]] = defaultdict(list)
    for name, part in holdout_parts(esc50_clips(esc_dir)).items():
        parts[part].append(name)
    clotho = [c.file_name for c in clotho_clips(clotho_dir)]
    random.Random(seed).shuffle(clotho)
    return {
        "esc50_test": sorted(parts["test"]),
        "esc50_val": sorted(parts["val"]),
        "clotho_test": sorted(clotho[:clotho_test]),
    }


def load_split(name: str, folder: Path = SPLITS_DIR) -> set[str]:
    return read_name_list(folder / f"{name}.txt")


def esc50_records(esc_dir: Path, splits_dir: Path = SPLITS_DIR) -> list[ClipRecord]:
    test, val = load_split("esc50_test", splits_dir), load_split("esc50_val", splits_dir)
    records = []
    for clip in esc50_clips(esc_dir):
        name = clip.filename
        split = "test" if name in test else "val" if name in val else "train"
        records.append(
            ClipRecord(
                path=str(clip.path.resolve()),
                captions=esc50_captions(clip.category),
                source="esc50",
                split=split,
                meta={"category": clip.category, "esc10": clip.esc10},
            )
        )
    return records


def clotho_records(clotho_dir: Path, splits_dir: Path = SPLITS_DIR) -> list[ClipRecord]:
    test = load_split("clotho_test", splits_dir)
    return [
        ClipRecord(
            path=str(clip.path.resolve()),
            captions=clip.captions,
            source="clotho",
            split="test" if clip.file_name in test else "train",
        )
        for clip in clotho_clips(clotho_dir)
    ]
