"""Ctrl-C in the CLI: one line on stderr and exit code 130, whenever it comes, no traceback.

- During start-up (importing the commands, ~0.4 s): `quiet_until_running` installs a handler
  that writes the line and leaves at once; nothing needs cleaning up yet.
- During a command: `running` (called by `run_app`) puts Python's own handler back, so the
  command gets KeyboardInterrupt and its `finally` blocks run (the indexer ends its decode
  workers and closes the database; every committed file stays). Typer turns the interrupt
  into a silent `Exit(130)`; `run_app` recognises it and prints the line, or the command's
  own `Interrupted` sentence.
- Inside a native section (`clapsearch.sigint`: importing torch, loading a model), where a
  KeyboardInterrupt would abort the process from C++, the line is written and the process
  leaves at once (nothing to clean up: no transaction is open during a model load; decode
  workers see their socket close and leave).
- Once the line is printed, a second Ctrl-C during the interpreter's exit is ignored.
"""

from __future__ import annotations

import os
import signal
import threading

LINE = "Interrupted."


def _at_start(signum, frame) -> None:
    os.write(2, (LINE + "\n").encode())
    os._exit(130)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def quiet_until_running() -> None:
    if _main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _at_start)


def running() -> None:
    """Python's handler back (commands clean up on KeyboardInterrupt); inside native sections
    (`clapsearch.sigint`: torch's import, model loads) Ctrl-C leaves at once instead."""
    from clapsearch.sigint import set_exit_now

    if _main_thread() and signal.getsignal(signal.SIGINT) is _at_start:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    set_exit_now(lambda: _at_start(signal.SIGINT, None))


def leaving() -> None:
    """The line is out: ignore further Ctrl-C while the interpreter exits."""
    if _main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


__all__ = ["LINE", "leaving", "quiet_until_running", "running"]
