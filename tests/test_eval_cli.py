"""`clapsearch eval retrieval|zeroshot` end to end with the tiny random model on real audio."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import CLOTHO_DIR, ESC50_DIR, clotho_files, esc50_files, run_cli

from clapsearch.eval.metrics import METRIC_KEYS, retrieval_scores


@pytest.fixture(scope="module")
def model_args(tiny_clap_dir) -> list[str]:
    return ["--model", str(tiny_clap_dir), "--device", "cpu", "--precision", "fp32"]


def _assert_retrieval_contract(payload: dict) -> None:
    for direction in ("t2a", "a2t"):
        assert set(payload[direction]) == set(METRIC_KEYS)
        for key in ("R@1", "R@5", "R@10", "mAP@10"):
            assert 0.0 <= payload[direction][key] <= 1.0
        assert payload[direction]["R@1"] <= payload[direction]["R@5"] <= payload[direction]["R@10"]
        assert payload[direction]["median_rank"] >= 1.0
    for key in ("n_audio", "n_captions", "missing"):
        assert isinstance(payload[key], int)


@pytest.mark.slow
def test_clotho_json_deterministic_and_saved_embeddings_recompute(model_args, capsys, tmp_path):
    clotho_files()
    args = ["eval", "retrieval", "--dataset", "clotho", "--root", str(CLOTHO_DIR), "--json"]
    code, out, err = run_cli(
        [*args, "--save-embeddings", str(tmp_path / "emb"), *model_args], capsys
    )
    assert code == 0, err
    first = json.loads(out)
    _assert_retrieval_contract(first)
    assert (first["n_audio"], first["n_captions"], first["missing"]) == (7, 35, 0)
    assert first["dataset"] == "clotho/evaluation" and first["precision"] == "float32"

    # Another batch size must not change a single number (no random crops, no batch effects).
    code, out, _ = run_cli([*args, "--batch-size", "3", "--workers", "1", *model_args], capsys)
    assert code == 0 and json.loads(out) == first

    audio = np.load(tmp_path / "emb" / "audio.npy")
    text = np.load(tmp_path / "emb" / "text.npy")
    captions = json.loads((tmp_path / "emb" / "captions.json").read_text())
    assert audio.shape[0] == 7 and text.shape[0] == 35 and audio.shape[1] == text.shape[1]
    assert np.allclose(np.linalg.norm(audio, axis=1), 1, atol=1e-5)
    assert [c["audio_index"] for c in captions] == [i for i in range(7) for _ in range(5)]
    assert json.loads((tmp_path / "emb" / "missing.json").read_text()) == []
    assert len(json.loads((tmp_path / "emb" / "audio.json").read_text())) == 7
    with open(CLOTHO_DIR / "clotho_captions_evaluation.csv", newline="") as f:
        first_row = next(csv.DictReader(f))
    assert captions[0]["caption"] == first_row["caption_1"]
    recomputed = retrieval_scores(text @ audio.T, np.array([c["audio_index"] for c in captions]))
    assert recomputed == {"t2a": first["t2a"], "a2t": first["a2t"]}


def test_tables_are_readable():
    from clapsearch.datasets import MissingClip
    from clapsearch.eval.retrieval import RetrievalResult
    from clapsearch.eval.retrieval import format_table as retrieval_table
    from clapsearch.eval.zeroshot import ZeroShotResult
    from clapsearch.eval.zeroshot import format_table as zeroshot_table

    row = {"R@1": 0.125, "R@5": 0.5, "R@10": 0.75, "mAP@10": 0.3, "median_rank": 4.5}
    result = RetrievalResult(
        "clotho/evaluation",
        "m",
        {"t2a": row, "a2t": row},
        ("a", "b"),
        ("x", "y", "z"),
        (0, 0, 1),
        (MissingClip("c", "c", "missing"),),
        np.zeros((2, 4)),
        np.zeros((3, 4)),
    )
    table = retrieval_table(result)
    assert "2 clips, 3 captions, 1 missing" in table and "excluded clips: 1 not found" in table
    assert "text->audio" in table and "audio->text" in table
    assert "   12.50    50.00    75.00    30.00       4.5" in table
    zs = ZeroShotResult("esc50", "m", "{label}", 0.5, 4, {1: 0.25, 2: 0.75}, (), (0, 1, 2, 3))
    assert "accuracy  50.00%" in zeroshot_table(zs) and "fold 2    75.00%" in zeroshot_table(zs)


def test_audiocaps_missing_and_undecodable_clips_are_counted(model_args, capsys, tmp_path):
    clips = esc50_files(3)
    root = tmp_path / "ac"
    (root / "test").mkdir(parents=True)
    rows = [
        ("1", "aaaaaaaaaaa", "0", "clip one"),
        ("2", "aaaaaaaaaaa", "0", "clip one again"),
        ("3", "bbbbbbbbbbb", "10", "clip two"),
        ("4", "ccccccccccc", "20", "clip three"),
        ("5", "notdownload", "30", "never downloaded"),
        ("6", "corruptfile", "40", "broken file"),
    ]
    with open(root / "test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
        w.writerows(rows)
    for yid, clip in zip(["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"], clips, strict=True):
        (root / "test" / f"{yid}.flac").symlink_to(clip)
    (root / "test" / "corruptfile.flac").write_bytes(b"fLaC but not really a flac file")
    code, out, err = run_cli(
        [
            "eval",
            "retrieval",
            "--dataset",
            "audiocaps",
            "--root",
            str(root),
            "--audio-pattern",
            "{youtube_id}.flac",
            "--json",
            "--save-embeddings",
            str(tmp_path / "emb"),
            *model_args,
        ],
        capsys,
    )
    assert code == 0, err
    payload = json.loads(out)
    _assert_retrieval_contract(payload)
    assert (payload["n_audio"], payload["n_captions"], payload["missing"]) == (3, 4, 2)
    assert payload["missing_reasons"]["missing"] == 1
    assert sum(payload["missing_reasons"].values()) == 2
    missing = json.loads((tmp_path / "emb" / "missing.json").read_text())
    assert sorted(m["name"] for m in missing) == ["corruptfile.flac", "notdownload_30"]
    assert {m["reason"] for m in missing if m["name"] == "corruptfile.flac"} != {"missing"}
    captions = json.loads((tmp_path / "emb" / "captions.json").read_text())
    assert [c["caption"] for c in captions] == [
        "clip one",
        "clip one again",
        "clip two",
        "clip three",
    ]
    assert [c["audio_index"] for c in captions] == [0, 0, 1, 2]


def test_manifest_run(model_args, capsys, tmp_path):
    clips = esc50_files(3)
    lines = [
        json.dumps({"audio": str(c), "captions": [f"sound {i}", f"noise {i}"]})
        for i, c in enumerate(clips[:2])
    ]
    lines.append(json.dumps({"audio": str(clips[2])}))  # a distractor without captions
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines))
    code, out, err = run_cli(
        [
            "eval",
            "retrieval",
            "--dataset",
            "manifest",
            "--manifest",
            str(manifest),
            "--json",
            *model_args,
        ],
        capsys,
    )
    assert code == 0, err
    payload = json.loads(out)
    assert (payload["n_audio"], payload["n_captions"], payload["missing"]) == (3, 4, 0)

    keep = tmp_path / "keep.txt"
    keep.write_text(f"{clips[1].name}\n{clips[2].name}\n")
    code, out, err = run_cli(
        [
            "eval",
            "retrieval",
            "--dataset",
            "manifest",
            "--manifest",
            str(manifest),
            "--json",
            "--only",
            str(keep),
            *model_args[:4],  # no --precision: eval defaults to fp32, not `auto`
        ],
        capsys,
    )
    assert code == 0, err
    payload = json.loads(out)
    assert (payload["n_audio"], payload["n_captions"], payload["missing"]) == (2, 2, 0)
    assert payload["precision"] == "float32"


def test_zeroshot_official_layout_json(model_args, capsys, tmp_path):
    esc50_files(1)
    with open(ESC50_DIR / "esc50.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # A small official-layout ESC-50: every fold-2/3 clip and a few fold-4 ones.
    picked = [r for r in rows if r["fold"] != "4"] + [r for r in rows if r["fold"] == "4"][:8]
    (tmp_path / "meta").mkdir()
    (tmp_path / "audio").mkdir()
    with open(tmp_path / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(picked)
    for r in picked:
        (tmp_path / "audio" / r["filename"]).symlink_to(ESC50_DIR / "audio" / r["filename"])
    args = ["eval", "zeroshot", "--dataset", "esc50", "--root", str(tmp_path), *model_args]
    code, out, err = run_cli([*args, "--template", "{label} can be heard.", "--json"], capsys)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["n"] == len(picked) == 20 and payload["missing"] == 0
    assert set(payload["per_fold"]) == {"2", "3", "4"}
    counts = {"2": 11, "3": 1, "4": 8}
    weighted = sum(payload["per_fold"][k] * n for k, n in counts.items()) / 20
    assert payload["accuracy"] == pytest.approx(weighted)
    assert 0.0 <= payload["accuracy"] <= 1.0
    assert payload["template"] == "{label} can be heard."


def test_usage_errors_are_one_sentence(model_args, capsys, tmp_path):
    cases = [
        (["eval", "retrieval", "--dataset", "clotho", "--root", str(tmp_path / "none")], 2),
        (["eval", "retrieval", "--dataset", "clotho", "--root", str(tmp_path)], 2),
        (["eval", "retrieval", "--dataset", "manifest"], 2),
        (
            [
                "eval",
                "zeroshot",
                "--dataset",
                "esc50",
                "--root",
                str(ESC50_DIR),
                "--template",
                "no placeholder",
            ],
            2,
        ),
    ]
    for args, want in cases:
        code, out, err = run_cli([*args, *model_args], capsys)
        assert code == want, (args, err)
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and out == ""
    code, _, err = run_cli(["eval", "retrieval", "--dataset", "imagenet"], capsys)
    assert code == 2 and "imagenet" in err


def test_eval_help_lists_commands(capsys):
    code, out, _ = run_cli(["eval", "--help"], capsys)
    assert code == 0 and "retrieval" in out and "zeroshot" in out


@pytest.mark.parametrize(
    "fixture", [pytest.param("tiny_clap_fusion_dir", marks=pytest.mark.slow), "tiny_native_dir"]
)
def test_long_clips_through_fusion_and_native_checkpoints(fixture, request, capsys, tmp_path):
    """Long Clotho clips (15-30 s) through a fusion model and a clapsearch checkpoint."""
    files = clotho_files()[:2]
    model = str(request.getfixturevalue(fixture))
    manifest = tmp_path / "m.csv"
    lines = ["audio,caption_1,caption_2"] + [
        f'"{f}",first {i},second {i}' for i, f in enumerate(files)
    ]
    manifest.write_text("\n".join(lines) + "\n")
    args = [
        "eval",
        "retrieval",
        "--dataset",
        "manifest",
        "--manifest",
        str(manifest),
        "--json",
        "--model",
        model,
        "--device",
        "cpu",
        "--precision",
        "fp32",
    ]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    payload = json.loads(out)
    _assert_retrieval_contract(payload)
    assert (payload["n_audio"], payload["n_captions"], payload["missing"]) == (2, 4, 0)
