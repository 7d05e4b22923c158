"""Warm query latency: text encoder, vector search and metadata, exact vs ANN, 10k-1M segments.

    .venv/bin/python benchmarks/bench_query.py --sizes 10000,100000 [--queries 200]
    .venv/bin/python benchmarks/bench_query.py --sizes 1000000 --queries 100   # minutes; once
    .venv/bin/python benchmarks/bench_query.py --cold                          # cold start only

What runs is what `clapsearch query` runs: `Library.search_vectors` (FAISS through
`IndexReader.search`, per-file grouping with over-fetch, `IndexReader.segments` for paths and
times) on an index written through `IndexWriter.add_file`, its ANN cache built by the indexer's
own `indexer.ann.build_ann` (HNSW32 up to 300k vectors, IVF beyond; knob tuned to recall@10
>= 0.95 on text-like probes, IVF with gap-aware routing and exact re-ranking). "exact" is the same index with a flat inner-product cache.

Vectors are synthetic, with a modality gap like CLAP's: audio windows sit in one cone
(`normalize(m_audio + meaning + 0.7 g_file + 0.4 h_window)`), text queries in another
(`normalize(m_text + meaning + 0.7 n)`), where a meaning mixes 3 of 4096 atom directions, so
ANN recall is measured on the hard, text-like case. Files have 1-19 windows.

The text encoder is the laion/clap-htsat-unfused architecture (RoBERTa-base text tower, 512-d)
with random weights (no hub access here; time depends on shapes) and a small BPE vocabulary;
`encode` is timed on its own and `end-to-end` is `Library.search(text)` with that model.
Indexes are cached under `--workdir` (1M segments: ~1.1 GB of SQLite plus the FAISS caches).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DIM = 512
N_ATOMS = 4096
WORKDIR = Path.home() / ".cache" / "clapsearch" / "bench-query"
QUERY_TEXTS = [
    "dog barking in the rain",
    "a car engine starting on a cold morning",
    "birds singing",
    "footsteps on gravel",
    "a door slamming shut",
    "thunder rumbling far away",
    "a baby crying in another room",
    "glass breaking",
    "people talking in a busy cafe",
    "rain falling on a tin roof",
    "a church bell ringing",
    "waves crashing on a beach",
    "a train passing by",
    "typing on a mechanical keyboard",
    "a siren in the distance",
    "wind blowing through the trees",
    "a cat meowing",
    "someone coughing",
    "an airplane flying overhead",
    "water running from a tap",
]


# --- synthetic data -------------------------------------------------------------------------
class Space:
    """The synthetic embedding space. A sound's meaning is a random mix of 3 of `N_ATOMS`
    atom directions (a continuum of concepts, so IVF lists cannot line up with a few clusters);
    audio and text add their own modality mean and noise."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.atoms = self._unit(rng.standard_normal((N_ATOMS, DIM)))
        self.m_audio, self.m_text = self._unit(rng.standard_normal((2, DIM)))

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    def _meanings(self, rng, n: int) -> np.ndarray:
        picks = rng.integers(N_ATOMS, size=(n, 3))
        weights = rng.dirichlet(np.ones(3), size=n).astype(np.float32)
        return self._unit(np.einsum("nk,nkd->nd", weights, self.atoms[picks]))

    def audio_file(self, rng, n_windows: int) -> np.ndarray:
        """`(n_windows, DIM)` unit window vectors of one file."""
        center = (
            self.m_audio + self._meanings(rng, 1)[0] + 0.7 * self._unit(rng.standard_normal(DIM))
        )
        return self._unit(center + 0.4 * self._unit(rng.standard_normal((n_windows, DIM))))

    def text_queries(self, n: int, seed: int = 1) -> np.ndarray:
        rng = np.random.default_rng(seed)
        noise = self._unit(rng.standard_normal((n, DIM)))
        return self._unit(self.m_text + self._meanings(rng, n) + 0.7 * noise)


