"""Captions for the speech packages, whose file names give words, not sounds: the package or a
language code in the path says which language is spoken (the only thing captioned: speaker
gender and age are not recorded, so captions never guess them).

- `asterisk-core-sounds-<lang>-wav`: telephone system prompts read by a voice actor, 8 kHz;
- `ktuberling-data`: single words read aloud, one folder per language code;
- `tuxpaint-stamps-default`: `*_desc_<lang>.ogg` spoken descriptions and
  `symbols/math/<digit>_<lang>.ogg` spoken digits.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

LANGUAGES = {
    "be": "Belarusian",
    "bg": "Bulgarian",
    "ca": "Catalan",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "en_gb": "English",
    "es": "Spanish",
    "fi": "Finnish",
    "fr": "French",
    "ga": "Irish",
    "gl": "Galician",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "lt": "Lithuanian",
    "nl": "Dutch",
    "nn": "Norwegian",
    "pt": "Portuguese",
    "pt_br": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sl": "Slovenian",
    "sr": "Serbian",
    "sv": "Swedish",
    "uk": "Ukrainian",
    "zh_tw": "Chinese",
}


def prompt_captions(language: str) -> tuple[str, ...]:
    return (
        f"a voice speaking {language}",
        f"a recorded telephone announcement in {language}",
        f"someone speaking {language} on the phone",
        f"speech in {language}",
    )


def word_captions(language: str) -> tuple[str, ...]:
    return (
        f"a person saying a word in {language}",
        f"a single word spoken in {language}",
        f"speech in {language}",
    )


def sentence_captions(language: str) -> tuple[str, ...]:
    return (
        f"a person speaking {language}",
        f"someone reading a sentence aloud in {language}",
        f"speech in {language}",
    )


def number_captions(language: str) -> tuple[str, ...]:
    return (
        f"a person saying a number in {language}",
        f"counting aloud in {language}",
        f"speech in {language}",
    )


def _language(code: str) -> str | None:
    return LANGUAGES.get(code.lower().split("@")[0])


def speech_captions(package: str, path: str) -> tuple[tuple[str, ...] | None, str]:
    """-> (captions or None, group) for a speech package's file; `group` ("" when the
    package is not a speech package) lets the harvester cap clips per language.
    A file of a speech package whose language is unknown gets (None, "speech")."""
    m = re.fullmatch(r"asterisk-core-sounds-([a-z]{2})-wav", package)
    if m:
        lang = _language(m.group(1))
        return (prompt_captions(lang) if lang else None), f"speech:{m.group(1)}"
    parts = PurePosixPath(path).parts
    if package == "ktuberling-data" and "sounds" in parts:
        i = parts.index("sounds")
        code = parts[i + 1] if len(parts) > i + 2 else ""
        lang = _language(code)
        return (word_captions(lang) if lang else None), f"speech:{code}"
    if package == "tuxpaint-stamps-default":
        stem = PurePosixPath(path).stem
        m = re.search(r"_desc_([a-z]{2}(_[a-z]{2})?)$", stem, re.IGNORECASE)
        if m:
            lang = _language(m.group(1))
            return (sentence_captions(lang) if lang else None), f"speech:{m.group(1).lower()}"
        m = re.fullmatch(r"\d_([a-z]{2}(_[a-z]{2})?)", stem, re.IGNORECASE)
        if m and "math" in parts:
            lang = _language(m.group(1))
            return (number_captions(lang) if lang else None), f"speech:{m.group(1).lower()}"
        if re.fullmatch(r"\d", stem) and "math" in parts:
            return None, "speech"  # the default-language digits do not say their language
    return None, ""
