"""Kept for callers of the first release: `load_embedder` lives in `clapsearch.sources`."""

from clapsearch.sources import DEFAULT_MODEL, MODEL_ENV, load_embedder, resolve_model_name

__all__ = ["DEFAULT_MODEL", "MODEL_ENV", "load_embedder", "resolve_model_name"]
