"""`trained_on.json`: which clips a checkpoint trained on, and eval's honest-evaluation warning."""

from __future__ import annotations

import json
import shutil

from conftest import ESC50_DIR, esc50_files, run_cli

from clapsearch.hashing import HASH_NAME, content_hash
from clapsearch.training_record import (
    RECORD_FILE,
    read_training_hashes,
    training_overlap,
    write_training_record,
)


def test_record_round_trip_and_overlap_by_content(tmp_path):
    files = [str(f) for f in esc50_files(6)]
    write_training_record(tmp_path, [*files[:3], files[0], str(tmp_path / "gone.wav")])
    payload = json.loads((tmp_path / RECORD_FILE).read_text())
    assert payload["hash"] == HASH_NAME and payload["count"] == 3  # unique, existing files
    assert payload["hashes"] == sorted(content_hash(f) for f in files[:3])
    assert read_training_hashes(tmp_path) == frozenset(payload["hashes"])
    # a renamed copy of a training clip is still a training clip
    copy = tmp_path / "renamed.flac"
    shutil.copy(files[1], copy)
    got = training_overlap(tmp_path, [*files[2:], str(copy)])
    assert (got.known, got.trained, got.evaluated) == (True, 2, 5)
    assert "trained on 2 of the 5 evaluated clips" in got.warning
    clean = training_overlap(tmp_path, files[3:])
    assert clean.known and clean.trained == 0 and clean.warning is None


def test_no_record_is_unknown_not_clean(tmp_path):
    got = training_overlap(tmp_path, [str(f) for f in esc50_files(2)])
    assert (got.known, got.trained, got.warning) == (False, 0, None)
    (tmp_path / RECORD_FILE).write_text('{"hash": "md5", "hashes": []}')
    assert read_training_hashes(tmp_path) is None  # another scheme is not ours to compare


def test_eval_zeroshot_warns_when_the_model_trained_on_evaluated_clips(
    tiny_native_dir, capsys, tmp_path
):
    esc50_files(1)
    model = tmp_path / "model"
    shutil.copytree(tiny_native_dir, model)
    rows = (ESC50_DIR / "esc50.csv").read_text().splitlines()
    trained = [ESC50_DIR / "audio" / r.split(",")[0] for r in rows[1:5]]
    write_training_record(model, [str(p) for p in trained])
    only = tmp_path / "only.txt"  # 10 clips, 4 of them trained on
    only.write_text("\n".join(r.split(",")[0] for r in rows[1:11]))
    args = ["eval", "zeroshot", "--dataset", "esc50", "--root", str(ESC50_DIR), "--only", str(only)]
    args += ["--model", str(model), "--device", "cpu", "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    payload = json.loads(out)
    assert payload["n"] == 10
    assert payload["trained_on"] == {"known": True, "trained": 4, "evaluated": 10}
    assert "trained on 4 of the 10 evaluated clips" in err
    (model / RECORD_FILE).unlink()
    code, out, err = run_cli(args, capsys)
    assert json.loads(out)["trained_on"]["known"] is False and "warning" not in err
