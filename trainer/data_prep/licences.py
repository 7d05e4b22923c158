"""Which harvested sound files the default model may train on, from Debian copyright files.

The rule (the model card repeats it): a file is kept only if every licence that may cover it
allows both using it to train a model and redistributing that model, i.e. a free licence
with no non-commercial or no-derivatives clause. Allowed families are listed in `ALLOWED`;
copyleft ones (GPL, CC-BY-SA, ...) are kept and marked `copyleft` in the manifest, so a
stricter policy can drop them (`harvest_debian --no-copyleft`). Anything not recognised is
refused: an unknown short name, a non-free word, a file no paragraph can be tied to.

Machine-readable (DEP-5) files give licences per `Files:` glob, written against the *source*
tree, while we see *installed* paths (`data/wav/x.ogg` is installed as
`usr/share/games/foo/wav/x.ogg`). So a glob is tried against every tail of the installed path;
the last matching paragraph wins (DEP-5's rule) and is the recorded licence. To stay safe, the
file is refused if any paragraph that might cover it without being matchable (its glob fits
no installed file and names audio or a sound folder) carries a refused licence.

Free-form copyright files are read as a whole: the licence families named in the text must
all be allowed (and at least one named), else the package is dropped.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

# Normalised family -> copyleft? (normalisation: lower case, version and "+" removed).
ALLOWED: dict[str, bool] = {
    "public-domain": False,
    "cc0": False,
    "cc-by": False,
    "expat": False,
    "mit": False,
    "bsd": False,
    "isc": False,
    "zlib": False,
    "apache": False,
    "artistic": False,
    "clarified-artistic": False,
    "x11": False,
    "wtfpl": False,
    "unlicense": False,
    "ofl": False,
    "cc-by-sa": True,
    "gpl": True,
    "lgpl": True,
    "agpl": True,
    "mpl": True,
    "cddl": True,
    "free-art": True,
}
REFUSED_WORDS = ("non-free", "nonfree", "proprietary", "noncommercial", "non-commercial")
_AUDIO_HINT = re.compile(
    r"(\.(ogg|oga|wav|flac|mp3|opus)\b|sound|sfx|audio|music|samples?/|voices?/|wav/|ogg/)",
    re.IGNORECASE,
)


def family(short: str) -> str:
    """`GPL-2+` -> `gpl`, `CC-BY-SA-3.0` -> `cc-by-sa`, `BSD-3-clause` -> `bsd`, `LGPL-2.1+
    with X exception` -> `lgpl`; unknown names come back normalised but unlisted."""
    s = short.strip().lower()
    s = re.sub(r"\s+with\s+.*$", "", s)  # "with OpenSSL exception"
    s = s.replace("_", "-").replace(" ", "-")
    s = re.sub(r"-(unported|international|generic)$", "", s)
    s = re.sub(r"(-\d+(\.\d+)*)-[a-z]{2}$", r"\1", s)  # a jurisdiction port: CC-BY-SA-3.0-us
    if s.startswith("cc0"):
        return "cc0"
    s = re.sub(r"(-only|-or-later|\+)$", "", s)
    s = re.sub(r"-?v?\d+(\.\d+)*(-clause)?\+?$", "", s)
    s = re.sub(r"-(only|or-later)$", "", s)
    aliases = {
        "public-domain": "public-domain",
        "publicdomain": "public-domain",
        "pd": "public-domain",
        "cc0-1.0": "cc0",
        "zlib-license": "zlib",
        "zlib/libpng": "zlib",
        "mit/x11": "mit",
        "gpl-2+-or-cddl": "gpl",
        "lal": "free-art",
        "fal": "free-art",
    }
    if s.startswith("bsd"):
        return "bsd"
    if s.startswith(("ofl", "sil-ofl")):
        return "ofl"
    return aliases.get(s, s)


def is_refused_name(short: str) -> bool:
    s = short.lower()
    return (
        any(w in s for w in REFUSED_WORDS)
        or "-nc" in s
        or "-nd" in s
        or family(short) not in ALLOWED
    )


def allowed(expression: str) -> bool:
    """A DEP-5 `License:` expression: `A or B` needs one allowed side, `A and B` (or `A, B`)
    needs all; an empty expression is refused."""
    expr = expression.strip()
    if not expr:
        return False
    alternatives = re.split(r"\s+or\s+", expr, flags=re.IGNORECASE)
    for alt in alternatives:
        parts = [p for p in re.split(r"\s+and\s+|,", alt, flags=re.IGNORECASE) if p.strip()]
        if parts and all(not is_refused_name(p) for p in parts):
            return True
    return False


def copyleft(expression: str) -> bool:
    """True when no allowed alternative of `expression` is free of copyleft."""
    for alt in re.split(r"\s+or\s+", expression.strip(), flags=re.IGNORECASE):
        parts = [p for p in re.split(r"\s+and\s+|,", alt, flags=re.IGNORECASE) if p.strip()]
        if parts and all(not is_refused_name(p) for p in parts):
            if not any(ALLOWED[family(p)] for p in parts):
                return False
    return True


@dataclass(frozen=True)
class Paragraph:
    """One `Files:` paragraph of a DEP-5 file: its globs and `License:` first line."""

    globs: tuple[str, ...]
    licence: str


@dataclass(frozen=True)
class Decision:
    """The verdict for one installed file: `licence` is what the manifest records."""

    keep: bool
    licence: str
    copyleft: bool
    reason: str = ""


def is_dep5(text: str) -> bool:
    return text.lstrip().lower().startswith("format:") and "copyright-format" in text[:300]


def parse_dep5(text: str) -> list[Paragraph]:
    """`Files:` paragraphs in order (continuation lines of `Files:` joined)."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                if key == "files":  # License continuation lines are its text, not its name
                    fields[key] += " " + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields and "license" in fields:
            licence = fields["license"].strip()
            globs = tuple(_unpacked(g) for g in fields["files"].split())
            paragraphs.append(Paragraph(globs, licence))
    return paragraphs


