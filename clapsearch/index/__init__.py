"""The read side of an index: everything a query needs, nothing that writes.

    paths.py       where an index lives, its files, how audio paths are stored
    schema.py      the typed records read from the database
    tables.py      the SQLite tables, declared with SQLAlchemy (only the writer imports it)
    db.py          connections and the thread model (one SQLite connection per thread)
    vectors.py     float16 vector blobs, exact top-k and the one merge rule every path uses
    ann_cache.py   the FAISS cache file format (`ann.faiss`: header + index, atomic writes)
    ann_search.py  how a cache is searched (FAISS parameters, gap routing, exact re-rank)
    reader.py      `IndexReader`: snapshot reads, vector search corrected for a stale cache
    ranking.py     raw neighbours -> hits per file, filters, exclusions (`SearchHit`)

Every write (create, add/remove files, failures, model reset, the cache's metadata) is
`indexer.writer.IndexWriter`; the core library never imports it. docs/index-format.md has
the on-disk format and the commit protocol.
"""
