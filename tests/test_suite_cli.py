"""`clapsearch eval suite` end to end on the generated fixtures with the tiny random model:
the table and JSON, figures recomputed independently, the cache, the honest-evaluation warning
and exclusion, overrides, and one-sentence errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import run_cli
from sklearn.metrics import average_precision_score
from suite_fixtures import build_suite_root

from clapsearch.audio import load_audio
from clapsearch.hashing import HASH_NAME, content_hash
from clapsearch.prompts import render

FAST = "esc50,fsd50k,dcase2017_task4,speech_commands"


@pytest.fixture(scope="module")
def suite_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite_root")
    return root, build_suite_root(root)


@pytest.fixture(scope="module")
def model_args(tiny_clap_dir) -> list[str]:
    return ["--model", str(tiny_clap_dir), "--device", "cpu", "--precision", "fp32"]


def _suite(args, capsys, root, cache, model_args):
    return run_cli(
        ["eval", "suite", "--root", str(root), "--cache", str(cache), *args, *model_args], capsys
    )


def _embed(embedder, paths):
    return embedder.embed_audio([load_audio(p, embedder.sample_rate) for p in paths])


def test_suite_json_figures_match_an_independent_computation(
    suite_root, model_args, tiny_embedder, capsys, tmp_path
):
    root, expected = suite_root
    code, out, err = _suite(
        ["--tasks", FAST, "--probe", "l1", "--json"], capsys, root, tmp_path, model_args
    )
    assert code == 0, err
    payload = json.loads(out)
    assert list(payload["tasks"]) == ["esc50", "fsd50k", "dcase2017_task4", "speech_commands"]
    assert payload["probe"] == "Freeze_L1" and payload["skipped"] == {}
    esc = payload["tasks"]["esc50"]
    assert esc["metric"] == "accuracy" and esc["paper_zeroshot"] == 0.826
    assert list(esc["zeroshot"]["per_fold"]) == ["1", "2", "3", "4", "5"]
    assert list(esc["probe"]["per_fold"]) == ["1", "2", "3", "4", "5"]
    assert esc["probe"]["value"] == pytest.approx(np.mean(list(esc["probe"]["per_fold"].values())))
    assert esc["chance"] == pytest.approx(1 / 3) and esc["n_clips"] == 15
    # ESC-50 zero-shot, recomputed from scratch: embed, prompt, argmax (pessimistic ties).
    from clapsearch.eval.suite.metrics import accuracy

    paths = sorted(expected["esc50"].clips)
    names = ["crying baby", "dog", "rain"]
    text = tiny_embedder.embed_text(render(names, "This is a sound of {label}."))
    labels = [names.index(expected["esc50"].clips[p][0][0]) for p in paths]
    sim = _embed(tiny_embedder, paths) @ text.T
    assert esc["zeroshot"]["value"] == pytest.approx(accuracy(sim, np.array(labels)), abs=1e-6)
    # FSD50K: mAP over the 4 test clips on disk, against scikit-learn.
    fsd = payload["tasks"]["fsd50k"]
    assert fsd["metric"] == "mAP" and fsd["zeroshot"]["n"] == 4 and fsd["missing"] == 1
    vocab = ["Bark", "Dog", "Rain", "Electric guitar"]
    test = sorted(p for p, (_, f) in expected["fsd50k"].clips.items() if f == "test")
    truth = np.array([[v in expected["fsd50k"].clips[p][0] for v in vocab] for p in test])
    sim = (
        _embed(tiny_embedder, test)
        @ tiny_embedder.embed_text(render(vocab, "This is a sound of {label}.")).T
    )
    keep = truth.any(axis=0)
    assert fsd["zeroshot"]["value"] == pytest.approx(
        average_precision_score(truth[:, keep], sim[:, keep], average="macro"), abs=1e-6
    )
    dcase = payload["tasks"]["dcase2017_task4"]
    assert dcase["metric"] == "F1" and dcase["f1_rule"] == {
        "zeroshot": "top1",
        "probe": "threshold",
    }
    assert dcase["n_classes"] == 17 and set(dcase["zeroshot"]["per_fold"]) <= {
        "train",
        "val",
        "test",
    }
    sc = payload["tasks"]["speech_commands"]
    assert sc["n_classes"] == 12 and sc["zeroshot"]["n"] == 8
    assert sc["label_texts"]["_silence_"] == "silence"
    for task in payload["tasks"].values():
        assert 0.0 <= task["zeroshot"]["value"] <= 1.0 and 0.0 <= task["probe"]["value"] <= 1.0
    # The second run reads every clip from the cache and gives the same figures.
    code, out2, _ = _suite(
        ["--tasks", FAST, "--probe", "l1", "--json"], capsys, root, tmp_path, model_args
    )
    again = json.loads(out2)
    for name, task in again["tasks"].items():
        assert task["cached"] == task["n_clips"] > 0
        assert task["zeroshot"] == payload["tasks"][name]["zeroshot"]
        assert task["probe"] == payload["tasks"][name]["probe"]


def test_table_in_the_papers_layout_and_training_overlap(
    suite_root, model_args, tiny_clap_dir, capsys, tmp_path
):
    root, expected = suite_root
    model = tmp_path / "model"
    shutil.copytree(tiny_clap_dir, model)
    trained = sorted(expected["esc50"].clips)[:5]
    hashes = sorted(content_hash(p) for p in trained)
    (model / "trained_on.json").write_text(
        json.dumps({"hash": HASH_NAME, "count": len(hashes), "hashes": hashes})
    )
    args = ["--model", str(model), "--device", "cpu", "--precision", "fp32"]
    code, out, err = _suite(["--tasks", "esc50,urbansound8k"], capsys, root, tmp_path / "c", args)
    assert code == 0, err
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("|  | ESC50 | US8K |"))
    assert lines[header + 1] == "|---|---:|---:|"
    rows = [line.split(" | ")[0].strip("| ") for line in lines[header + 2 : header + 6]]
    assert rows == ["metric", "chance", "MS-CLAP 2022 zero-shot (paper)", "zero-shot"]
    assert "| MS-CLAP 2022 zero-shot (paper) | 0.8260 | 0.7324 |" in out
    assert "warning: esc50: the model trained on 5 of the 15 evaluated clips" in out
    assert "urbansound8k: the model trained" not in out
    code, out, err = _suite(
        ["--tasks", "esc50", "--exclude-trained", "--json"], capsys, root, tmp_path / "c", args
    )
    assert code == 0, err
    esc = json.loads(out)["tasks"]["esc50"]
    assert esc["n_clips"] == 10 and esc["trained_on"] == 5 and esc["excluded_trained"] == 5
    assert json.loads(out)["warnings"] == []


def test_overrides_missing_tasks_and_errors(suite_root, model_args, capsys, tmp_path):
    root, _ = suite_root
    labels = tmp_path / "labels.json"
    labels.write_text(
        json.dumps(
            {"esc50": {"prompt": "the sound of {label}", "labels": {"dog": "a dog barking"}}}
        )
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "esc50").mkdir()  # present but incomplete
    code, out, err = _suite(
        ["--tasks", "esc50,libricount", "--labels", str(labels), "--json"],
        capsys,
        root,
        tmp_path,
        model_args,
    )
    assert code == 0, err
    esc = json.loads(out)["tasks"]["esc50"]
    assert esc["prompt"] == "the sound of {label}" and esc["label_texts"]["dog"] == "a dog barking"
    code, out, err = _suite(["--tasks", "esc50,ravdess"], capsys, empty, tmp_path, model_args)
    assert code != 0 and err.count("\n") == 1 and "Traceback" not in err
    assert "no ESC-50 metadata under" in err and "no RAVDESS data under" in err
    for bad, sentence in (
        (["--probe", "l2"], "--probe is none, l1 or l3"),
        (["--tasks", "esc5O"], "unknown task 'esc5O'"),
        (["--exclude-trained", "--tasks", "esc50"], "needs a model with a training record"),
    ):
        code, _, err = _suite(bad, capsys, root, tmp_path, model_args)
        assert code != 0 and sentence in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_whole_suite_on_the_fixtures(suite_root, model_args, capsys, tmp_path):
    root, _ = suite_root
    code, out, err = _suite(["--probe", "l3", "--json"], capsys, root, tmp_path, model_args)
    assert code == 0, err
    payload = json.loads(out)
    assert len(payload["tasks"]) == 16 and payload["skipped"] == {}
    assert all(t["probe"] is not None for t in payload["tasks"].values())
    assert payload["probe"] == "Freeze_L3"


def test_only_list_and_undecodable_clips(suite_root, model_args, capsys, tmp_path):
    root, expected = suite_root
    copy = tmp_path / "root"
    shutil.copytree(root / "esc50", copy / "esc50")
    clips = sorted((copy / "esc50" / "audio").iterdir())
    clips[0].write_bytes(b"not audio at all")  # lists fine, fails to decode
    only = tmp_path / "only.txt"
    only.write_text("\n".join(p.name for p in clips[:4]) + "\n")
    code, out, err = _suite(
        ["--tasks", "esc50", "--only", str(only), "--json"],
        capsys,
        copy,
        tmp_path / "c",
        model_args,
    )
    assert code == 0, err
    esc = json.loads(out)["tasks"]["esc50"]
    assert esc["n_clips"] == 3 and esc["missing"] == 1 and sum(esc["missing_reasons"].values()) == 1
    assert "missing" not in esc["missing_reasons"]  # it exists: a decode failure, not absent
