"""The Ray Data runner on a local 2-CPU cluster gives the sequential indexer's index.

The only Ray test module: importing ray and starting a local cluster costs seconds, so
everything Ray is checked here, in one cluster, over one small library."""

from __future__ import annotations

import shutil

import pytest

from indexer.distributed.merge import merge
from indexer.distributed.runners import ShardOptions
from indexer.run import IndexOptions, run_index
from tests.conftest import clotho_files, esc50_files
from tests.test_distributed import assert_same_index

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_runner_equals_the_sequential_indexer(tmp_path, tiny_clap_dir, cluster):
    from indexer.distributed.ray_runner import run_ray

    lib = tmp_path / "lib"
    lib.mkdir()
    for f in esc50_files(38) + clotho_files()[:2]:  # 40 files, two of several windows
        (lib / f.name).symlink_to(f)
    (lib / "broken.wav").write_bytes(b"RIFF not really")  # a failure travels too
    opts = ShardOptions(
        (str(lib),),
        str(tmp_path / "shards"),
        str(tiny_clap_dir),
        partitions=3,
        precision="fp32",
        device="cpu",
        runner="ray",
    )
    summary = run_ray(opts, actors=1, decode_batch_size=8)
    assert sorted(summary.done) == [0, 1, 2]
    assert (summary.files, summary.failed) == (40, 1)

    reference = tmp_path / "reference"
    run_index(
        IndexOptions((str(lib),), str(reference), str(tiny_clap_dir), workers=0, precision="fp32")
    )
    merged = tmp_path / "merged"
    merge([str(tmp_path / "shards")], str(merged), ann="memory")
    assert_same_index(merged, reference)

    # complete partitions are skipped; a lost shard is redone alone
    (tmp_path / "shards" / "part-00001-of-00003.shard").unlink()
    again = run_ray(opts, actors=1, decode_batch_size=8)
    assert again.done == [1] and sorted(again.skipped) == [0, 2]
    shutil.rmtree(tmp_path / "shards")
