"""Every reader of the benchmark suite on a tiny data set in its official layout
(`suite_fixtures`): the clips, labels, folds or splits and missing files it must find, and
one sentence when a data set is absent or incomplete."""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from suite_fixtures import build_suite_root

from clapsearch.datasets import load_dataset
from clapsearch.datasets.audioset import video_ids
from clapsearch.datasets.labelled import LabelledSet, assign_folds, from_classification
from clapsearch.errors import UsageError
from clapsearch.eval.suite.tasks import TASKS, get_task


@pytest.fixture(scope="module")
def suite_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    return root, build_suite_root(root)


def _load(task, root: Path) -> LabelledSet:
    data = load_dataset(task.layout, root / task.folder, **task.layout_options)
    return data if isinstance(data, LabelledSet) else from_classification(data)


def _found(task, data: LabelledSet) -> dict[str, tuple[tuple[str, ...], str]]:
    out = {}
    for clip in data.clips:
        if clip.duration_s is not None:
            continue  # segments are checked on their own
        names = tuple(sorted(task.label_text(data.class_names[i]) for i in clip.labels))
        out[clip.path] = (names, clip.fold)
    return out


@pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])
def test_reader_finds_every_clip_label_and_fold(suite_root, task):
    root, expected = suite_root
    exp = expected[task.name]
    data = _load(task, root)
    assert data.protocol == task.protocol and data.multilabel == task.multilabel
    assert {m.path for m in data.missing} == exp.missing
    found = _found(task, data)
    assert set(found) == set(exp.clips)
    for path, (labels, fold) in exp.clips.items():
        assert found[path][0] == labels, path
        if fold != "?" and not fold.startswith("actor"):
            assert found[path][1] == fold, path
    if task.protocol == "splits":
        assert set(data.folds) <= {"train", "val", "test"} and "test" in data.folds
    else:
        assert all(f.isdigit() for f in data.folds)


@pytest.mark.parametrize(
    "name, k",
    [
        ("gtzan_music_speech", 10),
        ("gtzan_genres", 10),
        ("mridangam_stroke", 5),
        ("beijing_opera", 5),
        ("libricount", 5),
    ],  # fmt: skip
)
def test_assigned_folds_are_stratified_and_balanced(suite_root, name, k):
    root, _ = suite_root
    task = get_task(name)
    data = _load(task, root)
    per_class = defaultdict(Counter)
    for clip in data.clips:
        per_class[clip.labels[0]][clip.fold] += 1
    for counts in per_class.values():  # each class dealt round-robin: sizes differ by <= 1
        sizes = [counts.get(str(f), 0) for f in range(1, k + 1)]
        assert max(sizes) - min(sizes) <= 1
    overall = Counter(c.fold for c in data.clips)  # the deal runs on across classes
    sizes = [overall.get(str(f), 0) for f in range(1, k + 1)]
    assert max(sizes) - min(sizes) <= 1
    again = _load(task, root)  # deterministic
    assert [c.fold for c in again.clips] == [c.fold for c in data.clips]


@pytest.mark.parametrize("name", ["crema_d", "ravdess"])
def test_emotion_folds_are_speaker_disjoint(suite_root, name):
    root, expected = suite_root
    task = get_task(name)
    data = _load(task, root)
    actor_of = {p: fold for p, (_, fold) in expected[name].clips.items()}
    folds_of_actor = defaultdict(set)
    for clip in data.clips:
        folds_of_actor[actor_of[clip.path]].add(clip.fold)
    assert all(len(f) == 1 for f in folds_of_actor.values())
    assert len({f for fs in folds_of_actor.values() for f in fs}) == 5  # 6 actors, 5 folds


def test_speech_commands_silence_is_sliced_from_background_noise(suite_root):
    root, expected = suite_root
    data = _load(get_task("speech_commands"), root)
    silence = [c for c in data.clips if c.duration_s is not None]
    assert len(silence) == expected["speech_commands"].segments
    assert all(
        data.class_names[c.labels[0]] == "_silence_" and c.duration_s == 1.0 for c in silence
    )
    tap = sorted(c.start_s for c in silence if "running_tap" in c.path)
    assert tap == [0.0, 0.5] and all(c.fold == "val" for c in silence if "running_tap" in c.path)
    assert {c.fold for c in silence if "white_noise" in c.path} == {"train"}
    assert data.notes == ()
    assert len(data.class_names) == 12


def test_speech_commands_without_the_test_archive_uses_testing_list(tmp_path, suite_root):
    root, _ = suite_root
    copy = tmp_path / "speech_commands"
    shutil.copytree(root / "speech_commands", copy)
    shutil.rmtree(copy / "speech_commands_test_set_v0.02")
    data = load_dataset("speech_commands", copy)
    test = [c for c in data.clips if c.fold == "test"]
    assert len(test) == 4 and all("nohash" in c.path for c in test)
    assert any("testing_list.txt" in n for n in data.notes)


def test_dcase_without_evaluation_labels_tests_on_the_development_test_set(tmp_path, suite_root):
    root, _ = suite_root
    copy = tmp_path / "dcase"
    shutil.copytree(root / "dcase2017_task4", copy)
    shutil.rmtree(copy / "groundtruth_release")
    data = load_dataset("dcase2017_task4", copy)
    assert set(data.folds) == {"train", "test"} and len(data.notes) == 1


