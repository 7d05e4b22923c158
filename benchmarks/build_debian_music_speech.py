"""A music-vs-speech task in GTZAN Music/Speech's layout, built from real recordings shipped in
Debian packages (NOT GTZAN): `clapsearch eval suite --root OUT --tasks gtzan_music_speech`.

- speech: the spoken stamp descriptions of `tuxpaint-stamps-default` (`*_desc_<lang>`, 44.1
  kHz, volunteers reading a sentence in their language, 0.3-2.4 s);
- music: one excerpt per track of the soundtracks in `wesnoth-1.16-music`, `openclonk-data`,
  `colobot-common-sounds` (its music tracks), `marsshooter-data` (its numbered tracks) and
  `flare-game` (its `*_theme` tracks), all 44.1 kHz.
Both come from the harvest cache of issue 14 (`python -m trainer.data_prep.harvest_debian
--fetch`: `/work/cache/debian-sounds/clips/<package>/<name>-<hash>.flac`, clips of at most
10 s). 64 of each are chosen by a hash of the file name (GTZAN has 64 + 64). Each music
excerpt is cut to the length of the speech clip it is paired with (starting 1 s in, or
earlier when the clip is too short), so clip length cannot tell the classes apart; sample
rates are the same. Nothing is resampled.

    .venv/bin/python benchmarks/build_debian_music_speech.py --out /tmp/debian-suite
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

import soundfile as sf

CLIPS = Path("/work/cache/debian-sounds/clips")
MUSIC = {
    "wesnoth-1.16-music": r".*",
    "openclonk-data": r".*",
    "colobot-common-sounds": r"(music\d+|Constructive|Humanitarian|Hv2|Infinite|Intro\d|Proton|Prototype|Quite)",
    "marsshooter-data": r"\d\d_.*",
    "flare-game": r".*_theme",
}
SPEECH = {"tuxpaint-stamps-default": r".*_desc_[a-z]{2}(_[A-Za-z]{2})?"}
N = 64


def _track(path: Path) -> str:
    return path.stem.rsplit("-", 1)[0]  # "<name>-<10 hex>" -> "<name>"


def _key(path: Path) -> str:
    return hashlib.sha1(path.name.encode()).hexdigest()


def pick(packages: dict[str, str], one_per_track: bool) -> list[Path]:
    chosen: dict[str, Path] = {}
    for pkg, pattern in packages.items():
        for path in sorted((CLIPS / pkg).glob("*.flac"), key=_key):
            if not re.fullmatch(pattern, _track(path)) or sf.info(str(path)).samplerate != 44100:
                continue
            group = f"{pkg}/{_track(path)}" if one_per_track else f"{pkg}/{path.name}"
            chosen.setdefault(group, path)
    return sorted(chosen.values(), key=_key)[:N]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    base = args.out / "gtzan_music_speech" / "music_speech"
    speech, music = pick(SPEECH, one_per_track=False), pick(MUSIC, one_per_track=True)
    if len(speech) < N or len(music) < N:
        raise SystemExit(f"only {len(speech)} speech and {len(music)} music clips in {CLIPS}")
    for folder in ("speech_wav", "music_wav"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    for s_path, m_path in zip(speech, music, strict=True):
        wave, sr = sf.read(str(s_path), dtype="float32")
        sf.write(str(base / "speech_wav" / f"{s_path.stem}.wav"), wave, sr, subtype="PCM_16")
        info = sf.info(str(m_path))
        start = min(sr, max(0, info.frames - len(wave)))
        excerpt, _ = sf.read(str(m_path), start=start, frames=len(wave), dtype="float32")
        sf.write(str(base / "music_wav" / f"{m_path.stem}.wav"), excerpt, sr, subtype="PCM_16")
    print(f"{N} speech + {N} music clips under {base}")


if __name__ == "__main__":
    main()
