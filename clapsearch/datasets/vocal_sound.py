"""VocalSound (Gong et al., ICASSP 2022; github.com/YuanGongND/vocalsound): 21,024 recordings
of laughter, sighs, coughs, throat clearing, sneezes and sniffs by 3,365 speakers.

    ROOT/audio_16k/<speaker>_<n>_<label>.wav   (or audio_44k/; e.g. f0003_0_cough.wav)
    ROOT/datafiles/tr.json, val.json, te.json  {"data": [{"wav": ".../f0003_0_cough.wav",
                                                "labels": "/m/vs_..."}, ...]}

The official speaker-disjoint split is the datafiles' (tr -> train, val, te -> test); a clip's
label is the last part of its file name (throatclearing -> "throat clearing" in the task
table). The clip is looked up by file name in audio_16k/ (first) or audio_44k/, since the
datafiles' paths are the authors' machine's.
"""

from __future__ import annotations

import json
from pathlib import Path

from clapsearch.datasets.base import no_split
from clapsearch.datasets.labelled import LabelledSet, first_dir, labelled_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

LABELS = ("laughter", "sigh", "cough", "throatclearing", "sneeze", "sniff")
DATAFILES = {"tr.json": "train", "val.json": "val", "te.json": "test"}


def read_datafile(path: Path) -> list[str]:
    """The clip file names a datafile lists."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        return [Path(str(entry["wav"])).name for entry in data]
    except (ValueError, KeyError, TypeError) as err:
        raise UsageError(f'{path} is not a VocalSound datafile ({{"data": [{{"wav"}}]}}).') from err


@register_layout("vocal_sound", "labelled", expects="audio_16k/, datafiles/{tr,val,te}.json")
def load_vocal_sound(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("VocalSound", split)
    audio = first_dir(root, ["audio_16k", "audio_44k"], "VocalSound audio")
    datafiles = first_dir(root, ["datafiles"], "VocalSound split lists")
    items = []
    for name, fold in DATAFILES.items():
        if not (datafiles / name).is_file():
            raise UsageError(f"no VocalSound {name} under {datafiles}.")
        for fname in read_datafile(datafiles / name):
            label = Path(fname).stem.split("_")[-1]
            if label not in LABELS:
                raise UsageError(
                    f"{datafiles / name} lists {fname}, whose label is not one of six."
                )
            items.append((audio / fname, [LABELS.index(label)], fold))
    return labelled_set("vocal_sound", LABELS, items, "splits")
