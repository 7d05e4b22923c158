"""The index keeps in step with the disk: `remove PATH...`, `index --prune`, vanished roots."""

from __future__ import annotations

import json
import shutil

import pytest

from clapsearch.index.reader import IndexReader
from indexer.prune import prune_missing, remove_paths, under_any
from indexer.run import IndexOptions, run_index
from tests.conftest import esc50_files, run_cli


def _index(roots, idx, model=None):
    opts = IndexOptions(
        roots=tuple(str(r) for r in roots),
        index=str(idx),
        model=str(model) if model else None,
        workers=0,
    )
    return run_index(opts)


def _paths(idx) -> set[str]:
    with IndexReader.open(idx) as store:
        return {r.path for r in store.segments(store.segment_ids_where()).values()}


@pytest.fixture()
def two_folders(tmp_path, tiny_clap_dir):
    """lib/ (3 clips) and lib_copy/ (2 clips + sub/ with 1) indexed into one index."""
    files = esc50_files(6)
    lib, copy = tmp_path / "lib", tmp_path / "lib_copy"
    (copy / "sub").mkdir(parents=True)
    lib.mkdir()
    for f in files[:3]:
        shutil.copy(f, lib / f.name)
    for f in files[3:5]:
        shutil.copy(f, copy / f.name)
    shutil.copy(files[5], copy / "sub" / files[5].name)
    idx = tmp_path / "idx"
    _index([lib, copy], idx, tiny_clap_dir)
    assert len(_paths(idx)) == 6
    return lib, copy, idx


def test_under_any_matches_whole_path_components():
    assert under_any("/a/b/c.wav", ["/a/b"]) and under_any("/a/b", ["/a/b/"])
    assert not under_any("/a/bc/c.wav", ["/a/b"])


def test_deleted_folder_is_explained_then_pruned(two_folders):
    lib, copy, idx = two_folders
    shutil.rmtree(copy)
    # indexing lib alone never looks at lib_copy: its files stay (as before) ...
    _index([lib], idx)
    assert any(p.startswith(str(copy)) for p in _paths(idx))
    # ... indexing the vanished folder says what the index still holds and how to drop it
    from clapsearch.errors import UsageError

    with pytest.raises(UsageError, match=r"still holds 3 files from it: `clapsearch remove"):
        _index([copy], idx)
    got = prune_missing(str(idx))
    assert (got.files, got.failures) == (3, 0)
    assert _paths(idx) == {str(lib / f.name) for f in esc50_files(3)}
    assert prune_missing(str(idx)).files == 0  # nothing more is gone


def test_remove_files_and_folders_whether_or_not_on_disk(two_folders):
    lib, copy, idx = two_folders
    one = sorted(lib.iterdir())[0]
    got = remove_paths(str(idx), [str(one), str(copy / "sub")])
    assert got.files == 2
    left = _paths(idx)
    assert str(one) not in left and not any("/sub/" in p for p in left)
    assert one.exists()  # the audio on disk is never touched
    shutil.rmtree(copy)
    assert remove_paths(str(idx), [str(copy)]).files == 2
    assert _paths(idx) == {str(p) for p in sorted(lib.iterdir())[1:]}
    # the search side sees the same state (the ANN cache followed the deletions)
    with IndexReader.open(idx) as store:
        assert store.status().files == 2


def test_remove_and_prune_from_the_cli(two_folders, capsys):
    lib, copy, idx = two_folders
    code, out, err = run_cli(["remove", str(copy / "sub"), "--index", str(idx), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out) == {"index": str(idx), "files": 1, "failures": 0}
    shutil.rmtree(copy)
    code, out, err = run_cli(["index", "--prune", "--index", str(idx)], capsys)
    assert code == 0 and "pruned 2 files" in err
    code, _, err = run_cli(["index", "--index", str(idx)], capsys)
    assert code == 2 and "Give the folders to index" in err
    code, _, err = run_cli(["remove", str(lib), "--index", str(idx / "nowhere")], capsys)
    assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
