"""Captions for harvested sound files, from their path and file name: a curated map, no guessing.

A path becomes a set of normalised words (`words`): folder and file names split on
punctuation, digits and camelCase, lower-cased, plural "s" folded, and run-together names
("metalbang") split into known keywords when they split completely. A `Rule` lists the words
that must all be present (each slot may accept synonyms: `"explosion|explo|explode"`) and the
natural captions to use; among the rules that match, the most specific (most slots) wins, ties
going to the rule listed first. A file no rule matches is dropped: nothing is described
beyond what its name says. `None` words (`IGNORE`) veto nothing; `VETO` words drop the file
(a name like "unused" or "test" says the sound is not what the words describe).

Package-wide context that no file name carries (the language of a speech package) is given
by `PackageCaptions` in `caption_rules.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath


@dataclass(frozen=True)
class Rule:
    """`slots`: each a set of accepted words, all must be present; `captions`: first is the
    canonical short one (used when mixtures join two captions)."""

    slots: tuple[frozenset[str], ...]
    captions: tuple[str, ...]

    @classmethod
    def of(cls, pattern: str, *captions: str) -> Rule:
        """`Rule.of("glass break|shatter", "glass breaking", ...)`: slots separated by spaces,
        synonyms by `|`."""
        slots = tuple(frozenset(s.split("|")) for s in pattern.split())
        if not slots or not captions:
            raise ValueError(f"rule {pattern!r} needs words and captions")
        return cls(slots, tuple(captions))

    def matches(self, words: frozenset[str]) -> bool:
        return all(slot & words for slot in self.slots)


_SPLIT = re.compile(r"[^A-Za-z]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def _fold(word: str, known: frozenset[str]) -> str:
    """Plural and simple inflection folding, only towards a known word."""
    if word in known:
        return word
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ing", "e")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            base = word[: -len(suffix)] + repl
            if base in known:
                return base
    return word


def _segment(token: str, known: frozenset[str]) -> list[str] | None:
    """Split a run-together name into known words (each >= 3 letters) if it splits completely."""

    @cache
    def best(i: int) -> tuple[str, ...] | None:
        if i == len(token):
            return ()
        for j in range(len(token), i + 2, -1):
            piece = _fold(token[i:j], known)
            if piece in known:
                rest = best(j)
                if rest is not None:
                    return (piece, *rest)
        return None

    found = best(0)
    return list(found) if found else None


def words(path: str, known: frozenset[str]) -> frozenset[str]:
    """The normalised words of a path's folders and file stem (extension dropped)."""
    p = PurePosixPath(path)
    parts = [*p.parent.parts, p.stem]
    out: set[str] = set()
    for part in parts:
        for raw in _SPLIT.split(_CAMEL.sub(" ", part)):
            if not raw:
                continue
            w = _fold(raw.lower(), known)
            if w in known or len(w) < 6:
                out.add(w)
                continue
            seg = _segment(w, known)
            out.update(seg if seg else [w])
    return frozenset(out)


class CaptionMap:
    """Rules in priority order plus veto words; `captions(path)` -> tuple or None (drop)."""

    def __init__(self, rules: list[Rule], veto: frozenset[str] = frozenset()):
        self.rules = list(rules)
        self.veto = veto
        self.known = frozenset(w for r in rules for s in r.slots for w in s) | veto

    def match(self, path: str, ignore: frozenset[str] = frozenset()) -> Rule | None:
        """`ignore`: words not to read (a package's own name: "frozen-bubble" names a game,
        not bubbles)."""
        ws = words(path, self.known) - ignore
        if ws & self.veto:
            return None
        best: Rule | None = None
        for rule in self.rules:
            if rule.matches(ws) and (best is None or len(rule.slots) > len(best.slots)):
                best = rule
        return best

    def captions(self, path: str, ignore: frozenset[str] = frozenset()) -> tuple[str, ...] | None:
        rule = self.match(path, ignore)
        return rule.captions if rule else None
