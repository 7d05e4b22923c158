"""Text from the disk or the user, made safe to print: file names and queries may hold anything.

Human output (`shown`): control characters (C0, DEL, C1), bidirectional overrides and lone
surrogates are escaped, so a name cannot recolour the terminal, move the cursor, break a table
line or reorder what is printed after it. Escapes follow Python's: `\\n`, `\\t`, `\\r`,
`\\x1b` (below 0x80), `\\u0085`, `\\u202e`; a byte of a file name that is not valid UTF-8 (a lone surrogate
U+DC80..U+DCFF, how `os.fsdecode` keeps it) is shown as `\\xNN`, that byte. A backslash is
doubled, so the shown text is unambiguous: `unshown` gives back the exact string, and
`os.fsencode(unshown(s))` the name's bytes.

JSON output (`json_dumps`): UTF-8 JSON as usual (`ensure_ascii=False`), except that lone
surrogates are written as `\\udcNN` escapes: the document stays valid UTF-8, and a client that
decodes it the way Python does gets back the name exactly (`os.fsencode` -> its bytes).
"""

from __future__ import annotations

import json
import re
from typing import Any

_SIMPLE = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNSAFE = re.compile(
    "[\\\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPE = re.compile(r"\\(\\|n|t|r|x[0-9a-f]{2}|u[0-9a-f]{4})")


def _escape(m: re.Match) -> str:
    ch = m.group()
    if ch in _SIMPLE:
        return _SIMPLE[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the undecodable byte itself
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"  # \xNN >= 80: bytes only


def shown(text: Any) -> str:
    """`text` (a str, or anything `str()` takes) with every unsafe character escaped."""
    return _UNSAFE.sub(_escape, str(text))


def unshown(text: str) -> str:
    """The inverse of `shown` (tests, and users who paste a shown name back)."""

    def back(m: re.Match) -> str:
        esc = m.group(1)
        if esc in ("\\", "n", "t", "r"):
            return {"\\": "\\", "n": "\n", "t": "\t", "r": "\r"}[esc]
        code = int(esc[1:], 16)
        if esc[0] == "x" and code >= 0x80:
            return chr(0xDC00 + code)  # a raw byte of a non-UTF-8 name
        return chr(code)

    return _ESCAPE.sub(back, text)


def json_dumps(payload: Any) -> str:
    """`json.dumps(payload, ensure_ascii=False)`, lone surrogates as `\\udcNN` escapes."""
    text = json.dumps(payload, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


__all__ = ["json_dumps", "shown", "unshown"]
