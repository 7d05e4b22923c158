"""Ctrl-C while C++ code runs Python callbacks: held, never raised inside them.

Python raises KeyboardInterrupt in whatever Python code runs when the signal is handled; when
that code is a callback called from C++ (importing torch registers Python-side operators
through pybind11; model loading does more of the same), the exception cannot cross back into
C++ and the process aborts (`terminate called after throwing ... KeyboardInterrupt`, exit
code -6: measured in about one in four Ctrl-Cs one second into `clapsearch index`).

`native_section()` covers such code: a Ctrl-C inside is held and raised as KeyboardInterrupt
when the section ends, or, when a program has registered `set_exit_now(fn)` (the CLI does:
print its line, leave with 130), `fn` is called at once, so a slow model load does not delay
it. Only the main thread handles signals; elsewhere the section does nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_exit_now: Callable[[], None] | None = None


def set_exit_now(fn: Callable[[], None] | None) -> None:
    """What a Ctrl-C inside a native section does at once (it must not return), or None to
    hold the interrupt until the section ends."""
    global _exit_now
    _exit_now = fn


@contextmanager
def native_section() -> Iterator[None]:
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # another handler is in charge (or not the main thread): leave it be
        return
    held: list[int] = []

    def hold(signum, frame) -> None:
        if _exit_now is not None:
            _exit_now()
        held.append(signum)

    signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if held:
        raise KeyboardInterrupt


__all__ = ["native_section", "set_exit_now"]
