"""Benchmarks: retrieval (Clotho, AudioCaps, manifests) and zero-shot classification (ESC-50,
UrbanSound8K) scored by the literature's protocol.

`metrics` is pure numpy (importable by the trainer for validation without loading a model);
`clapsearch.datasets` parses the benchmark layouts; `retrieval` and `zeroshot` run a model over
them.
"""

from clapsearch.eval.metrics import retrieval_scores, zeroshot_accuracy

__all__ = ["retrieval_scores", "zeroshot_accuracy"]
