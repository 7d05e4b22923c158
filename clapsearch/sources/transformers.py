"""transformers CLAP models (`ClapModel`: LAION-CLAP on the hub, or a local copy):

- a folder whose `config.json` says `"model_type": "clap"`;
- a hub id ("laion/clap-htsat-unfused"): `owner/name`, not an existing path and without a
  file suffix; fetched once with network access, then read from the local cache
  (`HF_HUB_OFFLINE=1` never downloads).
Loaded as an `HFClapEmbedder`.
"""

from __future__ import annotations

import json
import re

from clapsearch.sources.registry import ModelSource, local_path, register_source

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w-]+")


def is_clap_folder(name: str) -> bool:
    config = local_path(name) / "config.json"
    if not config.is_file():
        return False
    return json.loads(config.read_text(encoding="utf-8")).get("model_type") == "clap"


def is_hub_id(name: str) -> bool:
    return bool(HUB_ID.fullmatch(name)) and not local_path(name).exists()


def _load(name, device, dtype, parts):
    from clapsearch.backends.hf import HFClapEmbedder

    return HFClapEmbedder(name, device, dtype)


SOURCE = register_source(
    ModelSource(
        kind="hf",
        formats="a transformers CLAP folder (config.json) or hub id",
        recognises=lambda name: is_clap_folder(name) or is_hub_id(name),
        load=_load,
        order=20,
    )
)
