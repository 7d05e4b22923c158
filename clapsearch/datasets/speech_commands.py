"""Speech Commands V2 (Warden 2018): one-second utterances of 35 words by 2,618 speakers, in
the 12-class keyword-spotting protocol: the 10 command words, "_unknown_" (the other 25 words)
and "_silence_".

    ROOT/<word>/<speaker hash>_nohash_<n>.wav     speech_commands_v0.02.tar.gz
    ROOT/validation_list.txt, ROOT/testing_list.txt   paths relative to ROOT, one a line
    ROOT/_background_noise_/*.wav                     long noise recordings
    ROOT/speech_commands_test_set_v0.02/<class>/*.wav   (or ROOT/test/) the official test set:
        the 10 words, _unknown_ and _silence_ folders (speech_commands_test_set_v0.02.tar.gz)

Splits as tensorflow-datasets' speech_commands builds them (and HEAR's speech_commands.py):
val = validation_list.txt, train = every other word clip not in either list; silence = 1 s
slices of the background noise recordings every 0.5 s, running_tap's to val and the rest to
train (segments of the files: nothing is written); test = the test-set archive. Without that
archive, test = testing_list.txt, which has no silence clips (a note says so). Reading a
background file's length opens its header only.
"""

from __future__ import annotations

from pathlib import Path

from clapsearch.datasets.base import no_split
from clapsearch.datasets.labelled import (
    AUDIO_EXTENSIONS,
    LabelledClip,
    LabelledSet,
    labelled_set,
)
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
CLASSES = (*WORDS, UNKNOWN, SILENCE)
NOISE = "_background_noise_"
TEST_SETS = ("speech_commands_test_set_v0.02", "test")
VAL_NOISE = "running_tap"  # tfds: these slices are the validation silence


def _label(folder: str) -> int:
    if folder in WORDS:
        return WORDS.index(folder)
    return CLASSES.index(SILENCE) if folder == SILENCE else CLASSES.index(UNKNOWN)


def _read_list(path: Path) -> set[str]:
    if not path.is_file():
        raise UsageError(f"no Speech Commands {path.name} under {path.parent}.")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _silence(root: Path) -> list[LabelledClip]:
    import soundfile as sf  # here, not at import: the CLI lists layouts without numpy

    clips = []
    folder = root / NOISE
    for path in sorted(folder.glob("*.wav")) if folder.is_dir() else []:
        try:
            info = sf.info(str(path))
        except RuntimeError:
            continue  # an unreadable noise file: no silence from it (the decoder would say why)
        sr, frames = info.samplerate, info.frames
        fold = "val" if path.stem.startswith(VAL_NOISE) else "train"
        for start in range(0, frames - sr, sr // 2):
            clips.append(LabelledClip(str(path), (CLASSES.index(SILENCE),), fold, start / sr, 1.0))
    return clips


@register_layout(
    "speech_commands",
    "labelled",
    expects="<word>/*.wav, validation_list.txt, testing_list.txt, speech_commands_test_set_v0.02/",
)
def load_speech_commands(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("Speech Commands", split)
    val, test_list = _read_list(root / "validation_list.txt"), _read_list(root / "testing_list.txt")
    items: list = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.startswith("_") or folder.name in TEST_SETS:
            continue
        for path in sorted(folder.glob("*.wav")):
            rel = f"{folder.name}/{path.name}"
            fold = "val" if rel in val else "test" if rel in test_list else "train"
            items.append((path, [_label(folder.name)], fold))
    notes = []
    test_root = next((root / t for t in TEST_SETS if (root / t).is_dir()), None)
    if test_root is not None:
        items = [it for it in items if it[2] != "test"]
        for folder in sorted(p for p in test_root.iterdir() if p.is_dir()):
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in AUDIO_EXTENSIONS:
                    items.append((path, [_label(folder.name)], "test"))
    else:
        notes.append(
            "no speech_commands_test_set_v0.02/ (or test/): test = testing_list.txt, which has "
            "no silence clips."
        )
    silence = _silence(root)
    if not silence:
        notes.append(f"no {NOISE}/ recordings: no silence clips in train or val.")
    return labelled_set("speech_commands", CLASSES, [*items, *silence], "splits", notes=notes)
