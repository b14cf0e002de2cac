"""Torch runtime choices shared by every embedder: device, CPU threads, precision, normalisation."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from core.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "int8")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")

_threads_lock = threading.Lock()
_threads_done = False


def cpu_count() -> int:
    """CPUs this process may run on (cgroup / affinity aware where the OS tells us)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads once: `num_threads`, or one per usable CPU.

    torch defaults to the machine's core count, which oversubscribes a container limited to
    fewer CPUs (every matmul then fights for cores). Returns the thread count in use.
    """
    global _threads_done
    import torch

    with _threads_lock:
        if num_threads is not None:
            torch.set_num_threads(max(1, num_threads))
        elif not _threads_done and torch.get_num_threads() > cpu_count():
            torch.set_num_threads(cpu_count())
        _threads_done = True
        return int(torch.get_num_threads())


def resolve_device(device: str) -> str:
    """"auto" -> cuda > mps > cpu. Raises ModelLoadError when an explicit device is absent."""
    import torch

    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device 'cuda' was requested but torch sees no CUDA GPU; use device 'auto' or 'cpu'")
    if device == "mps" and not has_mps:
        raise ModelLoadError(
            "device 'mps' was requested but this machine has no Apple MPS backend; use 'auto' or 'cpu'"
        )
    return device


def check_precision(precision: str, device: str) -> None:
    """ValueError unless the precision is known and runs on the device (int8 is CPU-only)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "int8" and device != "cpu":
        raise ValueError(f"precision 'int8' (dynamic quantization) runs on the CPU only, not on {device!r}")


def quantize_linear(model: Any) -> Any:
    """Dynamic int8 quantization of every nn.Linear (weights int8, activations quantized per batch).

    Only Linear layers change: attention / MLP blocks of transformers get ~1.5x faster on CPU,
    convolutions stay fp32.
    """
    import torch

    with warnings.catch_warnings():
        # torch.ao eager quantization is deprecated in favour of torchao; it still works and
        # torchao is not a dependency.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def has_conv(model: Any) -> bool:
    """True when the model contains a 2-D convolution (then channels_last memory helps on CPU)."""
    import torch

    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def to_numpy(features: torch.Tensor) -> np.ndarray:
    """(n, d) tensor on any device -> (n, d) float32 numpy array."""
    return np.ascontiguousarray(features.detach().float().cpu().numpy(), dtype=np.float32)