def build_index(folder: Path, n_segments: int, model) -> None:
    """Write ~`n_segments` windows through `IndexWriter.add_file`, 2000 files a transaction."""
    from clapsearch.index.schema import FileRecord, IndexConfig
    from indexer.writer import IndexWriter

    if folder.exists():
        shutil.rmtree(folder)
    space, rng = Space(), np.random.default_rng(0)
    written, t0 = 0, time.perf_counter()
    with IndexWriter.create(folder, model, IndexConfig()) as store:
        f = 0
        while written < n_segments:
            with store.snapshot():  # one transaction for many files: bulk load
                for _ in range(2000):
                    n = int(min(rng.integers(1, 20), n_segments - written))
                    if n <= 0:
                        break
                    vecs = space.audio_file(rng, n)
                    spans = [(10.0 * i, 10.0 * i + 10.0) for i in range(n)]
                    path = f"/bench/library/{f % 100:02d}/{f:07d}.flac"
                    record = FileRecord(path, 1000 + f, 0, f"h{f}", 10.0 * n, 48_000, 1)
                    store.add_file(record, spans, vecs)
                    written += n
                    f += 1
    print(f"  wrote {written} segments in {f} files in {time.perf_counter() - t0:.0f} s")


def ann_variant(
    folder: Path, kind: str, text_vectors: np.ndarray | None, ivf_nlist: int | None = None
) -> dict:
    """Install the `kind` ("exact" or "ann") FAISS cache for `folder`, building it once.

    ivf_nlist: build `IVF{nlist},Flat` with the indexer's own build and tuning steps instead
    of the type `build_ann` picks (its IVF4096 k-means over 1M points does not finish in a
    session on the shared 2-core machine)."""
    from dataclasses import replace

    from clapsearch.index.paths import ann_path
    from indexer.ann import build_ann
    from indexer.writer import IndexWriter

    forced = f"ivf{ivf_nlist}" if ivf_nlist is not None and kind == "ann" else None
    saved = folder / f"ann.{kind}.faiss"
    live = ann_path(folder)
    if saved.exists():
        shutil.copyfile(saved, live)
        from clapsearch.index.ann_cache import read_header

        return {"build_s": None, "params": read_header(live).params}
    with IndexWriter.open(folder) as store:
        big = 10**12 if kind == "exact" else 0
        store.set_config(replace(store.meta.config, exact_threshold=big))
        report = build_ann(store, text_vectors, kind=forced)
    shutil.copyfile(live, saved)
    print(
        f"  built {report.index_type} cache in {report.build_s:.0f} s, "
        f"recall@10 {report.recall_at_10}, {report.params}"
    )
    return {"build_s": report.build_s, "params": report.params}


# --- measurement ----------------------------------------------------------------------------
class TimedStore:
    """Wraps an IndexReader and accumulates the time spent in search and metadata calls."""

    def __init__(self, store):
        self.store, self.search_s, self.meta_s, self.filter_s = store, 0.0, 0.0, 0.0

    def search(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.store.search(*args, **kwargs)
        finally:
            self.search_s += time.perf_counter() - t

    def segments(self, ids):
        t = time.perf_counter()
        try:
            return self.store.segments(ids)
        finally:
            self.meta_s += time.perf_counter() - t

    def segment_ids_where(self, **kwargs):
        t = time.perf_counter()
        try:
            return self.store.segment_ids_where(**kwargs)
        finally:
            self.filter_s += time.perf_counter() - t

    def __getattr__(self, name):  # status, meta, close: the store's own
        return getattr(self.store, name)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q))


def measure_search(folder: Path, queries: np.ndarray, k: int = 10, filters=None) -> dict:
    """Warm per-query latency of `Library.search_vectors` (ms) and its ids for recall."""
    from clapsearch.library import Library

    lib = Library(folder)
    for q in queries:  # warm: FAISS cache loaded, every page these queries touch cached
        lib.search_vectors(q[None], k, filters)
    timed = lib._store = TimedStore(lib.store)  # Library.search_vectors, parts timed
    total, cpu, search, meta, filt, files = [], [], [], [], [], []
    for q in queries:
        timed.search_s = timed.meta_s = timed.filter_s = 0.0
        c, t = time.process_time(), time.perf_counter()
        hits = lib.search_vectors(q[None], k, filters)[0]
        total.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        search.append(timed.search_s)
        meta.append(timed.meta_s)
        filt.append(timed.filter_s)
        files.append([h.path for h in hits])
    lib._store = timed.store
    _, seg_ids = lib.store.search(queries, k)
    lib.close()
    return {
        "cpu_p50": pct(cpu, 50),
        "cpu_p99": pct(cpu, 99),
        "p50": pct(total, 50),
        "p99": pct(total, 99),
        "search_p50": pct(search, 50),
        "meta_p50": pct(meta, 50),
        "filter_p50": pct(filt, 50),
        "files": files,
        "segments": seg_ids,
    }