def test_audioset_ids_and_ontology_fallback(tmp_path, suite_root):
    assert video_ids("abcdefghijk") == ["abcdefghijk"]
    assert video_ids("Yabcdefghijk") == ["abcdefghijk"]  # the downloaders' Y prefix
    assert video_ids("abcdefghijk_30.000") == ["abcdefghijk"]
    assert video_ids("Yabcdefghijk_30.000_40.000") == ["abcdefghijk"]
    assert video_ids("Yabcdefghij_30") == ["Yabcdefghij"]  # an id that starts with Y
    assert video_ids("Yabcdefghij") == ["Yabcdefghij"]
    assert video_ids("short") == []
    root, _ = suite_root
    copy = tmp_path / "audioset"
    shutil.copytree(root / "audioset", copy)
    (copy / "class_labels_indices.csv").unlink()
    with pytest.raises(UsageError, match="class_labels_indices.csv or ontology.json"):
        load_dataset("audioset", copy)
    (copy / "ontology.json").write_text(
        '[{"id": "/m/09x0r", "name": "Speech"}, {"id": "/m/04rlf", "name": "Music"},'
        ' {"id": "/m/0jbk", "name": "Animal"}, {"id": "/m/06mb1", "name": "Rain"}]'
    )
    data = load_dataset("audioset", copy)
    assert sorted(data.class_names) == ["Animal", "Music", "Rain", "Speech"]
    assert any("unbalanced_train_segments.csv: 2 of 4" in n for n in data.notes)


@pytest.mark.parametrize(
    "layout, folder, remove, sentence",
    [
        ("fsd50k", "fsd50k", "FSD50K.ground_truth", "no FSD50K ground truth under"),
        ("fsd50k", "fsd50k", "FSD50K.ground_truth/eval.csv", "expected eval.csv"),
        ("dcase2017_task4", "dcase2017_task4", "**/*.csv", "no DCASE 2017 Task 4 test labels"),
        ("audioset", "audioset", "eval_segments.csv", "no AudioSet eval_segments.csv"),
        (
            "tut2017",
            "tut2017",
            "TUT-acoustic-scenes-2017-development/evaluation_setup",
            "fold list fold1_evaluate.txt",
        ),
        ("crema_d", "crema_d", "AudioWAV", "no CREMA-D clips"),
        ("ravdess", "ravdess", "Audio_*", "no RAVDESS audio-only clips"),
        ("speech_commands", "speech_commands", "validation_list.txt", "validation_list.txt"),
        ("vocal_sound", "vocal_sound", "datafiles", "no VocalSound split lists"),
        ("vocal_sound", "vocal_sound", "audio_16k", "no VocalSound audio"),
        ("libricount", "libricount", "test", "no LibriCount mixtures"),
        ("gtzan_genres", "gtzan_genres", "genres", "no GTZAN genre folders"),
        ("gtzan_music_speech", "gtzan_music_speech", "music_speech", "GTZAN"),
        ("mridangam", "mridangam", "mridangam_stroke_1.5", "no Mridangam strokes"),
        (
            "beijing_opera",
            "beijing_opera",
            "beijing_opera_percussion_instrument_1.0",
            "no Beijing Opera percussion clips",
        ),
    ],  # fmt: skip
)
def test_missing_or_partial_dataset_is_one_sentence(
    tmp_path, suite_root, layout, folder, remove, sentence
):
    root, _ = suite_root
    copy = tmp_path / folder
    shutil.copytree(root / folder, copy)
    for target in copy.glob(remove):
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(UsageError) as err:
        load_dataset(layout, copy)
    message = str(err.value)
    assert sentence in message and "\n" not in message and message.endswith(".")


def test_no_file_on_disk_is_one_sentence(tmp_path, suite_root):
    root, _ = suite_root
    copy = tmp_path / "fsd50k"
    shutil.copytree(root / "fsd50k", copy)
    shutil.rmtree(copy / "FSD50K.dev_audio")
    shutil.rmtree(copy / "FSD50K.eval_audio")
    with pytest.raises(UsageError, match=r"none of the 15 clips of fsd50k were found on disk"):
        load_dataset("fsd50k", copy)


def test_assign_folds_groups_and_strata():
    groups = ["a", "a", "b", "c", "d", "e", "f"]
    folds = assign_folds(groups, 3, "salt")
    assert folds[0] == folds[1]  # one group, one fold
    assert sorted(Counter(folds[1:]).values()) == [2, 2, 2]  # 6 groups dealt 2-2-2
    assert assign_folds(groups, 3, "salt") == folds
    strat = assign_folds(["x1", "x2", "y1", "y2"], 2, "s", strata=["x", "x", "y", "y"])
    assert sorted(strat[:2]) == ["1", "2"] and sorted(strat[2:]) == ["1", "2"]
    # Ten classes of one clip each over 5 folds: two per fold, not ten in fold 1.
    single = assign_folds([f"c{i}" for i in range(10)], 5, "s", strata=[str(i) for i in range(10)])
    assert sorted(Counter(single).values()) == [2, 2, 2, 2, 2]
