"""What clapsearch tells people once, unasked: that the built-in model is small.

An index built with the packaged default model (`ModelIdentity.kind == "default"`) gets the
notice the first time `clapsearch index` or `clapsearch query` uses it, and every time in
`clapsearch status`. "Once" is remembered by a marker file in the index folder
(`NOTICE_MARKER`); a read-only index folder just shows it again next time. The text is the
model card's "Notice text" (docs/model-card.md; a test keeps the two equal), followed by the
one command that switches an index to a public checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

NOTICE_MARKER = ".builtin-model-notice-shown"
PUBLIC_MODEL = "laion/larger_clap_general"

# == docs/model-card.md, section "Notice text" (tests/test_notices.py compares them)
BUILT_IN_MODEL = (
    "The built-in model is small and was trained offline on about 3,600 real recordings from "
    "Debian packages plus ESC-50 clips and generated sounds: it tells broad families apart "
    "(speech and its language, music and instruments, drums, animals, vehicles, explosions, "
    "water, footsteps) and gives the same results for 16-48 kHz files and MP3s, slightly worse "
    "ones for 8 kHz telephone audio. It is weak at fine distinctions (about 1 in 3 ESC-50 "
    "sounds named right among 50 classes) and on long free-form descriptions; for a real "
    "library, index with a LAION CLAP model (`--model laion/larger_clap_general`)."
)


def switch_command(folders: str = "DIR") -> str:
    """The one command that re-embeds an index with a public checkpoint."""
    return f"clapsearch index {folders} --reembed --model {PUBLIC_MODEL}"


def built_in_model_notice(folders: str = "DIR") -> str:
    """The notice, then how to switch (the hub id needs network once, or a downloaded copy
    or checkpoint file: README, "Models")."""
    return (
        f"note: {BUILT_IN_MODEL}\n"
        f"note: to switch this index: `{switch_command(folders)}` (downloads once; a local "
        f"copy or a LAION/MS-CLAP checkpoint file works too)."
    )


def uses_built_in_model(identity) -> bool:
    """Whether an index's `ModelIdentity` (or None) is the packaged default model (recorded
    by its alias, "default", so that it survives reinstalls)."""
    return identity is not None and identity.name == "default"


def first_time(index_dir: str | os.PathLike) -> bool:
    """True the first time it is asked for this index (and records the asking); False after.
    A folder that cannot record it answers True every time (better said twice than never)."""
    marker = Path(index_dir) / NOTICE_MARKER
    if marker.exists():
        return False
    try:
        marker.touch()
    except OSError:
        pass
    return True


__all__ = [
    "BUILT_IN_MODEL",
    "NOTICE_MARKER",
    "built_in_model_notice",
    "first_time",
    "switch_command",
    "uses_built_in_model",
]
