"""Tiny data sets in each official layout of the benchmark suite, for reader and suite tests.

Every builder writes a handful of short synthetic clips (a class-specific tone in noise, so a
probe can learn the classes and no two files share content) plus the data set's real metadata
conventions, under `root/<task folder>` as `clapsearch eval suite --root` expects, and returns
what a correct reader must find: `{absolute path: (label names, fold)}` and the paths the
metadata lists but that are deliberately absent (`missing`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16_000


@dataclass
class Expected:
    clips: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    segments: int = 0  # clips that are segments of a longer file (Speech Commands' silence)

    def add(self, path: Path, labels, fold) -> None:
        labels = (labels,) if isinstance(labels, str) else tuple(labels)
        self.clips[str(path)] = (labels, str(fold))


class Writer:
    """Distinct clips: class `k` is a tone at 300 * 1.25**k Hz in seeded noise."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def wav(self, path: Path, k: int = 0, seconds: float = 0.4, fmt: str | None = None) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * SR)) / SR
        tone = 0.3 * np.sin(2 * np.pi * 300 * 1.25**k * t)
        wave = (tone + 0.05 * self.rng.standard_normal(t.size)).astype(np.float32)
        sf.write(str(path), wave, SR, format=fmt)
        return path


def _lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


# --- the two layouts clapsearch read before the suite ---------------------------------------
def make_esc50(root: Path, w: Writer) -> Expected:
    """meta/esc50.csv + audio/: 3 classes x 5 folds."""
    base, exp = root / "esc50", Expected()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for target, cat in ((0, "dog"), (10, "rain"), (20, "crying_baby")):
        for fold in range(1, 6):
            name = f"{fold}-{1000 + target * 10 + fold}-A-{target}.wav"
            rows.append(f"{name},{fold},{target},{cat},False,{1000 + target},A")
            exp.add(w.wav(base / "audio" / name, target // 10), cat.replace("_", " "), fold)
    _lines(base / "meta" / "esc50.csv", rows)
    return exp


def make_urbansound8k(root: Path, w: Writer) -> Expected:
    """metadata/UrbanSound8K.csv + audio/fold<k>/: 2 classes x 10 folds, one clip missing."""
    base, exp = root / "urbansound8k", Expected()
    rows = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for cid, cls in ((1, "car_horn"), (3, "dog_bark")):
        for fold in range(1, 11):
            name = f"{100 + fold}-{cid}-0-0.wav"
            rows.append(f"{name},{100 + fold},0,0.4,1,{fold},{cid},{cls}")
            path = base / "audio" / f"fold{fold}" / name
            if cid == 3 and fold == 10:
                exp.missing.add(str(path))
                continue
            exp.add(w.wav(path, cid), cls.replace("_", " "), fold)
    _lines(base / "metadata" / "UrbanSound8K.csv", rows)
    return exp


# --- multi-label sound events ---------------------------------------------------------------
FSD_VOCAB = ["Bark", "Dog", "Rain", "Electric_guitar"]


def make_fsd50k(root: Path, w: Writer) -> Expected:
    """FSD50K.ground_truth/{vocabulary,dev,eval}.csv + dev/eval audio folders."""
    base, exp = root / "fsd50k", Expected()
    _lines(
        base / "FSD50K.ground_truth" / "vocabulary.csv",
        [f"{i},{v},/m/{i:05d}" for i, v in enumerate(FSD_VOCAB)],
    )
    dev = ["fname,labels,mids,split"]
    spec = [([0, 1], "train"), ([2], "train"), ([3], "train"), ([0, 1], "train"), ([2], "train"),
            ([3], "train"), ([2, 3], "train"), ([0, 1], "val"), ([2], "val"), ([3], "val")]  # fmt: skip
    for n, (labels, split) in enumerate(spec):
        fname = 60000 + n
        names = [FSD_VOCAB[i] for i in labels]
        mids = ",".join(f"/m/{i:05d}" for i in labels)
        dev.append(f'{fname},"{",".join(names)}","{mids}",{split}')
        exp.add(
            w.wav(base / "FSD50K.dev_audio" / f"{fname}.wav", labels[0]), names_words(names), split
        )
    ev = ["fname,labels,mids"]
    for n, labels in enumerate([[0, 1], [2], [3], [2, 3], [0]]):
        fname = 70000 + n
        names = [FSD_VOCAB[i] for i in labels]
        ev.append(f'{fname},"{",".join(names)}","/m/x"')
        path = base / "FSD50K.eval_audio" / f"{fname}.wav"
        if n == 4:
            exp.missing.add(str(path))
            continue
        exp.add(w.wav(path, labels[0]), names_words(names), "test")
    _lines(base / "FSD50K.ground_truth" / "dev.csv", dev)
    _lines(base / "FSD50K.ground_truth" / "eval.csv", ev)
    return exp


def names_words(names) -> tuple[str, ...]:
    return tuple(sorted((n.replace("_", " ") for n in names), key=str))


DCASE_USED = ["Train horn", "Car alarm", "Ambulance (siren)", "Car"]


def make_dcase2017_task4(root: Path, w: Writer) -> Expected:
    """groundtruth_weak_label_{training,testing}_set.csv in the root, the evaluation set in
    groundtruth_release/ (as in the task's repository); audio with the downloader's Y prefix."""
    base, exp = root / "dcase2017_task4", Expected()
    files = {
        "train": base / "groundtruth_weak_label_training_set.csv",
        "val": base / "groundtruth_weak_label_testing_set.csv",
        "test": base / "groundtruth_release" / "groundtruth_weak_label_evaluation_set.csv",
    }
    n = 0
    for split, csv_path in files.items():
        lines = []
        for k in range(6 if split == "train" else 4):
            labels = [DCASE_USED[k % 4]] + ([DCASE_USED[(k + 1) % 4]] if k % 3 == 0 else [])
            name = f"{'abcdefghij'[n % 10]}Q{n:09d}"[:11] + f"_{10 * k}.000_{10 * k + 10}.000.wav"
            n += 1
            for label in labels:  # one line per label of the clip
                lines.append(f"{name}\t{10 * k}.000\t{10 * k + 10}.000\t{label}")
            sub = f"{split}_set_audio_formatted_and_segmented_downloads"
            path = base / "audio" / sub / ("Y" + name)
            if split == "test" and k == 3:
                exp.missing.add(str(base / name))
                continue
            exp.add(w.wav(path, DCASE_USED.index(labels[0])), sorted(labels), split)
        _lines(csv_path, lines)
    return exp


AS_CLASSES = [("/m/09x0r", "Speech"), ("/m/04rlf", "Music"), ("/m/0jbk", "Animal"),
              ("/m/06mb1", "Rain")]  # fmt: skip


def make_audioset(root: Path, w: Writer) -> Expected:
    """Segment CSVs with their # header lines, class_labels_indices.csv, downloaded audio under
    two naming conventions; one eval video not downloaded, unbalanced videos partly present."""
    base, exp = root / "audioset", Expected()
    _lines(
        base / "class_labels_indices.csv",
        ["index,mid,display_name"] + [f'{i},{m},"{d}"' for i, (m, d) in enumerate(AS_CLASSES)],
    )
    header = ["# Segments csv created Sun Mar  5 10:54:31 2017",
              "# num_ytids=4, num_segs=4, num_unique_labels=4, num_positive_labels=5",
              "# YTID, start_seconds, end_seconds, positive_labels"]  # fmt: skip
    n = 0
    for csv_name, split, count in (("eval_segments.csv", "test", 5),
                                   ("balanced_train_segments.csv", "train", 8),
                                   ("unbalanced_train_segments.csv", "train", 4)):  # fmt: skip
        lines = list(header)
        for k in range(count):
            ytid = f"-{'xyzXYZ'[n % 6]}{n:09d}"  # 11 characters, may start with "-"
            n += 1
            labels = [k % 4] + ([(k + 1) % 4] if k % 2 else [])
            mids = ",".join(AS_CLASSES[i][0] for i in labels)
            lines.append(f'{ytid}, {10.0 * k:.3f}, {10.0 * k + 10:.3f}, "{mids}"')
            if csv_name == "eval_segments.csv" and k == 4:
                exp.missing.add(str(base / f"{ytid}.wav"))
                continue
            if csv_name.startswith("unbalanced") and k >= 2:
                continue  # not downloaded: unbalanced absences are not reported
            name = f"Y{ytid}_{10.0 * k:.3f}_{10.0 * k + 10:.3f}.wav" if k % 2 else f"{ytid}.flac"
            path = w.wav(base / "audio" / split / name, labels[0])
            exp.add(path, sorted(AS_CLASSES[i][1] for i in labels), split)
        _lines(base / csv_name, lines)
    return exp


# --- music, instruments ---------------------------------------------------------------------
def make_gtzan_music_speech(root: Path, w: Writer) -> Expected:
    base, exp = root / "gtzan_music_speech", Expected()
    for k, (folder, label) in enumerate((("music_wav", "music"), ("speech_wav", "speech"))):
        for i in range(10):
            path = w.wav(base / "music_speech" / folder / f"{label}{i}.wav", 3 * k)
            exp.add(path, label, "?")
    return exp


GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae",
          "rock")  # fmt: skip


def make_gtzan_genres(root: Path, w: Writer) -> Expected:
    """genres/<genre>/<genre>.000NN.au (the original tarball's Sun .au files)."""
    base, exp = root / "gtzan_genres", Expected()
    for k, genre in enumerate(GENRES):
        for i in range(2):
            path = w.wav(base / "genres" / genre / f"{genre}.{i:05d}.au", k, fmt="AU")
            exp.add(path, "hip hop" if genre == "hiphop" else genre, "?")
    return exp


def make_mridangam(root: Path, w: Writer) -> tuple[Expected, Expected]:
    """mridangam_stroke_1.5/<TONIC>/<id>__akshaylaya__<stroke>-<tonic>-<n>.wav -> (by stroke,
    by tonic)."""
    base = root / "mridangam" / "mridangam_stroke_1.5"
    strokes, tonics = Expected(), Expected()
    n = 224030
    for folder, tonic in (("B", "b"), ("C#", "csh")):
        for k, stroke in enumerate(("bheem", "cha", "thom")):
            for i in range(2):
                path = w.wav(base / folder / f"{n}__akshaylaya__{stroke}-{tonic}-{i:03d}.wav", k)
                n += 1
                strokes.add(path, stroke, "?")
                tonics.add(path, {"b": "B", "csh": "C sharp"}[tonic], "?")
    (base / "B" / "README.txt").write_text("not audio")
    w.wav(base / "B" / "stray.wav")  # an audio file not named by the convention: ignored
    return strokes, tonics


BEIJING = {"bangu": "bangu clapper drum", "daluo": "daluo large gong", "naobo": "naobo cymbals",
           "xiaoluo": "xiaoluo small gong"}  # fmt: skip


def make_beijing_opera(root: Path, w: Writer) -> Expected:
    base, exp = root / "beijing_opera" / "beijing_opera_percussion_instrument_1.0", Expected()
    for k, inst in enumerate(("bangu", "daluo", "naobo", "xiaoluo")):
        for i in range(3):
            # Both conventions: folders named after the instrument, and HEAR's file names.
            path = (
                base / inst / f"{i}.wav" if i < 2 else base / f"{100 + k}__jingju__{inst}-{i}.wav"
            )
            exp.add(w.wav(path, k), BEIJING[inst], "?")
    return exp


# --- scenes, emotion, speech ----------------------------------------------------------------
def make_tut2017(root: Path, w: Writer) -> Expected:
    base, exp = root / "tut2017" / "TUT-acoustic-scenes-2017-development", Expected()
    meta, folds = [], {k: [] for k in range(1, 5)}
    for k, scene in enumerate(("beach", "cafe/restaurant", "city_center")):
        for fold in range(1, 5):
            rel = f"audio/{'bcd'[k]}{fold:03d}_0_10.wav"
            meta.append(f"{rel}\t{scene}\t{'bcd'[k]}{fold:03d}")
            folds[fold].append(f"{rel}\t{scene}")
            text = {"cafe/restaurant": "cafe or restaurant"}.get(scene, scene.replace("_", " "))
            exp.add(w.wav(base / rel, k), text, fold)
    _lines(base / "meta.txt", meta)
    for fold, lines in folds.items():
        _lines(base / "evaluation_setup" / f"fold{fold}_evaluate.txt", lines)
        train = [x for f, ls in folds.items() if f != fold for x in ls]
        _lines(base / "evaluation_setup" / f"fold{fold}_train.txt", train)
        _lines(
            base / "evaluation_setup" / f"fold{fold}_test.txt", [x.split("\t")[0] for x in lines]
        )
    return exp


def make_crema_d(root: Path, w: Writer) -> Expected:
    base, exp = root / "crema_d" / "AudioWAV", Expected()
    for actor in range(1001, 1007):
        for k, (emo, sentence) in enumerate((("ANG", "DFA"), ("SAD", "IEO"), ("NEU", "TIE"))):
            path = w.wav(base / f"{actor}_{sentence}_{emo}_XX.wav", k)
            exp.add(path, {"ANG": "anger", "SAD": "sad", "NEU": "neutral"}[emo], f"actor{actor}")
    return exp


def make_ravdess(root: Path, w: Writer) -> Expected:
    base, exp = root / "ravdess", Expected()
    for actor in range(1, 7):
        for channel, emo in (("01", 1), ("01", 5), ("02", 3)):  # speech neutral/angry, song happy
            folder = "Audio_Speech_Actors_01-24" if channel == "01" else "Audio_Song_Actors_01-24"
            name = f"03-{channel}-{emo:02d}-01-01-01-{actor:02d}.wav"
            path = w.wav(base / folder / f"Actor_{actor:02d}" / name, emo)
            exp.add(path, ["neutral", "calm", "happy", "sad", "angry"][emo - 1], f"actor{actor}")
        w.wav(
            base / "video" / f"Actor_{actor:02d}" / f"01-01-01-01-01-01-{actor:02d}.wav"
        )  # skipped
    return exp


def make_speech_commands(root: Path, w: Writer) -> Expected:
    """speech_commands_v0.02 + its test-set archive in speech_commands_test_set_v0.02/."""
    base, exp = root / "speech_commands", Expected()
    val, test = [], []
    for k, word in enumerate(("yes", "no", "cat", "wow")):
        label = word if word in ("yes", "no") else "_unknown_"
        for i in range(4):
            rel = f"{word}/{k:04x}beef_nohash_{i}.wav"
            path = w.wav(base / rel, k, seconds=1.0)
            split = "val" if i == 1 else "test" if i == 2 else "train"
            (val if split == "val" else test if split == "test" else []).append(rel)
            if split != "test":
                exp.add(path, "unknown" if label == "_unknown_" else label, split)
    _lines(base / "validation_list.txt", val)
    _lines(base / "testing_list.txt", test)
    # 2.5 s and 2 s of noise: 1 s slices every 0.5 s -> 3 and 2 silence clips
    w.wav(base / "_background_noise_" / "white_noise.wav", 7, seconds=2.5)
    w.wav(base / "_background_noise_" / "running_tap.wav", 8, seconds=2.0)
    exp.segments = 5
    for k, folder in enumerate(("yes", "no", "_unknown_", "_silence_")):
        for i in range(2):
            path = w.wav(base / "speech_commands_test_set_v0.02" / folder / f"t{k}{i}.wav", k, 1.0)
            label = {"_unknown_": "unknown", "_silence_": "silence"}.get(folder, folder)
            exp.add(path, label, "test")
    return exp


VOCAL = ("laughter", "sigh", "cough", "throatclearing", "sneeze", "sniff")


def make_vocal_sound(root: Path, w: Writer) -> Expected:
    base, exp = root / "vocal_sound", Expected()
    splits = {"tr": [], "val": [], "te": []}
    for spk, part in ((3, "tr"), (4, "tr"), (7, "val"), (9, "te")):
        for k, label in enumerate(VOCAL):
            name = f"f{spk:04d}_0_{label}.wav"
            path = w.wav(base / "audio_16k" / name, k)
            splits[part].append(
                {"wav": f"/data/sls/vocalsound/audio_16k/{name}", "labels": "/m/vs"}
            )
            fold = {"tr": "train", "val": "val", "te": "test"}[part]
            exp.add(path, "throat clearing" if label == "throatclearing" else label, fold)
    for part, data in splits.items():
        (base / "datafiles").mkdir(parents=True, exist_ok=True)
        (base / "datafiles" / f"{part}.json").write_text(json.dumps({"data": data}))
    return exp


def make_libricount(root: Path, w: Writer) -> Expected:
    base, exp = root / "libricount" / "test", Expected()
    for count in range(4):
        for i in range(3):
            stem = f"{count}_{count}{i}a8c3"
            path = w.wav(base / f"{stem}.wav", count)
            (base / f"{stem}.json").write_text(json.dumps([{"sex": "F"}] * count))
            exp.add(path, f"{count} speakers" if count != 1 else "1 speaker", "?")
    return exp


def build_suite_root(root: Path) -> dict[str, Expected]:
    """All 16 tasks' data under `root` -> {task name: what its reader must find}."""
    w = Writer(0)
    strokes, tonics = make_mridangam(root, w)
    return {
        "esc50": make_esc50(root, w),
        "fsd50k": make_fsd50k(root, w),
        "urbansound8k": make_urbansound8k(root, w),
        "dcase2017_task4": make_dcase2017_task4(root, w),
        "audioset": make_audioset(root, w),
        "vocal_sound": make_vocal_sound(root, w),
        "tut2017": make_tut2017(root, w),
        "gtzan_music_speech": make_gtzan_music_speech(root, w),
        "gtzan_genres": make_gtzan_genres(root, w),
        "mridangam_stroke": strokes,
        "mridangam_tonic": tonics,
        "beijing_opera": make_beijing_opera(root, w),
        "crema_d": make_crema_d(root, w),
        "ravdess": make_ravdess(root, w),
        "speech_commands": make_speech_commands(root, w),
        "libricount": make_libricount(root, w),
    }
