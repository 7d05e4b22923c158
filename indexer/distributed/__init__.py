"""Embedding past one machine: partitions -> shards (any runner) -> one merged index.

`partition` assigns files to partitions (stable across runs and machines), `shards` writes
and reads one atomic shard per partition, `runners` runs the single-machine indexer's stages
over the pending partitions (sequential, torchrun/SLURM ranks, or Ray via `ray_runner`), and
`merge` puts shards into an index database and one ANN cache (on-disk IVF-PQ when large).
"""
