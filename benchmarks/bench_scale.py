"""Scale: N synthetic 512-d CLAP-like vectors (10M by default) in an on-disk IVF-PQ index,
queried memory-mapped with an exact re-rank, in at most 8 GB of memory.

    nice -n 15 /usr/bin/time -v .venv/bin/python benchmarks/bench_scale.py --n 10000000 \
        --stage gen          # then truth, train, add, merge, query (or --stage all)

Stages (each writes its output under --workdir/n<N>/ and is skipped when that exists, so a
killed run resumes; run them one by one to measure each stage's time and peak memory):

- gen: vectors generated in chunks with `bench_query.Space`'s model (audio windows in one cone,
  `normalize(m_audio + meaning + 0.7 g_file + 0.4 h_window)`, 1-19 windows a file) and stored
  as float16 (`vectors.f16`, what a clapsearch index stores), with each vector's file number
  (`file_of.i32`) and the unit mean of all vectors (the gap-routing axis).
- truth: exact top-`TRUTH_K` windows of each text-like query (`Space.text_queries`, the
  modality gap) by brute force over the float16 vectors, read in chunks: the reference for
  recall, per window and per file (a file's score is its best window's).
- train: `indexer.ondisk.train_ivfpq` on `64 * nlist` sampled vectors.
- add: `indexer.ondisk.add_shard` per shard of `--shard` vectors (ids = row numbers = segment
  ids), each written atomically; a re-run skips the shards already written.
- merge: `indexer.ondisk.merge_shards` -> one `.ivfdata` (codes + ids) and the `.index`.
- query: the index opened memory-mapped (`open_ondisk`), one query at a time on one thread:
  the query moved towards the audio mean (`route_alpha`, as the indexer's routed IVF caches
  are searched), `pool` candidates from the PQ codes, re-ranked exactly from the float16
  vectors (memory-mapped), best window per file. Timed cold (this benchmark's files dropped
  from the page cache with `posix_fadvise`, nothing else's) and warm (the same queries again).

Peak memory: every stage prints its `ru_maxrss`; wrap it in `/usr/bin/time -v` for the same
figure from outside. Streaming stages read the float16 file with `pread`, not a memory map,
so pages already used do not count in the resident set.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_query import DIM, Space  # noqa: E402  (the same synthetic space as the query bench)

WORKDIR = Path.home() / ".cache" / "clapsearch" / "bench-scale"
CHUNK = 250_000  # vectors generated / scanned at a time (0.5 GB as float32)
TRUTH_K = 256  # exact windows kept per query: >= 10 distinct files (a file has <= 19)
STAGES = ("gen", "truth", "train", "add", "merge", "query")


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def read_rows(path: Path, lo: int, hi: int) -> np.ndarray:
    """Rows [lo, hi) of the float16 vector file as float32, read with `pread` (no mmap)."""
    with open(path, "rb") as fh:
        buf = os.pread(fh.fileno(), (hi - lo) * DIM * 2, lo * DIM * 2)
    return np.frombuffer(buf, dtype="<f2").reshape(-1, DIM).astype(np.float32)


def drop_cache(*paths: Path) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


# --- stages -----------------------------------------------------------------------------------
def stage_gen(d: Path, n: int) -> None:
    """Files of 1-19 windows until n windows, CHUNK windows at a time, float16 on disk.

    Resumable: chunk c is a pure function of c (its own seed, file numbers counted from the
    progress file), written at its offset, and the progress file is replaced after it."""
    space = Space()
    progress = d / "gen.progress.json"
    state = {"next": 0, "files": 0, "sum": [0.0] * DIM}
    if progress.exists():
        state = json.loads(progress.read_text())
    mode = "r+b" if state["next"] else "wb"
    with open(d / "vectors.f16.part", mode) as vf, open(d / "file_of.i32.part", mode) as ff:
        if not state["next"]:
            vf.truncate(n * DIM * 2)
            ff.truncate(n * 4)
        for c in range(state["next"], n, CHUNK):
            rng = np.random.default_rng([1, c])
            want = min(CHUNK, n - c)
            sizes = rng.integers(1, 20, size=want)  # more files than needed, cut below
            sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), want)) + 1]
            sizes[-1] -= int(sizes.sum()) - want
            centers = (
                space.m_audio
                + space._meanings(rng, len(sizes))
                + 0.7 * unit(rng.standard_normal((len(sizes), DIM), dtype=np.float32))
            )
            noise = unit(rng.standard_normal((want, DIM), dtype=np.float32))
            noise *= 0.4
            noise += np.repeat(centers, sizes, axis=0)
            vecs = unit(noise)
            os.pwrite(vf.fileno(), vecs.astype("<f2").tobytes(), c * DIM * 2)
            f0 = state["files"]
            fid = np.repeat(np.arange(f0, f0 + len(sizes), dtype=np.int32), sizes)
            os.pwrite(ff.fileno(), fid.tobytes(), c * 4)
            vf.flush()
            ff.flush()
            os.fsync(vf.fileno())
            os.fsync(ff.fileno())
            total = np.asarray(state["sum"]) + vecs.sum(0, dtype=np.float64)
            state = {"next": c + want, "files": f0 + len(sizes), "sum": total.tolist()}
            progress.write_text(json.dumps(state))
            print(f"  gen {c + want}/{n} ({state['files']} files), peak {peak_gb():.2f} GB")
            sys.stdout.flush()
    os.replace(d / "vectors.f16.part", d / "vectors.f16")
    os.replace(d / "file_of.i32.part", d / "file_of.i32")
    mean = unit(np.asarray(state["sum"], np.float32)[None])[0]
    meta = {"n": n, "files": state["files"], "mean": mean.tolist()}
    (d / "meta.json").write_text(json.dumps(meta))


def stage_truth(d: Path, n: int, n_queries: int) -> None:
    """Exact top-TRUTH_K windows per query over every stored (float16) vector."""
    q = Space().text_queries(n_queries)
    best_s = np.full((n_queries, 0), -np.inf, np.float32)
    best_i = np.zeros((n_queries, 0), np.int64)
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        s = q @ read_rows(d / "vectors.f16", lo, hi).T
        part = np.argpartition(-s, TRUTH_K, axis=1)[:, :TRUTH_K]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], 1)
        best_i = np.concatenate([best_i, part + lo], 1)
        keep = np.argsort(-best_s, axis=1, kind="stable")[:, :TRUTH_K]
        best_s = np.take_along_axis(best_s, keep, 1)
        best_i = np.take_along_axis(best_i, keep, 1)
        if (lo // CHUNK) % 8 == 0:
            print(f"  truth {hi}/{n}, peak {peak_gb():.2f} GB", flush=True)
    np.savez(d / "truth.npz", queries=q, scores=best_s, ids=best_i)


def stage_train(d: Path, n: int, nlist: int, m: int) -> None:
    from indexer.ondisk import train_ivfpq

    size = min(n, 64 * nlist)
    rng = np.random.default_rng(2)
    rows = np.sort(rng.choice(n, size=size, replace=False))
    vecs = np.memmap(d / "vectors.f16", dtype="<f2", mode="r", shape=(n, DIM))
    sample = np.empty((size, DIM), np.float32)
    for lo in range(0, size, 1 << 16):  # sorted rows: sequential-ish reads, bounded copies
        sample[lo : lo + (1 << 16)] = vecs[rows[lo : lo + (1 << 16)]]
    del vecs
    print(f"  training IVF{nlist},PQ{m} on {size} vectors", flush=True)
    train_ivfpq(sample, nlist, m, d / "trained.index")


def stage_add(d: Path, n: int, shard: int) -> None:
    from indexer.ondisk import add_shard

    (d / "shards").mkdir(exist_ok=True)
    for s, lo in enumerate(range(0, n, shard)):
        out = d / "shards" / f"shard-{s:04d}.index"
        if out.exists():
            continue
        hi = min(n, lo + shard)
        t = time.perf_counter()
        add_shard(d / "trained.index", read_rows(d / "vectors.f16", lo, hi), np.arange(lo, hi), out)
        print(
            f"  shard {s}: {hi - lo} vectors in {time.perf_counter() - t:.0f} s, "
            f"peak {peak_gb():.2f} GB",
            flush=True,
        )


def stage_merge(d: Path) -> None:
    from indexer.ondisk import merge_shards

    shards = sorted((d / "shards").glob("shard-*.index"))
    merge_shards(d / "trained.index", shards, d, "merged")


def route(q: np.ndarray, mean: np.ndarray, alpha: float) -> np.ndarray:
    return unit((1 - alpha) * q + alpha * mean) if alpha else q


def stage_query(d: Path, n: int, args) -> dict:
    """Latency and recall for each (nprobe, pool) on the text-like queries; one thread."""
    import faiss

    from indexer.ondisk import open_ondisk

    faiss.omp_set_num_threads(1)
    truth = np.load(d / "truth.npz")
    queries, t_ids = truth["queries"], truth["ids"]
    mean = np.asarray(json.loads((d / "meta.json").read_text())["mean"], np.float32)
    vecs = np.memmap(d / "vectors.f16", dtype="<f2", mode="r", shape=(n, DIM))
    vecs._mmap.madvise(mmap.MADV_RANDOM)  # 1 KB rows at random: no read-ahead around them
    file_of = np.memmap(d / "file_of.i32", dtype=np.int32, mode="r", shape=(n,))
    t_files = [top_files(ids, file_of) for ids in t_ids]
    index = open_ondisk(d / "merged.index")
    ivf = faiss.extract_index_ivf(index)
    rows = []
    for alpha in [float(a) for a in args.alphas.split(",")]:
        for nprobe in [int(x) for x in args.nprobes.split(",")]:
            for pool in [int(x) for x in args.pools.split(",")]:
                ivf.nprobe = nprobe
                row = {"alpha": alpha, "nprobe": nprobe, "pool": pool}
                for phase in ("cold", "warm"):
                    if phase == "cold":
                        drop_cache(d / "vectors.f16", d / "merged.ivfdata")
                    times, got_seg, got_files = [], [], []
                    for q in queries:
                        t = time.perf_counter()
                        seg, files = search_one(index, q, mean, alpha, pool, vecs, file_of)
                        times.append(time.perf_counter() - t)
                        got_seg.append(seg)
                        got_files.append(files)
                    ms = np.asarray(times) * 1e3
                    row[f"{phase}_p50"] = float(np.percentile(ms, 50))
                    row[f"{phase}_p99"] = float(np.percentile(ms, 99))
                seg_r = np.mean([len(set(g) & set(t[:10])) / 10 for g, t in zip(got_seg, t_ids)])
                file_r = np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got_files, t_files)])
                row.update(recall_segments=float(seg_r), recall_files=float(file_r))
                rows.append(row)
                print(
                    f"  alpha {alpha} nprobe {nprobe:>4} pool {pool:>5}: recall@10 segments "
                    f"{seg_r:.3f} files {file_r:.3f}; cold p50 {row['cold_p50']:.1f} p99 "
                    f"{row['cold_p99']:.1f} ms; warm p50 {row['warm_p50']:.1f} p99 "
                    f"{row['warm_p99']:.1f} ms; peak {peak_gb():.2f} GB",
                    flush=True,
                )
    return {"rows": rows}


def top_files(ids: np.ndarray, file_of, k: int = 10) -> list[int]:
    """The first k distinct files of windows sorted best first."""
    out: list[int] = []
    for f in file_of[np.asarray(ids)]:
        if int(f) not in out:
            out.append(int(f))
            if len(out) == k:
                break
    return out


def search_one(index, q, mean, alpha, pool, vecs, file_of) -> tuple[list[int], list[int]]:
    """One query: routed PQ search for `pool` candidates, exact re-rank from the float16
    vectors, top-10 windows and top-10 files (a file scores its best window)."""
    _, cand = index.search(route(q[None], mean, alpha), pool)
    cand = np.sort(cand[0][cand[0] >= 0])
    exact = vecs[cand].astype(np.float32) @ q  # sorted ids: one pass through the mapping
    order = cand[np.argsort(-exact, kind="stable")]
    return [int(i) for i in order[:10]], top_files(order, file_of)


def size_report(d: Path) -> dict:
    names = ("vectors.f16", "file_of.i32", "trained.index", "merged.index", "merged.ivfdata")
    out = {p: (d / p).stat().st_size for p in names if (d / p).exists()}
    out["shards"] = sum(p.stat().st_size for p in (d / "shards").glob("*.index"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--stage", default="all", help=f"one of {', '.join(STAGES)}, or all")
    ap.add_argument("--workdir", type=Path, default=WORKDIR)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--nlist", type=int, default=4096)
    ap.add_argument("--m", type=int, default=64, help="PQ bytes per vector")
    ap.add_argument("--shard", type=int, default=1_000_000)
    ap.add_argument("--threads", type=int, default=None, help="faiss OpenMP threads (build)")
    ap.add_argument("--alphas", default="0.35")
    ap.add_argument("--nprobes", default="16,32,64")
    ap.add_argument("--pools", default="200,500,1000")
    args = ap.parse_args()

    import faiss

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    d = args.workdir / f"n{args.n}"
    d.mkdir(parents=True, exist_ok=True)
    done = {
        "gen": (d / "meta.json").exists(),
        "truth": (d / "truth.npz").exists(),
        "train": (d / "trained.index").exists(),
        "add": len(list((d / "shards").glob("shard-*.index"))) == -(-args.n // args.shard)
        if (d / "shards").exists()
        else False,
        "merge": (d / "merged.index").exists(),
        "query": False,
    }
    stages = STAGES if args.stage == "all" else (args.stage,)
    log = d / "results.json"
    results = json.loads(log.read_text()) if log.exists() else {}
    for stage in stages:
        if done[stage]:
            print(f"[{stage}] done before, skipped")
            continue
        print(f"[{stage}] n={args.n} in {d}", flush=True)
        t, c = time.perf_counter(), time.process_time()
        extra = None
        if stage == "gen":
            stage_gen(d, args.n)
        elif stage == "truth":
            stage_truth(d, args.n, args.queries)
        elif stage == "train":
            stage_train(d, args.n, args.nlist, args.m)
        elif stage == "add":
            stage_add(d, args.n, args.shard)
        elif stage == "merge":
            stage_merge(d)
        else:
            extra = stage_query(d, args.n, args)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        results[stage] = {
            "wall_s": wall,
            "cpu_s": cpu,
            "peak_rss_gb": peak_gb(),
            "load_avg": os.getloadavg()[0],
            **(extra or {}),
        }
        results["sizes"] = size_report(d)
        log.write_text(json.dumps(results, indent=1))
        print(
            f"[{stage}] wall {wall:.0f} s, CPU {cpu:.0f} s, peak RSS {peak_gb():.2f} GB, "
            f"load avg {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    print(json.dumps(results.get("sizes", {})))


if __name__ == "__main__":
    main()
