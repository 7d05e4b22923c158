"""Read the tensors of a `.pth` / `.pt` file without running code from it, and peek at its keys.

Why not `torch.load(weights_only=True)`: released CLAP files do not all load that way (LAION's
hold numpy scalars under their pre-numpy-2 module path, and pickle opcodes the weights-only
unpickler refuses). Why not `weights_only=False`: that runs whatever the pickle names. Here the
standard unpickler resolves only tensor rebuilders, containers and numpy scalars; any other
global becomes an inert `Opaque` record (metadata such as an optimizer's or a training script's
objects is kept as data, never imported or called).

`peek_strings` reads only the pickle of a zip-format file (kilobytes: the keys and metadata,
not the tensors; the first 8 MiB of a legacy-format one), so recognising a 700 MB file by its
content costs milliseconds.
"""

from __future__ import annotations

import functools
import pickle
import pickletools
import re
import types
import zipfile
from pathlib import Path
from typing import Any

from clapsearch.errors import ModelLoadError

_ALLOWED = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
}


class Opaque:
    """Stands for any object the file names that is not a tensor or a container."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _opaque(module: str, name: str) -> type:
    return type(f"Opaque[{module}.{name}]", (Opaque,), {})


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        import torch

        if (module, name) in _ALLOWED or module == "numpy.dtypes":
            try:
                return super().find_class(module, name)
            except (ImportError, AttributeError):  # numpy.core <-> numpy._core (numpy 2)
                other = module.replace("._core", ".core") if "._core" in module else module
                if other == module:
                    other = module.replace(".core", "._core")
                return super().find_class(other, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return _opaque(module, name)


def _load(file, **kwargs):
    return _Unpickler(file, **kwargs).load()


_PICKLE = types.SimpleNamespace(Unpickler=_Unpickler, load=_load, __name__="clapsearch_safe")


def load_tensors_file(path: str | Path) -> Any:
    """The object a `torch.save` file holds, tensors on the CPU (see module doc)."""
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=_PICKLE)
    except Exception as err:  # a corrupt or foreign file: every failure reads the same
        raise ModelLoadError(f"{path} is not a readable PyTorch weights file ({err}).") from None


LEGACY_PEEK = 8 << 20  # the legacy format's object pickle (keys) precedes its tensor bytes
_KEYLIKE = re.compile(rb"[A-Za-z_][A-Za-z0-9_.]{2,200}")


@functools.lru_cache(maxsize=8)
def _peek(path: str, size: int, mtime_ns: int) -> frozenset[str] | None:
    try:
        if not zipfile.is_zipfile(path):
            return _peek_legacy(path)
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not names:
                return None
            data = archive.read(names[0])
    except (OSError, zipfile.BadZipFile):
        return None
    strings = set()
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if isinstance(arg, str) and ("UNICODE" in opcode.name or "STRING" in opcode.name):
                strings.add(str(arg))
    except Exception:  # a truncated pickle: what was read so far still tells the format
        pass
    return frozenset(strings)


def _peek_legacy(path: str) -> frozenset[str] | None:
    """Pre-1.6 `torch.save` files are pickles back to back (magic number, protocol, system
    info, the object, then raw tensor bytes): the object's key strings sit near the start."""
    with open(path, "rb") as fh:
        head = fh.read(LEGACY_PEEK)
    if not head.startswith(b"\x80"):  # not a pickle at all
        return None
    return frozenset(m.decode("ascii") for m in _KEYLIKE.findall(head))


def peek_strings(path: str | Path) -> frozenset[str] | None:
    """The strings in a `torch.save` file's pickle (its dict keys and names), read without
    its tensors: the zip format's `data.pkl`, or the key-like strings at the head of a legacy
    file; None for a file that is not a pickle at all."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return None
    if not path.is_file():
        return None
    return _peek(str(path), st.st_size, st.st_mtime_ns)


def state_dict_of(obj: Any, key: str, path: str | Path) -> dict:
    """`obj[key]` as a tensor dict, or one sentence saying the file is not what was expected."""
    import torch

    state = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path} has no {key!r} weights dictionary.")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def file_digest(path: str | Path) -> str:
    """A short content hash of a weights file: its size plus its first and last 8 MiB (fast for
    700 MB files; different weights differ there), so a renamed copy keeps its identity."""
    import hashlib

    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(8 << 20))
        if size > 16 << 20:
            fh.seek(-(8 << 20), 2)
            h.update(fh.read())
    return h.hexdigest()[:12]


__all__ = ["Opaque", "file_digest", "load_tensors_file", "peek_strings", "state_dict_of"]
