"""One atomic-write helper: the target is whole or untouched, no temporary file survives."""

from __future__ import annotations

import pytest

from clapsearch.atomic import atomic_directory_write, atomic_open, temp_prefix, write_text


def test_replace_is_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.json"
    write_text(target, "old")
    write_text(target, "néw\n")
    assert target.read_bytes() == "néw\n".encode()
    assert not list(target.parent.glob(temp_prefix(target) + "*"))


def test_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(target, "wb") as fh:
        fh.write(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_directory_write_replaces_or_keeps(tmp_path):
    dest = tmp_path / "ckpt"
    atomic_directory_write(dest, lambda d: (d / "a").write_text("1"))
    with pytest.raises(ValueError):

        def fail(d):
            (d / "a").write_text("2")
            raise ValueError("boom")

        atomic_directory_write(dest, fail)
    assert (dest / "a").read_text() == "1"
    atomic_directory_write(dest, lambda d: (d / "b").write_text("3"))
    assert sorted(p.name for p in dest.iterdir()) == ["b"]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
