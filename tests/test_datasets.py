"""Dataset layout readers on the real Clotho / ESC-50 samples and on layouts built in tmp."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import CLOTHO_DIR, ESC50_DIR, clotho_files, esc50_files

from clapsearch.datasets import MissingClip
from clapsearch.datasets.audiocaps import load_audiocaps
from clapsearch.datasets.clotho import load_clotho
from clapsearch.datasets.esc50 import load_esc50
from clapsearch.datasets.manifest import load_manifest
from clapsearch.datasets.urbansound8k import load_urbansound8k
from clapsearch.errors import UsageError


def _clotho_rows() -> list[dict[str, str]]:
    with open(CLOTHO_DIR / "clotho_captions_evaluation.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- Clotho ------------------------------------------------------------------------------
def test_clotho_mini_official_layout():
    clotho_files()  # skip without the data
    data = load_clotho(CLOTHO_DIR)
    rows = _clotho_rows()
    assert data.name == "clotho/evaluation"
    assert len(data.audio_paths) == 7 and len(data.captions) == 35 and data.missing == ()
    assert list(data.caption_to_audio) == [i for i in range(7) for _ in range(5)]
    for i, row in enumerate(rows):
        assert Path(data.audio_paths[i]).name == row["file_name"]
        assert data.captions[5 * i : 5 * i + 5] == tuple(row[f"caption_{k}"] for k in range(1, 6))
    # The caption with a comma inside quotes survives the CSV parse whole.
    assert any("," in c for c in data.captions)


def test_clotho_alternative_folder_and_missing_clip(tmp_path):
    clotho_files()
    audio = tmp_path / "clotho_audio_evaluation"
    audio.mkdir()
    rows = _clotho_rows()
    for row in rows[1:]:  # the first clip is absent
        (audio / row["file_name"]).symlink_to(CLOTHO_DIR / "evaluation" / row["file_name"])
    shutil.copy(CLOTHO_DIR / "clotho_captions_evaluation.csv", tmp_path)
    data = load_clotho(tmp_path, "evaluation")
    assert len(data.audio_paths) == 6 and len(data.captions) == 30
    assert data.missing == (
        MissingClip(rows[0]["file_name"], str(audio / rows[0]["file_name"]), "missing"),
    )
    assert rows[0]["caption_1"] not in data.captions
    assert data.captions[0] == rows[1]["caption_1"] and data.caption_to_audio[0] == 0


def test_clotho_errors(tmp_path):
    with pytest.raises(UsageError, match="clotho_captions_validation.csv"):
        load_clotho(tmp_path, "validation")
    (tmp_path / "clotho_captions_evaluation.csv").write_text("name,caption_1\nx.wav,hello\n")
    (tmp_path / "evaluation").mkdir()
    with pytest.raises(UsageError, match="file_name"):
        load_clotho(tmp_path)


def test_drop_reindexes_captions():
    clotho_files()
    data = load_clotho(CLOTHO_DIR)
    failure = MissingClip("x", data.audio_paths[2], "truncated")
    smaller = data.drop([2], [failure])
    assert len(smaller.audio_paths) == 6 and len(smaller.captions) == 30
    assert smaller.missing == (failure,)
    assert data.audio_paths[2] not in smaller.audio_paths
    # Every caption still points at the same file as before.
    before = {
        c: data.audio_paths[a] for c, a in zip(data.captions, data.caption_to_audio, strict=True)
    }
    for c, a in zip(smaller.captions, smaller.caption_to_audio, strict=True):
        assert smaller.audio_paths[a] == before[c]


# --- AudioCaps ---------------------------------------------------------------------------
def _audiocaps_root(
    tmp_path: Path, naming: str, folder: str = "audiocaps"
) -> tuple[Path, list[Path]]:
    """test.csv with 4 clips (one absent on disk), 2-3 captions each, audio = ESC-50 clips."""
    src = esc50_files(3)
    rows = [
        ("101", "abcDEF_1234", "30", "a plane flies over"),
        ("102", "abcDEF_1234", "30", "an aircraft passes overhead"),
        ("103", "zz-top00001", "0", "a person breathes"),
        ("104", "zz-top00001", "0", "heavy breathing"),
        ("105", "zz-top00001", "0", "someone breathing loudly"),
        ("106", "MISSING0001", "10", "this clip was never downloaded"),
        ("107", "third000003", "120", "another plane"),
    ]
    root = tmp_path / folder
    (root / "test").mkdir(parents=True)
    with open(root / "test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
        w.writerows(rows)
    present = [("abcDEF_1234", "30"), ("zz-top00001", "0"), ("third000003", "120")]
    for (yid, start), clip in zip(present, src, strict=True):
        name = naming.format(youtube_id=yid, start_time=start)
        (root / "test" / name).symlink_to(clip)
    return root, src


def test_audiocaps_default_pattern_groups_captions_and_counts_missing(tmp_path):
    root, src = _audiocaps_root(tmp_path, "Y{youtube_id}.wav")
    data = load_audiocaps(root)
    assert data.name == "audiocaps/test"
    assert [Path(p).name for p in data.audio_paths] == [
        "YabcDEF_1234.wav",
        "Yzz-top00001.wav",
        "Ythird000003.wav",
    ]
    assert data.captions[:2] == ("a plane flies over", "an aircraft passes overhead")
    assert list(data.caption_to_audio) == [0, 0, 1, 1, 1, 2]
    assert "this clip was never downloaded" not in data.captions
    assert [(m.name, m.reason) for m in data.missing] == [("MISSING0001_10", "missing")]


@pytest.mark.parametrize(
    "naming,pattern",
    [
        ("{youtube_id}_{start_time}.flac", "{youtube_id}_{start_time}.flac"),
        ("{youtube_id}_{start_time}000_x.flac", "{youtube_id}*.flac"),  # globbed
    ],
)
def test_audiocaps_configurable_patterns(tmp_path, naming, pattern):
    root, _ = _audiocaps_root(tmp_path, naming, folder="AudioCaps [v1]")  # glob-special name
    data = load_audiocaps(root, pattern=pattern)
    assert len(data.audio_paths) == 3 and len(data.captions) == 6 and len(data.missing) == 1


def test_audiocaps_float_start_times_and_bad_pattern(tmp_path):
    root, _ = _audiocaps_root(tmp_path, "{youtube_id}_{start_time}.flac")
    text = (root / "test.csv").read_text().replace(",30,", ",30.0,")
    (root / "test.csv").write_text(text)
    data = load_audiocaps(root, pattern="{youtube_id}_{start_time}.flac")
    assert len(data.missing) == 1  # "30.0" still finds ..._30.flac
    with pytest.raises(UsageError, match="youtube_id"):
        load_audiocaps(root, pattern="{ytid}.wav")


# --- manifests ---------------------------------------------------------------------------
def test_manifest_csv_and_jsonl_agree(tmp_path):
    clips = esc50_files(4)
    with open(tmp_path / "m.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["audio", "caption"])
        w.writerow([str(clips[0]), "first a"])
        w.writerow([str(clips[1]), "second"])
        w.writerow([str(clips[0]), "first b"])  # repeated path adds a caption
        w.writerow(["not_here.flac", "gone"])
        w.writerow([clips[2].name, "relative to the audio root"])
        w.writerow([str(clips[3]), ""])  # a distractor: no caption
    lines = [
        {"audio": str(clips[0]), "caption": "first a", "captions": ["first a", "first b"]},
        {"path": str(clips[1]), "caption": "second"},
        {"file": "not_here.flac", "caption": "gone"},
        {"audio": clips[2].name, "caption_1": "relative to the audio root"},
        {"audio": str(clips[3])},
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    from_csv = load_manifest(tmp_path / "m.csv", audio_root=clips[0].parent)
    from_jsonl = load_manifest(tmp_path / "m.jsonl", audio_root=clips[0].parent)
    for data in (from_csv, from_jsonl):
        assert data.audio_paths == tuple(str(c) for c in clips)
        assert data.captions == ("first a", "first b", "second", "relative to the audio root")
        assert data.caption_to_audio == (0, 0, 1, 2)
        assert [m.name for m in data.missing] == ["not_here.flac"]


def test_manifest_errors(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_manifest(tmp_path / "nope.csv")
    (tmp_path / "bad.jsonl").write_text('{"audio": "a.wav"}\nnot json\n')
    with pytest.raises(UsageError, match="line 2"):
        load_manifest(tmp_path / "bad.jsonl")
    (tmp_path / "noaudio.csv").write_text("caption\nhello\n")
    with pytest.raises(UsageError, match="no audio path"):
        load_manifest(tmp_path / "noaudio.csv")
    (tmp_path / "latin.csv").write_bytes(b"audio,caption\nx.wav,caf\xe9\n")
    with pytest.raises(UsageError, match="UTF-8"):
        load_manifest(tmp_path / "latin.csv")
    (tmp_path / "nocaps.jsonl").write_text(json.dumps({"audio": str(esc50_files(1)[0])}) + "\n")
    with pytest.raises(UsageError, match="no captions"):
        load_manifest(tmp_path / "nocaps.jsonl")


# --- ESC-50 and UrbanSound8K -------------------------------------------------------------
def test_esc50_mini_layout():
    esc50_files(1)
    data = load_esc50(ESC50_DIR)
    assert len(data.audio_paths) == 314 and data.missing == ()
    assert len(data.class_names) == 50
    assert data.class_names[0] == "dog" and data.class_names[20] == "crying baby"
    assert all("_" not in name for name in data.class_names)
    assert set(data.folds) == {2, 3, 4}
    with open(ESC50_DIR / "esc50.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for path, label, fold, row in zip(data.audio_paths, data.labels, data.folds, rows, strict=True):
        assert Path(path).name == row["filename"]
        assert label == int(row["target"]) and fold == int(row["fold"])
        assert data.class_names[label] == row["category"].replace("_", " ")


def test_esc50_official_layout_with_missing(tmp_path):
    esc50_files(1)
    (tmp_path / "meta").mkdir()
    with open(ESC50_DIR / "esc50.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:6]
    with open(tmp_path / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (tmp_path / "audio").mkdir()
    for row in rows[:5]:
        (tmp_path / "audio" / row["filename"]).symlink_to(ESC50_DIR / "audio" / row["filename"])
    data = load_esc50(tmp_path)
    assert len(data.audio_paths) == 5
    assert [m.name for m in data.missing] == [rows[5]["filename"]]


def test_urbansound8k_layout(tmp_path):
    clips = esc50_files(4)
    meta = tmp_path / "metadata"
    meta.mkdir()
    entries = [
        ("100032-3-0-0.flac", 1, 3, "dog_bark"),
        ("100263-2-0-117.flac", 1, 2, "children_playing"),
        ("101415-3-0-2.flac", 2, 3, "dog_bark"),
        ("102305-6-0-0.flac", 3, 6, "gun_shot"),
    ]
    with open(meta / "UrbanSound8K.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
        )
        for name, fold, cid, cname in entries:
            w.writerow([name, 1, 0.0, 4.0, 1, fold, cid, cname])
    for (name, fold, _, _), clip in zip(entries[:3], clips, strict=False):
        (tmp_path / "audio" / f"fold{fold}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "audio" / f"fold{fold}" / name).symlink_to(clip)
    data = load_urbansound8k(tmp_path)
    assert data.class_names == ("children playing", "dog bark", "gun shot")
    assert data.labels == (1, 0, 1) and data.folds == (1, 1, 2)
    assert [m.reason for m in data.missing] == ["missing"]


def test_classification_errors(tmp_path):
    with pytest.raises(UsageError, match="ESC-50 metadata"):
        load_esc50(tmp_path)
    (tmp_path / "esc50.csv").write_text("filename,fold,target,category\na.wav,x,1,dog\n")
    with pytest.raises(UsageError, match="non-integer fold"):
        load_esc50(tmp_path)


def test_restrict_to_a_listed_subset(tmp_path):
    clotho_files()
    from clapsearch.datasets import read_name_list, restrict

    rows = _clotho_rows()
    data = load_clotho(CLOTHO_DIR)
    listing = tmp_path / "keep.txt"
    listing.write_text(f"# held out\n{rows[3]['file_name']}\n\n{rows[1]['file_name']}\n")
    small = restrict(data, read_name_list(listing))
    assert [Path(p).name for p in small.audio_paths] == [rows[1]["file_name"], rows[3]["file_name"]]
    assert small.captions[:5] == tuple(rows[1][f"caption_{k}"] for k in range(1, 6))
    assert small.caption_to_audio == (0,) * 5 + (1,) * 5 and small.missing == ()

    esc = load_esc50(ESC50_DIR)
    one = restrict(esc, {Path(esc.audio_paths[0]).name})
    assert len(one.audio_paths) == 1 and one.class_names == esc.class_names  # all 50 labels

    with pytest.raises(UsageError, match="not in clotho/evaluation"):
        restrict(data, {"typo.wav"})
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(UsageError, match="names no clips"):
        read_name_list(empty)


def test_restrict_keeps_listed_missing_clips(tmp_path):
    root, _ = _audiocaps_root(tmp_path, "Y{youtube_id}.wav")
    from clapsearch.datasets import restrict

    data = load_audiocaps(root)
    kept = restrict(data, {"YabcDEF_1234.wav", "YMISSING0001.wav"})
    assert len(kept.audio_paths) == 1 and [m.name for m in kept.missing] == ["MISSING0001_10"]
    assert len(restrict(data, {"YabcDEF_1234.wav"}).missing) == 0


# --- registry and the manifest rule --------------------------------------------------------
def test_registry_finds_every_reader_by_name(tmp_path):
    from clapsearch.datasets import get_layout, layout_names, load_dataset

    assert layout_names("retrieval") == ["audiocaps", "clotho", "manifest"]
    assert layout_names("classification") == ["esc50", "urbansound8k"]
    assert get_layout("clotho").default_split == "evaluation"
    with pytest.raises(UsageError, match="unknown retrieval dataset 'esc50'"):
        get_layout("esc50", "retrieval")
    with pytest.raises(UsageError, match="is not a directory"):
        load_dataset("clotho", tmp_path / "nowhere")
    with pytest.raises(UsageError, match=r"no ESC-50 metadata under .* \(expected meta/esc50"):
        load_dataset("esc50", tmp_path)
    esc50_files(1)
    assert load_dataset("esc50", ESC50_DIR).class_names[0] == "dog"
    with pytest.raises(UsageError, match="folds, not named splits"):
        load_dataset("esc50", ESC50_DIR, split="test")


def test_manifest_rule_numbers_merge_and_split(tmp_path):
    from clapsearch.datasets.manifest import read_manifest

    clip = esc50_files(1)[0]
    row = {"audio": clip.name, **{f"caption_{n}": f"c{n}" for n in (10, 2, 1)}, "split": "a"}
    lines = [row, {"path": clip.name, "caption": "c2", "split": "a"}, {"file": "x", "split": "b"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    clips = read_manifest(tmp_path / "m.jsonl", audio_root=clip.parent, split="a")
    assert len(clips) == 1 and clips[0].path == clip  # two rows, one file: one clip
    assert clips[0].captions == ("c1", "c2", "c10")  # number order, repeats once
    assert len(read_manifest(tmp_path / "m.jsonl")) == 2
