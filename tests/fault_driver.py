"""Run `clapsearch index ARGS...` in this process and SIGKILL it the N-th time it reaches a
commit point of the protocol (docs/index-format.md), for tests/test_faults.py:

    python tests/fault_driver.py POINT N ARGS...

Points, in the order a run meets them:
    created        the database exists with its schema and meta row, no file yet
    in_txn         inside a transaction that adds or removes files, before its COMMIT
    committed      right after a group of files (one model forward) is committed
    failure        right after a failure is recorded
    pruned         right after vanished files are removed
    relinked       right after a moved file is relinked
    cache_unplaced the new cache file is written and fsynced, not yet renamed over ann.faiss
    cache_placed   ann.faiss replaced, the database has not recorded it yet
    cache_recorded the database recorded the cache, the writer not yet closed (WAL unmerged)
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    point, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    hits = [0]

    def reach(name: str) -> None:
        if name == point:
            hits[0] += 1
            if hits[0] >= n:
                os.kill(os.getpid(), signal.SIGKILL)

    import clapsearch.atomic as atomic
    import indexer.run as run
    import indexer.writer as writer

    def after(cls, method: str, name: str) -> None:
        real = getattr(cls, method)

        def wrapped(*a, **k):
            out = real(*a, **k)
            reach(name)
            return out

        setattr(cls, method, wrapped)

    real_bump = writer._bump

    def bump(conn):
        reach("in_txn")
        real_bump(conn)

    writer._bump = bump
    after(run, "_commit_group", "committed")
    after(writer.IndexWriter, "record_failure", "failure")
    after(writer.IndexWriter, "remove_files", "pruned")
    after(writer.IndexWriter, "relink", "relinked")
    real_create = writer.IndexWriter.create.__func__

    def create(cls, *a, **k):
        out = real_create(cls, *a, **k)
        reach("created")
        return out

    writer.IndexWriter.create = classmethod(create)
    real_replace = atomic.os.replace

    def replace(src, dst, *a, **k):
        if str(dst).endswith("ann.faiss"):
            reach("cache_unplaced")
            real_replace(src, dst, *a, **k)
            reach("cache_placed")
            return None
        return real_replace(src, dst, *a, **k)

    atomic.os.replace = replace
    after(writer.IndexWriter, "set_ann_info", "cache_recorded")

    from clapsearch.cli import main as cli_main

    sys.argv = ["clapsearch", "index", *args]
    cli_main()


if __name__ == "__main__":
    main()
