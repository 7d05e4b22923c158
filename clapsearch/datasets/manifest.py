"""Manifests: your own clips and captions as a CSV or JSONL file. The one rule, for eval,
training and data preparation alike:

- Format by suffix: `.jsonl` / `.json` is JSON Lines (one object a line, blank lines
  skipped); anything else is CSV with a header row (UTF-8, a BOM is fine).
- The audio file is the first non-empty of `audio`, `path`, `file_name`, `filename`, `file`.
  A relative path is resolved against `audio_root` when given, else the manifest's folder;
  `~` is expanded.
- Captions, in this order: the `captions` list (JSONL), `caption`, then `caption_1`,
  `caption_2`, ... in number order (caption_10 after caption_9). Blank captions are dropped,
  whitespace is stripped, and a caption repeated for the same clip counts once.
- Rows naming the same file are one clip: their captions are joined in row order.
- An optional `split` column: reading with `split="x"` keeps the rows whose split is `x`
  (an empty `split` keeps every row). An optional `source` column says where a clip came from.
- Optional keywords (class labels, tags) a caption can be written from: a `keywords` or
  `tags` list (JSONL) or a `;`-separated string (CSV).
- `iter_manifest` reads the same rows one at a time, in bounded memory (the trainer's
  streamed manifests): rows are not joined by file there, each row is one clip.
- A clip with no caption is a distractor for retrieval (ranked by every caption, never a
  query) and is not a training example.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from clapsearch.datasets.base import RetrievalSet, retrieval_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

AUDIO_KEYS = ("audio", "path", "file_name", "filename", "file")


@dataclass(frozen=True)
class ManifestClip:
    audio: str  # as written in the manifest
    path: Path  # resolved (module doc)
    captions: tuple[str, ...]
    split: str = ""
    source: str = ""
    keywords: tuple[str, ...] = ()


def _captions(record: dict) -> list[str]:
    captions: list = []
    if isinstance(record.get("captions"), list):
        captions.extend(record["captions"])
    if record.get("caption"):
        captions.append(record["caption"])
    numbered = sorted(
        (k for k in record if k.startswith("caption_") and k[8:].isdigit()),
        key=lambda k: int(k[8:]),
    )
    captions.extend(record[k] for k in numbered if record[k])
    return [str(c).strip() for c in captions if c is not None and str(c).strip()]


def _keywords(record: dict) -> tuple[str, ...]:
    value = record.get("keywords") or record.get("tags") or ()
    if isinstance(value, str):
        value = value.split(";")
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(dict.fromkeys(str(k).strip() for k in value if str(k).strip()))


def _iter_records(path: Path) -> Iterator[tuple[str, dict]]:
    """(where, record) per row, one row at a time (memory: one row): "m.jsonl line 3" /
    "m.csv row 4" for error messages."""
    try:
        if path.suffix.lower() not in (".jsonl", ".json"):
            with open(path, newline="", encoding="utf-8-sig") as f:
                for n, row in enumerate(csv.DictReader(f), start=2):
                    yield (
                        f"{path} row {n}",
                        {(k or "").strip(): (v or "").strip() for k, v in row.items()},
                    )
            return
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise UsageError(f"{path} line {n} is not valid JSON ({err.msg}).") from err
                if not isinstance(record, dict):
                    raise UsageError(f"{path} line {n} is not a JSON object.")
                yield f"{path} line {n}", record
    except UnicodeDecodeError as err:
        raise UsageError(f"{path} is not UTF-8 text ({err.reason}).") from err


def _clip_rows(
    path: str | Path, audio_root: str | Path | None, split: str
) -> Iterator[tuple[dict, str, Path, str]]:
    """(record, audio path as written, resolved path, its split) per row of `split` (every
    row when empty), one at a time: what `iter_manifest` and `read_manifest` build clips
    from. A missing manifest or a row without an audio path is one sentence."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"manifest {path} does not exist.")
    base = Path(audio_root).expanduser() if audio_root else path.parent
    for where, record in _iter_records(path):
        row_split = str(record.get("split") or "")
        if split and row_split != split:
            continue
        audio = next((record[k] for k in AUDIO_KEYS if record.get(k)), None)
        if not audio:
            raise UsageError(
                f"{where} has no audio path (expected one of {', '.join(AUDIO_KEYS)})."
            )
        yield record, str(audio), base / Path(str(audio)).expanduser(), row_split


def iter_manifest(
    path: str | Path, audio_root: str | Path | None = None, split: str = ""
) -> Iterator[ManifestClip]:
    """The rows of a manifest one at a time (module doc: not joined by file), by the same
    rule as `read_manifest` otherwise; memory does not grow with the manifest."""
    for record, audio, resolved, row_split in _clip_rows(path, audio_root, split):
        yield ManifestClip(
            audio=audio,
            path=resolved,
            captions=tuple(dict.fromkeys(_captions(record))),
            split=row_split,
            source=str(record.get("source") or ""),
            keywords=_keywords(record),
        )


def read_manifest(
    path: str | Path, audio_root: str | Path | None = None, split: str = ""
) -> list[ManifestClip]:
    """The clips of a manifest, by the rule of the module doc, in order of first appearance."""
    clips: dict[Path, ManifestClip] = {}
    for record, audio, resolved, row_split in _clip_rows(path, audio_root, split):
        old = clips.get(resolved)
        captions = (old.captions if old else ()) + tuple(_captions(record))
        keywords = (old.keywords if old else ()) + _keywords(record)
        clips[resolved] = ManifestClip(
            audio=old.audio if old else audio,
            path=resolved,
            captions=tuple(dict.fromkeys(captions)),
            split=old.split if old else row_split,
            source=old.source if old else str(record.get("source") or ""),
            keywords=tuple(dict.fromkeys(keywords)),
        )
    return list(clips.values())


@register_layout(
    "manifest", "retrieval", expects="a CSV or JSONL file (clapsearch.datasets.manifest)"
)
def load_manifest(
    path: str | Path, split: str | None = None, audio_root: str | Path | None = None
) -> RetrievalSet:
    """A manifest as a retrieval set; absent files are `missing`, uncaptioned ones distractors."""
    path = Path(path)
    clips = read_manifest(path, audio_root, split or "")
    if not clips:
        rows = f"has no rows for split {split!r}" if split else "lists no clips"
        raise UsageError(f"manifest {path} {rows}.")
    name = f"manifest/{path.name}" + (f":{split}" if split else "")
    return retrieval_set(name, [(c.audio, c.path, list(c.captions)) for c in clips])
