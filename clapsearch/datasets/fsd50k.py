"""FSD50K (Fonseca et al. 2022, Zenodo record 4060432): 51,197 Freesound clips, 200 classes
of the AudioSet ontology, multi-label.

    ROOT/FSD50K.ground_truth/   (the official archive's folder; `ground_truth/` also read)
        vocabulary.csv   no header: index, label, mid        -> class order
        dev.csv          fname, labels, mids, split           (split: train | val)
        eval.csv         fname, labels, mids
    ROOT/FSD50K.dev_audio/<fname>.wav
    ROOT/FSD50K.eval_audio/<fname>.wav

`labels` is a comma-separated list of vocabulary labels ("Electric_guitar,Guitar,..."). The
protocol is the dataset's: train and val from dev.csv's split column, test = eval (as HEAR's
hearpreprocess/fsd50k.py reads it).
"""

from __future__ import annotations

import csv
from pathlib import Path

from clapsearch.datasets.base import expect_one_of, label_words, no_split, read_csv
from clapsearch.datasets.labelled import LabelledSet, first_dir, labelled_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

GROUND_TRUTH = ("FSD50K.ground_truth", "ground_truth")


def read_vocabulary(path: Path) -> list[str]:
    """The 200 labels in index order ("Accelerating_and_revving_and_vroom", ...)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r]
    try:
        order = sorted((int(r[0]), r[1].strip()) for r in rows)
    except (ValueError, IndexError) as err:
        raise UsageError(f"{path} is not FSD50K's vocabulary (index,label,mid rows).") from err
    return [label for _, label in order]


@register_layout(
    "fsd50k",
    "labelled",
    expects="FSD50K.ground_truth/{vocabulary,dev,eval}.csv, FSD50K.dev_audio/, FSD50K.eval_audio/",
)
def load_fsd50k(root: str | Path, split: str | None = None) -> LabelledSet:
    root = Path(root)
    no_split("FSD50K", split)
    truth = first_dir(root, GROUND_TRUTH, "FSD50K ground truth")
    vocab = read_vocabulary(expect_one_of(truth, ["vocabulary.csv"], "FSD50K vocabulary"))
    index = {label: i for i, label in enumerate(vocab)}
    items = []
    for csv_name, audio_dir in (("dev.csv", "FSD50K.dev_audio"), ("eval.csv", "FSD50K.eval_audio")):
        meta = expect_one_of(truth, [csv_name], "FSD50K ground truth")
        for n, row in enumerate(read_csv(meta, ["fname", "labels"]), start=2):
            names = [x.strip() for x in row["labels"].split(",") if x.strip()]
            unknown = [x for x in names if x not in index]
            if unknown:
                raise UsageError(
                    f"{meta} row {n} has a label not in vocabulary.csv: {unknown[0]!r}."
                )
            fold = row.get("split", "") if csv_name == "dev.csv" else "test"
            if fold not in ("train", "val", "test"):
                raise UsageError(f"{meta} row {n} has split {fold!r} (expected train or val).")
            path = root / audio_dir / f"{row['fname']}.wav"
            items.append((path, [index[x] for x in names], fold))
    return labelled_set("fsd50k", [label_words(v) for v in vocab], items, "splits", multilabel=True)
