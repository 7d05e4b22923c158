"""`clapsearch serve`: warm HTTP search latency against in-process `Library.search`, and a
bounded load test, with the default model.

    .venv/bin/python benchmarks/bench_serve.py                      # 10k and 100k segments
    .venv/bin/python benchmarks/bench_serve.py --sizes 10000 --queries 100 --load-s 10

For each size: an index of synthetic window vectors (random files of 1-19 windows, each file a
cone around its own direction, dim = the default model's) written through
`IndexWriter.add_file` and recorded as built with the packaged default model, its FAISS cache
built by the indexer's own `indexer.ann.build_ann` (flat up to 50k windows, HNSW beyond, tuned
on the model's real text vectors). The vectors are synthetic; the text encoding is real: every
query below runs the default model's text tower.

1. in-process: `Library.search(text, k=10)` on a warm Library (what `clapsearch query` runs,
   minus its start-up), p50/p99 over `--queries` queries;
2. HTTP: the same queries as `GET /api/search?q=...&k=10` against `clapsearch serve` (a real
   process on 127.0.0.1, found through its server.json) over one keep-alive connection;
   overhead = HTTP p50 - in-process p50 (the same queries, the same run); the server's own
   time per request (its `Server-Timing` header: routing, the lock, the search, JSON) is
   reported too, and the round trip of `GET /api/health` (no search), so transport and
   scheduling between the two processes show apart;
3. load (largest size only): 16 client threads, each with its own keep-alive connection,
   for `--load-s` seconds against 127.0.0.1 only; throughput, p50/p99, errors.

Indexes are cached under `--workdir`. Prints one JSON line per measurement and a table.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WORKDIR = Path.home() / ".cache" / "clapsearch" / "bench-serve"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_query import QUERY_TEXTS as QUERIES  # noqa: E402  (the same 20 queries)


def build_index(folder: Path, n_segments: int, embedder) -> None:
    """~`n_segments` synthetic windows, the default model's identity, the indexer's cache."""
    from clapsearch.index.schema import FileRecord, IndexConfig
    from indexer.ann import PROBE_TEXTS, build_ann
    from indexer.writer import IndexWriter

    if folder.exists():
        shutil.rmtree(folder)
    rng = np.random.default_rng(0)
    dim, written, f, t0 = embedder.dim, 0, 0, time.perf_counter()
    with IndexWriter.create(folder, embedder.model_identity, IndexConfig()) as store:
        while written < n_segments:
            with store.snapshot():  # one transaction for many files: bulk load
                for _ in range(2000):
                    n = int(min(rng.integers(1, 20), n_segments - written))
                    if n <= 0:
                        break
                    center = rng.standard_normal(dim)
                    vecs = center / np.linalg.norm(center) + 0.5 * rng.standard_normal(
                        (n, dim)
                    ) / np.sqrt(dim)
                    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
                    spans = [(5.0 * i, 5.0 * i + 5.0) for i in range(n)]
                    path = f"/bench/library/{f % 100:02d}/{f:07d}.flac"
                    store.add_file(
                        FileRecord(path, 1000 + f, 0, f"h{f}", 5.0 * n, 48_000, 1), spans, vecs
                    )
                    written += n
                    f += 1
        report = build_ann(store, embedder.embed_text(list(PROBE_TEXTS)))
    print(
        f"  wrote {written} windows in {f} files, {report.index_type} cache "
        f"(recall@10 {report.recall_at_10}) in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )


def _cached(folder: Path, embedder) -> bool:
    """An index from an earlier run that is complete and recorded as built with the current
    default model (a repackaged model makes it stale: rebuilt)."""
    from clapsearch.index.reader import IndexReader

    if not (folder / "ann.faiss").exists():
        return False
    with IndexReader.open(folder) as reader:
        return reader.meta.model == embedder.identity


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values) * 1e3, q)), 2)


def in_process(folder: Path, embedder, n: int) -> list[float]:
    from clapsearch.library import Library

    out = []
    with Library(folder, embedder=embedder, notify=lambda m: None) as lib:
        for q in QUERIES:  # warm: caches loaded, pages touched
            lib.search(q, k=10)
        for i in range(n):
            t = time.perf_counter()
            lib.search(QUERIES[i % len(QUERIES)], k=10)
            out.append(time.perf_counter() - t)
    return out


class Server:
    """`clapsearch serve --port 0` on `folder`, found through its server.json."""

    def __init__(self, folder: Path):
        cmd = [sys.executable, "-m", "clapsearch.cli", "serve", "--index", str(folder)]
        self.proc = subprocess.Popen(
            [*cmd, "--port", "0"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        found = folder / "server.json"
        deadline = time.monotonic() + 300
        while not found.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start: {self.proc.stdout.read().decode()}")
            time.sleep(0.2)
        info = json.loads(found.read_text())
        assert info["host"] == "127.0.0.1"  # loopback only
        self.host, self.port = info["host"], info["port"]

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)


def get(conn: http.client.HTTPConnection, query: str, app_s: list | None = None) -> int:
    conn.request("GET", "/api/search?" + urlencode({"q": query, "k": 10}))
    r = conn.getresponse()
    r.read()
    if app_s is not None:  # the server's own time for this request (Server-Timing)
        app_s.append(float(r.getheader("server-timing").split("dur=")[1]) / 1e3)
    return r.status


def over_http(server: Server, n: int) -> tuple[list[float], list[float]]:
    """-> (client-side latencies, the server's own times) of `n` sequential queries."""
    conn = server.connection()
    for q in QUERIES:
        assert get(conn, q) == 200
    out, app = [], []
    for i in range(n):
        t = time.perf_counter()
        status = get(conn, QUERIES[i % len(QUERIES)], app)
        out.append(time.perf_counter() - t)
        assert status == 200
    conn.close()
    return out, app


def floor(server: Server, n: int) -> list[float]:
    """Round trips of `GET /api/health` (no search): the HTTP and scheduling floor."""
    conn = server.connection()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", "/api/health")
        r = conn.getresponse()
        r.read()
        out.append(time.perf_counter() - t)
    conn.close()
    return out


def load(server: Server, clients: int, seconds: float, max_requests: int = 200_000) -> dict:
    """`clients` threads, keep-alive each, for `seconds` (and at most `max_requests`)."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(c: int) -> None:
        conn = server.connection()
        i = c
        while time.monotonic() < stop_at and len(lat) < max_requests:
            t = time.perf_counter()
            try:
                ok = get(conn, QUERIES[i % len(QUERIES)]) == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = server.connection()
            dt = time.perf_counter() - t
            with lock:
                lat.append(dt)
                errors[0] += not ok
            i += clients
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": len(lat),
        "errors": errors[0],
        "rps": round(len(lat) / wall, 1),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--load-s", type=float, default=30.0)
    ap.add_argument("--workdir", type=Path, default=WORKDIR)
    args = ap.parse_args()

    from clapsearch.sources import load_embedder

    embedder = load_embedder("default", device="cpu")
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for n in sizes:
        folder = args.workdir / f"n{n}"
        if not _cached(folder, embedder):
            print(f"[{n} windows] building the index in {folder}", file=sys.stderr)
            build_index(folder, n, embedder)
        local = in_process(folder, embedder, args.queries)
        server = Server(folder)
        try:
            remote, app = over_http(server, args.queries)
            health = floor(server, args.queries)
            row = {
                "segments": n,
                "queries": args.queries,
                "library_p50_ms": pct(local, 50),
                "library_p99_ms": pct(local, 99),
                "http_p50_ms": pct(remote, 50),
                "http_p99_ms": pct(remote, 99),
                "server_p50_ms": pct(app, 50),
                "server_p99_ms": pct(app, 99),
                "health_p50_ms": pct(health, 50),
            }
            row["overhead_p50_ms"] = round(row["http_p50_ms"] - row["library_p50_ms"], 2)
            print(json.dumps(row), flush=True)
            rows.append(row)
            if n == max(sizes) and args.load_s > 0:
                result = dict(load(server, args.clients, args.load_s), segments=n)
                print(json.dumps(result), flush=True)
        finally:
            server.stop()
    print("\n| segments | Library.search p50 / p99 | HTTP p50 / p99 | overhead p50 |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['segments']:,} | {r['library_p50_ms']} / {r['library_p99_ms']} ms | "
            f"{r['http_p50_ms']} / {r['http_p99_ms']} ms | {r['overhead_p50_ms']} ms |"
        )


if __name__ == "__main__":
    main()
