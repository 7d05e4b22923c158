"""Model backends behind `clapsearch.embedder.Embedder`: `hf` (transformers ClapModel) and
`native` (clapsearch checkpoints written by the trainer)."""