def knob_sweep(folder: Path, queries: np.ndarray, truth: np.ndarray) -> list[tuple]:
    """recall@10 vs exact and ms/query (FAISS search, plus the exact re-rank when the cache
    routes across the gap) for each efSearch / nprobe value, other parameters as tuned."""
    from dataclasses import replace

    import faiss

    from clapsearch.index.ann_cache import read_ann
    from clapsearch.index.ann_search import ann_search
    from clapsearch.index.reader import IndexReader
    from indexer.ann import EF_GRID, NPROBE_GRID

    cache = read_ann(folder / "ann.ann.faiss")
    kind, header = cache.header.index_type, cache.header
    key = "efSearch" if kind.startswith("hnsw") else "nprobe"
    grid = EF_GRID if key == "efSearch" else tuple(g for g in NPROBE_GRID if g <= int(kind[3:]))
    faiss.omp_set_num_threads(1)
    rows = []
    with IndexReader.open(folder) as store, store.snapshot() as conn:
        fetch = lambda ids: store._vectors_for(conn, ids)  # noqa: E731
        for value in grid:
            h = replace(header, params={**header.params, key: value})
            t = time.perf_counter()
            got = np.concatenate(
                [ann_search(h, cache.index, q[None], 10, fetch=fetch)[1] for q in queries]
            )
            ms = (time.perf_counter() - t) / len(queries) * 1e3
            rows.append((value, recall([list(g) for g in got], [list(r) for r in truth]), ms))
            if rows[-1][1] >= 0.995:
                break
    del cache
    return rows


def gap_routing(folder: Path, queries: np.ndarray, alphas=(0.0, 0.5, 1.0), nprobes=(8, 32, 96)):
    """Experiment: IVF routing across the modality gap. Search the IVF cache with the query
    moved towards the audio cone, `normalize(q + alpha * mu)` (`mu`: the unit mean of the IVF
    centroids), take 100 candidates, re-rank them exactly with the original `q` (vectors
    reconstructed from the cache). Prints recall@10 vs the flat cache and ms/query."""
    import faiss

    from clapsearch.index.ann_cache import read_ann

    flat = read_ann(folder / "ann.exact.faiss")
    _, truth = flat.index.search(queries, 10)
    del flat
    cache = read_ann(folder / "ann.ann.faiss")
    ivf = faiss.extract_index_ivf(cache.index)
    mu = ivf.quantizer.reconstruct_n(0, ivf.nlist).mean(0)
    mu /= np.linalg.norm(mu)
    ivf.make_direct_map()
    faiss.omp_set_num_threads(1)
    for alpha in alphas:
        shifted = queries + alpha * mu
        shifted /= np.linalg.norm(shifted, axis=1, keepdims=True)
        for nprobe in nprobes:
            t, got = time.perf_counter(), []
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            for q, s in zip(queries, shifted, strict=True):
                cand = cache.index.search(s[None], 100, params=params)[1][0]
                cand = cand[cand >= 0]
                vecs = np.stack([cache.index.reconstruct(int(c)) for c in cand])
                got.append(list(cand[np.argsort(-(vecs @ q))[:10]]))
            ms = (time.perf_counter() - t) / len(queries) * 1e3
            r = recall(got, [list(x) for x in truth])
            print(
                f"  gap routing alpha {alpha}, nprobe {nprobe:>3}: recall@10 {r:.3f}, "
                f"{ms:.1f} ms/query (search + exact re-rank of 100)"
            )


