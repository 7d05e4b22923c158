"""Compute threads for query serving: torch's intra-op pool and FAISS's OpenMP pool.

Both pools are process-wide. A query is a few small matrix products; fanning one out over
threads buys little and costs barrier waits, which explode when other processes hold the
cores: on this project's shared 2-core machine a 9-token RoBERTa-base text encode took
1130 ms p50 on 2 threads vs 102 ms on 1, and a 10k-vector flat search 17.8 ms vs 2.5 ms
(docs/benchmarks.md). A query server gets its parallelism from concurrent requests instead.
So `Library` sets both pools ONCE, when it opens its index and when it loads its model
(`QUERY_THREADS` unless told otherwise), never per query: changing them per call would race
between threads of a server.
"""

from __future__ import annotations

import sys

QUERY_THREADS = 1


def set_compute_threads(n: int) -> None:
    """Set FAISS's OpenMP threads and, when torch is loaded, torch's intra-op threads to `n`.
    (torch not loaded yet: call again once it is; importing it here would cost seconds.)"""
    import faiss

    faiss.omp_set_num_threads(n)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def set_thread_compute_threads(n: int) -> None:
    """`set_compute_threads` for the CALLING thread. OpenMP keeps its thread count per thread
    (libgomp's nthreads ICV): a web server's worker thread, started after the count was set in
    the main thread, still fans FAISS out over every core. Measured on the shared 2-core machine
    (loaded): a 10k-vector flat search took 75 ms p50 in such a thread against 0.2 ms in the
    thread that had set 1. Call once in each thread that searches (`Library` does)."""
    import faiss

    faiss.omp_set_num_threads(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


__all__ = ["QUERY_THREADS", "set_compute_threads", "set_thread_compute_threads"]