def _unpacked(glob: str) -> str:
    """A Hydrogen drum kit archive (`kits/X.h2drumkit`) is installed unpacked (`kits/X/...`)."""
    return glob[: -len(".h2drumkit")] + "/*" if glob.endswith(".h2drumkit") else glob


def _tails(path: str) -> list[str]:
    parts = PurePosixPath(path).parts
    return ["/".join(parts[i:]) for i in range(len(parts))]


def glob_matches(glob: str, path: str) -> bool:
    """DEP-5 globs: `*` matches any characters including `/`. Tried on every tail of the
    installed path, and with the glob's leading source folders dropped too (`etc/samples/x`
    is installed as `usr/share/pkg/samples/x`), as long as the glob tail still names something
    (not a bare `*`)."""
    if glob == "*":
        return True
    tails = _tails(path)
    for g in _tails(glob):
        if g.strip("*/?") == "":
            break
        if any(fnmatch.fnmatchcase(t, g) for t in tails):
            return True
    return False


class CopyrightPolicy:
    """Decisions for the files of one package, from its copyright file's text."""

    def __init__(self, text: str, installed: list[str]):
        self.dep5 = is_dep5(text)
        self.text = text
        if self.dep5:
            self.paragraphs = parse_dep5(text)
            self._unmatched_risky = [
                p
                for p in self.paragraphs
                if not any(g == "*" for g in p.globs)
                and not any(glob_matches(g, f) for g in p.globs for f in installed)
                and any(_AUDIO_HINT.search(g) for g in p.globs)
                and not allowed(p.licence)
            ]
        else:
            self.freeform = freeform_licences(text)

    def decide(self, path: str) -> Decision:
        if not self.dep5:
            fams = self.freeform
            if not fams:
                return Decision(False, "", False, "free-form copyright names no licence")
            if any(f not in ALLOWED for f in fams):
                return Decision(False, " and ".join(fams), False, "free-form: refused licence")
            licence = " and ".join(fams) + " (free-form copyright file)"
            return Decision(True, licence, any(ALLOWED[f] for f in fams))
        match = None
        for p in self.paragraphs:
            if not any(g == "*" for g in p.globs) and any(glob_matches(g, path) for g in p.globs):
                match = p
        if match is None:
            match = next((p for p in self.paragraphs if "*" in p.globs), None)
        if match is None:
            return Decision(False, "", False, "no Files paragraph covers it")
        if self._unmatched_risky:
            risky = self._unmatched_risky[0]
            return Decision(
                False, match.licence, False, f"unmatched paragraph {risky.globs[0]} is refused"
            )
        if not allowed(match.licence):
            return Decision(False, match.licence, False, f"licence {match.licence} is refused")
        return Decision(True, match.licence, copyleft(match.licence))


_FREEFORM = (
    ("lgpl", r"GNU (Lesser|Library) General Public License|\bLGPL"),
    ("gpl", r"GNU General Public License|\bGPL(-?[23]|v[23]|\b)"),
    ("cc-by-sa", r"Creative Commons Attribution[- ]Share[- ]?Alike|CC[- ]BY[- ]SA"),
    ("cc0", r"\bCC0\b|Creative Commons Zero"),
    ("public-domain", r"public domain"),
    ("expat", r"Permission is hereby granted, free of charge"),
    ("bsd", r"Redistribution and use in source and binary forms"),
    ("artistic", r"Artistic License"),
    ("non-free", r"non[- ]?commercial|NonCommercial|No ?Deriv|non-free|may not be sold"),
)


def freeform_licences(text: str) -> list[str]:
    """Licence families a free-form copyright file names, in a fixed order."""
    found = [name for name, pattern in _FREEFORM if re.search(pattern, text, re.IGNORECASE)]
    return found
