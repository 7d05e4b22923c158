"""The real recordings: esc50-mini (label-derived captions) and clotho-mini (human captions).

Held-out splits are files in `splits/` committed to the repository, so the model card's test
numbers can be reproduced exactly: `esc50_test.txt` (101 clips, every class, whole source recordings: never trained on),
`esc50_val.txt` (56 clips, for the trainer's per-epoch validation) and `clotho_test.txt`
(2 clips, never trained on). `make_splits` wrote them once; rerunning it rewrites the same
lists (a test checks this).
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections import defaultdict
from pathlib import Path

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
LABEL_TEMPLATES = ("the sound of {}", "this is a sound of {}", "{}")


def label_words(category: str) -> str:
    return category.replace("_", " ")


def esc50_captions(category: str) -> tuple[str, ...]:
    words = label_words(category)
    return ESC50_PHRASES[category] + tuple(t.format(words) for t in LABEL_TEMPLATES)


def read_esc50(esc_dir: Path) -> list[dict]:
    with open(esc_dir / "esc50.csv", newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: r["filename"])


def esc50_part(category: str, src_file: str, sources_of_class: list[str]) -> str:
    """Recording-level hold-out, the same rule as `trainer.data.esc50_part`: a class's source
    recordings ordered by a hash of their id; positions 0, 5, ... are `test`, 2, 7, ... `val`,
    the rest `train`. The A/B/C takes of one recording are near-duplicates, so they must stay
    on one side (a per-clip split would test on near-copies of training clips)."""
    order = sorted(
        sources_of_class, key=lambda s: hashlib.sha1(f"{category}/{s}".encode()).hexdigest()
    )
    return {0: "test", 2: "val"}.get(order.index(src_file) % 5, "train")


def make_splits(
    esc_dir: Path, clotho_dir: Path, seed: int = 0, clotho_test: int = 2
) -> dict[str, list[str]]:
    """-> `{"esc50_test": [...], "esc50_val": [...], "clotho_test": [...]}` (file names,
    sorted): ESC-50 by `esc50_part`, Clotho by a seeded shuffle."""
    rows = read_esc50(esc_dir)
    sources: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        sources[row["category"]].add(row["src_file"])
    parts: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        cat = row["category"]
        parts[esc50_part(cat, row["src_file"], sorted(sources[cat]))].append(row["filename"])
    clotho = sorted(r["file_name"] for r in read_clotho(clotho_dir))
    random.Random(seed).shuffle(clotho)
    return {
        "esc50_test": sorted(parts["test"]),
        "esc50_val": sorted(parts["val"]),
        "clotho_test": sorted(clotho[:clotho_test]),
    }


def write_splits(splits: dict[str, list[str]], folder: Path = SPLITS_DIR) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, files in splits.items():
        (folder / f"{name}.txt").write_text("".join(f + "\n" for f in files))


def load_split(name: str, folder: Path = SPLITS_DIR) -> set[str]:
    path = folder / f"{name}.txt"
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def esc50_records(esc_dir: Path, splits_dir: Path = SPLITS_DIR) -> list[ClipRecord]:
    test, val = load_split("esc50_test", splits_dir), load_split("esc50_val", splits_dir)
    records = []
    for row in read_esc50(esc_dir):
        name = row["filename"]
        split = "test" if name in test else "val" if name in val else "train"
        records.append(
            ClipRecord(
                path=str((esc_dir / "audio" / name).resolve()),
                captions=esc50_captions(row["category"]),
                source="esc50",
                split=split,
                meta={"category": row["category"], "esc10": row["esc10"] == "True"},
            )
        )
    return records


def read_clotho(clotho_dir: Path) -> list[dict]:
    with open(clotho_dir / "clotho_captions_evaluation.csv", newline="", encoding="utf-8") as f:
        return sorted(csv.DictReader(f), key=lambda r: r["file_name"])


def clotho_records(clotho_dir: Path, splits_dir: Path = SPLITS_DIR) -> list[ClipRecord]:
    test = load_split("clotho_test", splits_dir)
    records = []
    for row in read_clotho(clotho_dir):
        caps = tuple(row[f"caption_{i}"].strip() for i in range(1, 6) if row.get(f"caption_{i}"))
        records.append(
            ClipRecord(
                path=str((clotho_dir / "evaluation" / row["file_name"]).resolve()),
                captions=caps,
                source="clotho",
                split="test" if row["file_name"] in test else "train",
            )
        )
    return records
