"""clapsearch indexer: folder trees of audio -> a crash-safe, incremental index.

`scan` walks the roots, `plan` compares them with the index, `pipeline` decodes in worker
processes and embeds in batches, `ann` builds the FAISS cache, `run` wires them together.
The core (`clapsearch/`) never imports this package; `clapsearch.index` is the shared format
(read side), `indexer.writer.IndexWriter` every write.
"""

from indexer.run import IndexOptions, IndexSummary, run_index

__all__ = ["IndexOptions", "IndexSummary", "run_index"]