def recall(got: list, truth: list) -> float:
    return float(
        np.mean([len(set(g) & set(t)) / max(len(t), 1) for g, t in zip(got, truth, strict=True)])
    )


def text_model_dir() -> Path:
    """laion/clap-htsat-unfused shapes, random weights, a word-splitting BPE tokenizer."""
    from unittest import mock

    import clapsearch.synthetic_models as sm

    folder = Path.home() / ".cache" / "clapsearch" / "bench-models" / "clap-htsat-shape-words"
    if (folder / "model.safetensors").exists():
        return folder

    def tokenizer(path: Path, vocab_size: int | None = None):
        from tokenizers import ByteLevelBPETokenizer
        from transformers import RobertaTokenizerFast

        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(
            (sm._CORPUS + QUERY_TEXTS) * 4,
            vocab_size=400,
            min_frequency=1,
            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        )
        path.mkdir(parents=True, exist_ok=True)
        bpe.save_model(str(path))
        return RobertaTokenizerFast(
            vocab=str(path / "vocab.json"), merges=str(path / "merges.txt"), model_max_length=512
        )

    with mock.patch.object(sm, "_build_tokenizer", tokenizer):
        sm.build_random_clap(folder, "base", "rand_trunc")
    return folder


def measure_text(embedder, folder: Path | None, reps: int = 3) -> dict:
    """Text encoder alone, and `Library.search(text)` end to end (warm), per query, in ms."""
    import torch

    from clapsearch.library import Library
    from clapsearch.threads import set_compute_threads

    texts = QUERY_TEXTS * reps
    embedder.embed_text(texts[:2])
    out = {}
    default_pool = torch.get_num_threads()
    for name, n in (("pool", default_pool), ("1thread", 1)):  # default pool vs Library's
        set_compute_threads(n)
        enc = []
        for t in texts:
            s = time.perf_counter()
            embedder.embed_text([t])
            enc.append(time.perf_counter() - s)
        out[f"encode_{name}_p50"], out[f"encode_{name}_p99"] = pct(enc, 50), pct(enc, 99)
    if folder is not None:
        with Library(folder, embedder=embedder, notify=lambda m: None) as lib:
            lib.search(texts[0])
            e2e, cpu = [], []
            for t in texts:
                c, s = time.process_time(), time.perf_counter()
                lib.search(t, k=10)
                e2e.append(time.perf_counter() - s)
                cpu.append(time.process_time() - c)
        out.update(e2e_p50=pct(e2e, 50), e2e_p99=pct(e2e, 99), e2e_cpu_p50=pct(cpu, 50))
    return out


