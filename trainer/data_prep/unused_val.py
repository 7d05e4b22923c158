"""Validation for the packaged default model: real clips of its training packages it never heard.

The default model trains on train + val of its corpus (`trainval.jsonl`), so the corpus's own
`val.jsonl` cannot tell whether more training helps, and the ESC-50 test split and the
held-out packages are the card's final measurements, never for choosing. What is left: the
Debian harvest keeps more clips than the corpus takes (at most 40 training clips of one
caption per package, speech capped per language), so some harvested clips of *training*
packages are in no corpus row. This picks those whose source file gave no clip to the corpus
(so no other piece of the same recording was heard), at most `per_caption` per canonical
caption (evenly spaced in path order, deterministic), and scores a model on them with the
held-out-package scorer (`evaluate_extra.heldout_packages`: caption retrieval where any clip
of the same caption counts, zero-shot among the captions, pooled over all packages).

    python -m trainer.data_prep.unused_val --out data/default-model/unused_val.jsonl
    python -m trainer.data_prep.unused_val --out data/default-model/unused_val.jsonl \
        --score runs/default_model/last [--json]

Same packages as training, so this measures generalisation to unseen recordings of familiar
sources, not to new sources (that is the held-out packages' job).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from trainer.data_prep.common import ClipRecord, read_manifest
from trainer.data_prep.debian_fetch import DEFAULT_CACHE

REPO = Path(__file__).resolve().parents[2]


def _rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def select(harvest: list[dict], used_paths: set[str], per_caption: int) -> list[ClipRecord]:
    """Harvest rows (dicts of the harvest manifest) of training packages that no corpus row
    uses and whose `(package, member)` file gave no used clip; at most `per_caption` a
    canonical caption, evenly spaced in path order."""
    used_files = {(r["package"], r["member"]) for r in harvest if r["path"] in used_paths}
    free = [
        r
        for r in harvest
        if r.get("split") == "train"
        and r["path"] not in used_paths
        and (r["package"], r["member"]) not in used_files
    ]
    by_caption: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(free, key=lambda r: r["path"]):
        by_caption[r["captions"][0]].append(r)
    picked: list[ClipRecord] = []
    for caption in sorted(by_caption):
        group = by_caption[caption]
        step = max(1, len(group) / per_caption) if per_caption else 1
        idx = sorted({int(i * step) for i in range(min(per_caption, len(group)))})
        picked += [
            ClipRecord(group[i]["path"], tuple(group[i]["captions"]), group[i]["source"], "val")
            for i in idx
        ]
    return picked


def score(model: str, rows: list[ClipRecord]) -> dict:
    from clapsearch.sources import load_embedder
    from trainer.data_prep.evaluate_default import _embed_files
    from trainer.data_prep.evaluate_extra import heldout_packages, overlap

    embedder = load_embedder(model, device="cpu", precision="fp32")
    result = heldout_packages(embedder, rows, _embed_files)
    result["overlap_with_training"] = overlap(Path(model), [r.path for r in rows])
    return {"model": embedder.identity, "clips": len(rows), **result}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="validation manifest (JSONL)")
    p.add_argument("--harvest", type=Path, default=DEFAULT_CACHE / "manifest.jsonl")
    p.add_argument("--corpus", type=Path, default=REPO / "data" / "default-model")
    p.add_argument("--per-caption", type=int, default=15)
    p.add_argument("--score", metavar="MODEL", help="score this model on --out")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if not a.out.is_file():
        from trainer.data_prep.common import write_manifest

        for name in ("trainval.jsonl", "heldout.jsonl"):
            if not (a.corpus / name).is_file():
                raise SystemExit(f"error: {a.corpus / name} is missing: build the corpus first.")
        used = {r["path"] for n in ("trainval.jsonl", "heldout.jsonl") for r in _rows(a.corpus / n)}
        picked = select(_rows(a.harvest), used, a.per_caption)
        write_manifest(picked, a.out)
        print(f"{len(picked)} clips, {len({r.captions[0] for r in picked})} captions -> {a.out}")
    if a.score:
        result = score(a.score, read_manifest(a.out))
        print(json.dumps(result, indent=2) if a.json else json.dumps(result))


if __name__ == "__main__":
    main()
