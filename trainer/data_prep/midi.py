"""A minimal Standard MIDI File writer (format 0), enough to drive fluidsynth.

Why not `mido`: the corpus needs note on/off, program change and tempo only, and one more
dependency for ~60 lines is not worth it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9  # General MIDI percussion


@dataclass(frozen=True)
class Note:
    """One note: `start` and `duration` in beats, `pitch` 0-127, `velocity` 1-127."""

    start: float
    duration: float
    pitch: int
    velocity: int = 90
    channel: int = 0


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(notes: list[Note], programs: dict[int, int], bpm: float = 120.0) -> bytes:
    """Notes plus `{channel: GM program}` -> the bytes of a format-0 `.mid` file."""
    events: list[tuple[int, int, bytes]] = []  # (tick, order, message); note-offs sort first
    for channel, program in sorted(programs.items()):
        events.append((0, 0, bytes([0xC0 | channel, program & 0x7F])))
    for n in notes:
        on = round(n.start * TICKS_PER_BEAT)
        off = round((n.start + n.duration) * TICKS_PER_BEAT)
        events.append((on, 2, bytes([0x90 | n.channel, n.pitch & 0x7F, n.velocity & 0x7F])))
        events.append((off, 1, bytes([0x80 | n.channel, n.pitch & 0x7F, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    tempo = round(60_000_000 / bpm)
    track = bytearray(b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big"))
    last = 0
    for tick, _, msg in events:
        track += _varlen(tick - last) + msg
        last = tick
    track += b"\x00\xff\x2f\x00"  # end of track
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def write_midi(path: Path, notes: list[Note], programs: dict[int, int], bpm: float = 120.0):
    Path(path).write_bytes(midi_bytes(notes, programs, bpm))