def cold_start(folder: Path, model_dir: Path, runs: int = 3) -> None:
    """Process start to printed results for `clapsearch query`, vs `python -c "import torch"`."""
    exe = Path(sys.executable).parent / "clapsearch"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmds = {
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "clapsearch --help": [str(exe), "--help"],
        "clapsearch query (missing index)": [str(exe), "query", "dog", "--index", "/nonexistent"],
        "clapsearch query (results printed)": [
            str(exe),
            "query",
            "dog barking in the rain",
            "--index",
            str(folder),
            "--device",
            "cpu",
        ],
    }
    for name, cmd in cmds.items():
        times = []
        for _ in range(runs):
            s = time.perf_counter()
            subprocess.run(cmd, env=env, capture_output=True, check=False)
            times.append(time.perf_counter() - s)
        print(
            f"cold  {name:<40} median {statistics.median(times):6.2f} s  "
            f"(runs: {', '.join(f'{t:.2f}' for t in times)})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--exact-queries",
        type=int,
        default=None,
        help="queries for the exact runs (default: --queries)",
    )
    ap.add_argument("--workdir", type=Path, default=WORKDIR)
    ap.add_argument("--cold", action="store_true", help="only the cold-start comparison")
    ap.add_argument(
        "--ivf-nlist",
        type=int,
        default=None,
        help="build IVF{n},Flat instead of the indexer's choice (see ann_variant)",
    )
    ap.add_argument(
        "--gap-routing",
        action="store_true",
        help="only the IVF modality-gap routing experiment (needs the built caches)",
    )
    ap.add_argument("--no-text", action="store_true", help="skip the text encoder")
    args = ap.parse_args()

    from clapsearch.index.ranking import SearchFilter
    from clapsearch.sources import load_embedder

    model_dir = text_model_dir()
    embedder = (
        None
        if args.no_text and not args.cold
        else load_embedder(str(model_dir), device="cpu", precision="fp32")
    )
    from clapsearch.identity import ModelIdentity

    synthetic = ModelIdentity(kind="bench", name=str(model_dir), label="synthetic", dim=DIM)
    model = embedder.model_identity if embedder is not None else synthetic
    space = Space()
    queries = space.text_queries(args.queries)
    probe_texts = space.text_queries(32, seed=7)  # the indexer's text probes (synthetic here)
    for n in [int(s) for s in args.sizes.split(",")]:
        folder = args.workdir / f"n{n}"
        if not (folder / "ann.exact.faiss").exists():
            print(f"[{n} segments] building index in {folder}")
            build_index(folder, n, model)
        if args.gap_routing:
            gap_routing(folder, queries[: args.exact_queries or 100])
            continue
        if args.cold:
            ann_variant(folder, "exact", probe_texts)
            cold_start(folder, model_dir)
            return
        ann_variant(folder, "exact", probe_texts)
        nq_exact = args.exact_queries or args.queries
        exact = measure_search(folder, queries[:nq_exact])
        from indexer.ann import HNSW_MAX

        nlist = args.ivf_nlist if n > HNSW_MAX else None  # build_ann picks HNSW up to there
        info = ann_variant(folder, "ann", probe_texts, nlist)
        ann = measure_search(folder, queries)
        filt = measure_search(
            folder, queries[:50], filters=SearchFilter(path_prefix="/bench/library/07/")
        )
        from clapsearch.index.reader import IndexReader

        with IndexReader.open(folder) as st:
            kind, r_build = st.meta.index_type, st.meta.recall_at_10
        seg_recall = recall(
            [list(r) for r in ann["segments"][:nq_exact]], [list(r) for r in exact["segments"]]
        )
        file_recall = recall(ann["files"][:nq_exact], exact["files"])
        print(f"[{n} segments] {kind} (build {info['build_s']} s, build-time recall@10 {r_build})")
        for name, r in (("exact", exact), (kind, ann), (f"{kind}+prefix 1%", filt)):
            print(
                f"  {name:<18} search+meta wall p50 {r['p50']:7.2f} ms p99 {r['p99']:7.2f} ms; "
                f"CPU p50 {r['cpu_p50']:6.2f} ms p99 {r['cpu_p99']:6.2f} ms "
                f"(wall search p50 {r['search_p50']:.2f}, metadata p50 {r['meta_p50']:.2f}"
                + (f", filter ids p50 {r['filter_p50']:.2f})" if r["filter_p50"] else ")")
            )
        print(
            f"  recall@10 {kind} vs exact on {nq_exact} text-like queries: segments "
            f"{seg_recall:.3f}, files {file_recall:.3f}"
        )
        knob = "efSearch" if kind.startswith("hnsw") else "nprobe"
        print(f"  tuned parameters: {info.get('params')}")
        for value, r, ms in knob_sweep(folder, queries[:nq_exact], exact["segments"]):
            print(f"    {knob} {value:>4}: recall@10 {r:.3f}, FAISS search {ms:.2f} ms/query")
        if embedder is not None:
            t = measure_text(embedder, folder)
            print(
                f"  text encode, torch pool: p50 {t['encode_pool_p50']:.1f} ms p99 "
                f"{t['encode_pool_p99']:.1f} ms; 1 thread: p50 {t['encode_1thread_p50']:.1f} ms "
                f"p99 {t['encode_1thread_p99']:.1f} ms; end-to-end Library.search(text) p50 {t['e2e_p50']:.1f} ms "
                f"p99 {t['e2e_p99']:.1f} ms (CPU p50 {t['e2e_cpu_p50']:.1f} ms)"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
