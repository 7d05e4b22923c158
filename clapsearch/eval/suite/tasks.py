"""The 16 downstream tasks of the MS-CLAP paper (Elizalde et al., "CLAP: Learning Audio Concepts
from Natural Language Supervision", ICASSP 2023, arXiv:2206.04769), as one editable table.

Each `Task` says where its data sits under `clapsearch eval suite --root DIR` (`DIR/<folder>`,
or one of the dataset's official folder names in `aliases`), which reader lists it
(`clapsearch.datasets`, by layout name), how it is scored (metric, folds or splits), how its
labels become prompts, and the paper's zero-shot figure to print beside ours.

Prompts and label texts. The paper fills its class labels into one prompt, "This is a sound of
[label]" (`PAPER_PROMPT`); it does not list the label texts it used per task. Ours are the
datasets' own class names made readable (`clapsearch.datasets` turns ids like "crying_baby"
into words), and `labels` below overrides the ones that are codes or abbreviations (CREMA-D's
"ANG", Speech Commands' "_unknown_", Mridangam's tonic "csh", ...). Change a prompt or a label
text here, or per run with `--labels FILE.json` (`{"task": {"prompt": "...", "labels":
{"class": "text"}}}`); the JSON output records the prompt and texts used.

Protocols (the paper's Table 5 gives folds or train/val/test per task; where a dataset has no
official folds we assign them deterministically, see each reader): `folds` -> zero-shot is
scored on every clip (per-fold numbers in the JSON) and the probe is trained leave-one-fold-
out, its figure the mean over folds; `splits` -> zero-shot and the probe are scored on the
`test` split, the probe trains on `train` and picks its epoch on `val` when there is one.

`paper_zeroshot` is the paper's zero-shot figure for its model (CNN14 + BERT, 128k pairs):
accuracy, mAP or F1 as `metric` says. `files` is the paper's data set size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from clapsearch.errors import UsageError

PAPER_PROMPT = "This is a sound of {label}."


@dataclass(frozen=True)
class Task:
    name: str  # the CLI's --tasks id and the JSON key
    title: str  # the paper's column header
    domain: str  # one of the paper's 8 domains (our reading for Mridangam and Beijing Opera)
    folder: str  # DIR/<folder> holds the dataset
    layout: str  # reader in clapsearch.datasets
    n_classes: int
    metric: str  # accuracy | mAP | F1
    multilabel: bool
    protocol: str  # folds | splits
    files: str  # the paper's data set size, e.g. "2k"
    paper_zeroshot: float
    prompt: str = PAPER_PROMPT
    labels: Mapping[str, str] = field(default_factory=dict)  # class name -> label text
    layout_options: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # other folder names accepted under DIR
    f1_rule: str = "top1"  # zero-shot decision rule for F1 (metrics.decide)
    notes: str = ""

    def __post_init__(self) -> None:
        # Frozen means frozen: nobody mutates the shared table by accident.
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "layout_options", MappingProxyType(dict(self.layout_options)))

    @property
    def chance(self) -> float | None:
        """1/C for single-label accuracy; multi-label chance depends on the data (metrics)."""
        return 1.0 / self.n_classes if self.metric == "accuracy" else None

    def label_text(self, class_name: str) -> str:
        return self.labels.get(class_name, class_name)


SOUND_EVENTS = "Sound Event Classification"
VOCAL = "Vocal Sound Classification"
SCENES = "Acoustic Scene Classification"
MUSIC = "Music Classification"
INSTRUMENTS = "Instrument Classification"
EMOTION = "Speech Emotion Classification"
KEYWORDS = "Keyword Spotting"
COUNTING = "Speaker Counting"

_TONICS = {"b": "B", "c": "C", "csh": "C sharp", "d": "D", "dsh": "D sharp", "e": "E"}
_CREMA = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

TASKS: tuple[Task, ...] = (
    Task("esc50", "ESC50", SOUND_EVENTS, "esc50", "esc50", 50, "accuracy", False, "folds",
         "2k", 0.826, aliases=("ESC-50", "ESC-50-master"),
         notes="5 official folds"),
    Task("fsd50k", "FSD50K", SOUND_EVENTS, "fsd50k", "fsd50k", 200, "mAP", True, "splits",
         "51k", 0.3024, aliases=("FSD50K",),
         notes="train/val from dev.csv's split column, test = eval.csv"),
    Task("urbansound8k", "US8K", SOUND_EVENTS, "urbansound8k", "urbansound8k", 10, "accuracy",
         False, "folds", "8k", 0.7324, aliases=("UrbanSound8K",),
         notes="10 official folds"),
    Task("dcase2017_task4", "DCASE17 Task 4", SOUND_EVENTS, "dcase2017_task4",
         "dcase2017_task4", 17, "F1", True, "splits", "52k", 0.3,
         aliases=("DCASE2017_task4", "dcase2017-task4"),
         notes="training / testing (val) / evaluation (test) weak labels; micro F1"),
    Task("audioset", "AudioSet", SOUND_EVENTS, "audioset", "audioset", 527, "mAP", True,
         "splits", "2M", 0.058, aliases=("AudioSet",),
         notes="train = balanced (+ unbalanced) segments, test = eval segments"),
    Task("vocal_sound", "Vocal Sound", VOCAL, "vocal_sound", "vocal_sound", 6, "accuracy",
         False, "splits", "21k", 0.4945, aliases=("vocalsound", "VocalSound", "vs_release_16k"),
         labels={"throatclearing": "throat clearing"},
         notes="official speaker-disjoint tr/val/te"),
    Task("tut2017", "TUT 2017", SCENES, "tut2017", "tut2017", 15, "accuracy", False, "folds",
         "6.3k", 0.2963,
         aliases=("TUT-acoustic-scenes-2017-development",),
         labels={"cafe/restaurant": "cafe or restaurant"},
         notes="the development set's 4 official evaluation-setup folds"),
    Task("gtzan_music_speech", "GTZAN Music Speech", MUSIC, "gtzan_music_speech",
         "gtzan_music_speech", 2, "accuracy", False, "folds", "120", 1.0,
         aliases=("music_speech",), notes="10 folds, assigned per class by file hash"),
    Task("gtzan_genres", "GTZAN Genres", MUSIC, "gtzan_genres", "gtzan_genres", 10, "accuracy",
         False, "folds", "1k", 0.252, aliases=("genres", "genres_original", "GTZAN"),
         labels={"hiphop": "hip hop"}, notes="10 folds, assigned per class by file hash"),
    Task("mridangam_stroke", "Mridangam Stroke", MUSIC, "mridangam", "mridangam", 10,
         "accuracy", False, "folds", "7k", 0.3447,
         layout_options={"target": "stroke"}, aliases=("mridangam_stroke_1.5",),
         notes="5 folds, assigned per class by file hash"),
    Task("mridangam_tonic", "Mridangam Tonic", MUSIC, "mridangam", "mridangam", 6, "accuracy",
         False, "folds", "7k", 0.1965, labels=_TONICS, layout_options={"target": "tonic"},
         aliases=("mridangam_stroke_1.5",), notes="5 folds, assigned per class by file hash"),
    Task("beijing_opera", "Beijing Opera", INSTRUMENTS, "beijing_opera", "beijing_opera", 4,
         "accuracy", False, "folds", "236", 0.4746,
         aliases=("beijing_opera_percussion_instrument_1.0",),
         labels={
             "bangu": "bangu clapper drum",
             "daluo": "daluo large gong",
             "naobo": "naobo cymbals",
             "xiaoluo": "xiaoluo small gong",
         },
         notes="5 folds, assigned per class by file hash"),
    Task("crema_d", "CREMA-D", EMOTION, "crema_d", "crema_d", 6, "accuracy", False, "folds",
         "7k", 0.1784, labels=_CREMA, aliases=("CREMA-D", "AudioWAV"),
         notes="5 speaker-disjoint folds (actors by hash)"),
    Task("ravdess", "RAVDESS", EMOTION, "ravdess", "ravdess", 8, "accuracy", False, "folds",
         "2.5k", 0.1599, aliases=("RAVDESS",), notes="5 speaker-disjoint folds (actors by hash)"),
    Task("speech_commands", "Speech Commands", KEYWORDS, "speech_commands", "speech_commands",
         12, "accuracy", False, "splits", "100k", 0.1063,
         aliases=("speech_commands_v0.02",),
         labels={"_unknown_": "unknown", "_silence_": "silence"},
         notes="12 classes: 10 words + unknown + silence; official lists and test set"),
    Task("libricount", "LibriCount", COUNTING, "libricount", "libricount", 11, "accuracy",
         False, "folds", "5k", 0.1788, aliases=("LibriCount10-0dB", "LibriCount"),
         labels={str(n): f"{n} speakers" for n in range(11)} | {"1": "1 speaker"},
         notes="5 folds, assigned per class by file hash"),
)  # fmt: skip

TASK_NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)
_BY_NAME = {t.name: t for t in TASKS}


def get_task(name: str) -> Task:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UsageError(f"unknown task {name!r} (known: {', '.join(TASK_NAMES)}).") from None


def select_tasks(names: Sequence[str] | None) -> list[Task]:
    """Tasks by name, in table order; all of them for None or empty. Names may be given
    comma-separated ("esc50,fsd50k")."""
    wanted = [n.strip() for item in names or () for n in item.split(",") if n.strip()]
    for name in wanted:
        get_task(name)  # one sentence for an unknown name
    return [t for t in TASKS if not wanted or t.name in wanted]


def apply_overrides(tasks: Sequence[Task], path: str | Path) -> list[Task]:
    """Tasks with prompts and label texts replaced from a JSON file (module doc):
    `{"esc50": {"prompt": "the sound of {label}", "labels": {"dog": "a dog barking"}}}`."""
    from clapsearch.prompts import normalize_template

    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise UsageError(f"cannot read the labels file {path} ({err.strerror}).") from None
    except ValueError as err:
        raise UsageError(f"the labels file {path} is not valid JSON ({err}).") from None
    if not isinstance(spec, dict):
        raise UsageError(f"the labels file {path} must hold one object keyed by task name.")
    for name, entry in spec.items():
        get_task(name)
        if not isinstance(entry, dict) or set(entry) - {"prompt", "labels"}:
            raise UsageError(f'{path}: {name!r} must map to {{"prompt": ..., "labels": {{...}}}}.')
        if not isinstance(entry.get("labels", {}), dict):
            raise UsageError(f"{path}: {name!r} labels must be an object of class -> text.")
    out = []
    for task in tasks:
        entry = spec.get(task.name, {})
        prompt = normalize_template(entry["prompt"]) if "prompt" in entry else task.prompt
        labels = {**task.labels, **{str(k): str(v) for k, v in entry.get("labels", {}).items()}}
        out.append(replace(task, prompt=prompt, labels=labels))
    return out
