"""AudioCaps (Kim et al. 2019): 10 s YouTube excerpts with human captions.

    ROOT/<split>.csv   columns: audiocap_id, youtube_id, start_time, caption (a row a caption;
                       rows sharing (youtube_id, start_time) are one clip)
    the audio: `pattern.format(youtube_id=..., start_time=..., audiocap_id=...)` under the audio
    folder (`audio_dir`, else ROOT/<split>/ if it exists, else ROOT)

Downloaders name files differently, hence the pattern; a pattern with `*` or `?` is globbed
(first match in sorted order). Splits: train, val, test.
"""

from __future__ import annotations

import bisect
import fnmatch
import os
from pathlib import Path

from clapsearch.datasets.base import RetrievalSet, expect_one_of, read_csv, retrieval_set
from clapsearch.datasets.registry import register_layout
from clapsearch.errors import UsageError

DEFAULT_AUDIOCAPS_PATTERN = "Y{youtube_id}.wav"


class _Listing:
    """A folder's file names, sorted once, for wildcard patterns: a glob per clip would list
    the folder once per clip (quadratic on AudioCaps train's ~50k files)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.names = sorted(os.listdir(folder)) if folder.is_dir() else []

    def first_match(self, pattern: str) -> Path | None:
        cut = min((pattern.find(ch) for ch in "*?[" if ch in pattern), default=len(pattern))
        prefix = pattern[:cut]
        for name in self.names[bisect.bisect_left(self.names, prefix) :]:
            if not name.startswith(prefix):
                break
            if fnmatch.fnmatchcase(name, pattern):
                return self.folder / name
        return None


def audiocaps_path(
    audio_dir: Path, pattern: str, row: dict[str, str], listing: _Listing | None = None
) -> Path:
    """Where `pattern` puts the clip of an AudioCaps row (`*`/`?` patterns match the first
    file in sorted order; a pattern with a `/` may only wildcard its last part)."""
    start = row["start_time"]
    try:
        start_num = float(start)
        start = str(int(start_num)) if start_num.is_integer() else start
    except ValueError:
        pass
    try:
        name = pattern.format(
            youtube_id=row["youtube_id"], start_time=start, audiocap_id=row.get("audiocap_id", "")
        )
    except (KeyError, IndexError, ValueError) as err:
        raise UsageError(
            f"audio pattern {pattern!r} may only use {{youtube_id}}, {{start_time}} and "
            f"{{audiocap_id}} ({err})."
        ) from err
    if not any(ch in name for ch in "*?["):
        return audio_dir / name
    folder, _, base = name.rpartition("/")
    if listing is None or listing.folder != audio_dir / folder:
        listing = _Listing(audio_dir / folder)
    return listing.first_match(base) or audio_dir / name


@register_layout(
    "audiocaps",
    "retrieval",
    default_split="test",
    expects="<split>.csv, audio by --audio-pattern under <split>/ or the root",
)
def load_audiocaps(
    root: str | Path,
    split: str | None = "test",
    pattern: str | None = DEFAULT_AUDIOCAPS_PATTERN,
    audio_dir: str | Path | None = None,
) -> RetrievalSet:
    """AudioCaps `split` (train, val or test) for text<->audio retrieval."""
    root = Path(root)
    split = split or "test"
    pattern = pattern or DEFAULT_AUDIOCAPS_PATTERN
    csv_path = expect_one_of(root, [f"{split}.csv"], "AudioCaps captions file")
    if audio_dir is None:
        audio_dir = root / split if (root / split).is_dir() else root
    rows = read_csv(csv_path, ["youtube_id", "start_time", "caption"])
    audio_dir = Path(audio_dir)
    folder = pattern.rpartition("/")[0]
    listing = _Listing(audio_dir / folder) if "{" not in folder else None
    clips: dict[tuple[str, str], tuple[str, Path, list[str]]] = {}
    for row in rows:
        key = (row["youtube_id"], row["start_time"])
        if key not in clips:
            path = audiocaps_path(audio_dir, pattern, row, listing)
            clips[key] = (f"{key[0]}_{key[1]}", path, [])
        clips[key][2].append(row["caption"])
    return retrieval_set(f"audiocaps/{split}", list(clips.values()))
