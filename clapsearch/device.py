"""Where models run and in which precision."""

from __future__ import annotations

import functools
from typing import Literal

import torch

DeviceChoice = Literal["auto", "cpu", "cuda"]
PrecisionChoice = Literal["auto", "fp32", "bf16", "fp16"]


def resolve_device(choice: str = "auto") -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without one is a clear error."""
    from clapsearch.errors import UsageError

    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda was requested but no CUDA device is available.")
    if choice not in ("cpu",) and not choice.startswith("cuda"):
        raise UsageError(f"Unknown device {choice!r}; use auto, cpu or cuda.")
    return torch.device(choice)


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """bf16 matmuls beat fp32 only with native bf16 units (AMX, or AVX512-BF16 on Zen 4+);
    elsewhere they are emulated and slower. See docs/benchmarks.md for the measured ratio."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 on CUDA and on CPUs with native bf16, fp32 otherwise (parity tests use fp32)."""
    from clapsearch.errors import UsageError

    table = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision == "auto":
        if device.type == "cuda" or cpu_has_fast_bf16():
            return torch.bfloat16
        return torch.float32
    if precision not in table:
        raise UsageError(f"Unknown precision {precision!r}; use auto, fp32, bf16 or fp16.")
    return table[precision]
