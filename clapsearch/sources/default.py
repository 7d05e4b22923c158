"""The alias "default": the small offline model packaged in `clapsearch/assets/default_model`
(docs/model-card.md). Indexes record the alias, not the install path, so they survive
reinstalls; the packaged folder itself is loaded by the clapsearch-checkpoint source."""

from __future__ import annotations

from clapsearch.errors import ModelLoadError
from clapsearch.sources.registry import ModelSource, load_with_sources, register_source

ALIAS = "default"


def packaged_model_dir() -> str:
    """The packaged checkpoint folder, or one sentence saying it is not installed."""
    from clapsearch.assets import default_model_dir

    folder = default_model_dir()
    if folder is None:
        raise ModelLoadError(
            "The packaged default model is missing from this install (run `make default-model`); "
            "give --model or set CLAPSEARCH_MODEL."
        )
    return str(folder)


def _load(name, device, dtype, parts):
    embedder = load_with_sources(packaged_model_dir(), device, dtype, parts)
    embedder.model_identity = embedder.model_identity.with_name(ALIAS)
    return embedder


SOURCE = register_source(
    ModelSource(
        kind="default",
        formats='"default" (the packaged model)',
        recognises=lambda name: name == ALIAS,
        load=_load,
        order=0,
        canonical=lambda name: ALIAS,
    )
)
