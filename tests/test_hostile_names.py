"""Hostile names and special files through the whole CLI: a name that is not UTF-8 is indexed,
stored, shown and found again with its exact bytes; control characters never reach the
terminal raw; FIFOs and symlink loops are refused without hanging (issue 16, items 1, 6, 8)."""

from __future__ import annotations

import json
import os
import threading

import pytest

from clapsearch.index.reader import IndexReader
from clapsearch.textsafe import json_dumps, shown, unshown
from tests import hostile
from tests.conftest import esc50_files, run_cli


@pytest.fixture()
def hostile_lib(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    src = esc50_files(4)
    paths = {
        "odd": hostile.non_utf8_copy(lib, src[0]),
        "ctrl": hostile.control_char_copy(lib, src[1]),
        "plain": lib / "plain.flac",
        # a failure under a non-UTF-8 name: `record_failure` raised UnicodeEncodeError here
        # and stopped every run before the fix
        "odd_fail": hostile.lying_rate_wav(lib / os.fsdecode(b"bad-\xff.wav")),
    }
    paths["plain"].write_bytes(src[2].read_bytes())
    hostile.fifo(lib / "pipe.wav")
    hostile.symlink_loops(lib / "loops")
    return lib, paths


def _index(capsys, lib, idx, model, *extra):
    return run_cli(
        [
            "index",
            str(lib),
            "--index",
            str(idx),
            "--model",
            str(model),
            "--workers",
            "0",
            "--precision",
            "fp32",
            *extra,
        ],
        capsys,
    )


def test_any_name_is_indexed_stored_shown_and_found(tmp_path, capsys, tiny_clap_dir, hostile_lib):
    lib, paths = hostile_lib
    idx = tmp_path / "idx"
    code, _, err = _index(capsys, lib, idx, tiny_clap_dir)
    assert code == 0, err
    assert "indexed 3" in err and "failed 4" in err  # liar + 3 looping links
    with IndexReader.open(idx) as reader:
        stored = {f.path for f in reader.failures()}
        assert str(paths["odd_fail"]) in stored
        assert reader.file_id_for_path(paths["odd"]) is not None  # the exact bytes
        assert reader.file_id_for_path(paths["ctrl"]) is not None
        reasons = {os.path.basename(f.path): (f.reason, f.detail) for f in reader.failures()}
    assert reasons["self.wav"] == ("unreadable", "a loop of symbolic links")

    # unchanged on a re-run: nothing re-embedded, nothing failing anew
    code, _, err = _index(capsys, lib, idx, tiny_clap_dir)
    assert code == 0 and "indexed 0, unchanged 3" in err, err

    # human output: escaped, one line per hit, no raw control character
    code, out, err = run_cli(["query", "a dog", "--index", str(idx), "-k", "5"], capsys)
    assert code == 0, err
    assert not any(c in out for c in "\x07\x1b\x7f\t") and out.count("\n") == 4
    assert shown(str(paths["ctrl"])) in out and shown(str(paths["odd"])) in out
    lines = [line.split("  ")[-1] for line in out.splitlines()[1:]]
    assert {unshown(p.strip()) for p in lines} == {str(paths[k]) for k in ("odd", "ctrl", "plain")}

    # JSON: valid UTF-8, and the name's bytes come back exactly
    code, out, err = run_cli(["query", "a dog", "--index", str(idx), "--json"], capsys)
    assert code == 0
    out.encode("utf-8")  # never lone surrogates on stdout
    got = {os.fsencode(r["path"]) for r in json.loads(out)["results"]}
    assert os.fsencode(paths["odd"]) in got

    code, out, err = run_cli(["status", "--errors", "--index", str(idx)], capsys)
    assert code == 0 and "bad-\\xff.wav: not_audio" in out and "\x1b" not in out

    # by example, with the non-UTF-8 file itself as the query (its own hit left out)
    code, out, err = run_cli(["query", "--audio", str(paths["odd"]), "--index", str(idx)], capsys)
    assert code == 0, err
    assert shown(str(paths["odd"])) not in out and shown(str(paths["plain"])) in out


def _with_timeout(seconds, fn):
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", fn()), daemon=True)
    t.start()
    t.join(seconds)
    return box.get("r", "timeout")


def test_fifo_as_argument_and_as_audio_query_is_refused(tmp_path, capsys, tiny_clap_dir):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.flac").write_bytes(esc50_files(1)[0].read_bytes())
    idx = tmp_path / "idx"
    assert _index(capsys, lib, idx, tiny_clap_dir)[0] == 0
    pipe = hostile.fifo(tmp_path / "x.wav")
    try:
        got = _with_timeout(60, lambda: _index(capsys, pipe, idx, tiny_clap_dir))
        assert got != "timeout", "indexing a FIFO hung"
        code, _, err = got
        assert code == 0 and "failed 1" in err
        with IndexReader.open(idx) as reader:
            (fail,) = [f for f in reader.failures() if f.path == str(pipe)]
        assert fail.reason == "unreadable" and "FIFO" in fail.detail
        got = _with_timeout(
            60, lambda: run_cli(["query", "--audio", str(pipe), "--index", str(idx)], capsys)
        )
        assert got != "timeout", "a FIFO as --audio hung"
        code, _, err = got
        assert code == 1 and "named pipe (FIFO)" in err and err.count("\n") == 1
    finally:
        try:
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


def test_symlink_loop_as_argument_says_so(tmp_path, capsys, tiny_clap_dir):
    loops = hostile.symlink_loops(tmp_path / "loops")
    code, _, err = _index(capsys, loops["self"], tmp_path / "idx", tiny_clap_dir)
    assert code == 2 and "symbolic link that leads nowhere" in err


def test_shown_escapes_everything_unsafe_and_is_lossless():
    nasty = [
        hostile.CONTROL_NAME,
        os.fsdecode(b"/x/caf\xe9-\xff\xfe.wav"),
        "rtl\u202eevil.wav",
        "c1\u0085next",
        "back\\slash\\x41",
        "plain/ünïcode ✓.wav",
    ]
    for s in nasty:
        t = shown(s)
        assert unshown(t) == s
        assert t.isprintable() and "\u202e" not in t
        t.encode("utf-8")
    assert shown("plain/ünïcode ✓.wav") == "plain/ünïcode ✓.wav"  # readable names untouched
    doc = json_dumps({"p": nasty[1]})
    doc.encode("utf-8")
    assert os.fsencode(json.loads(doc)["p"]) == b"/x/caf\xe9-\xff\xfe.wav"
