"""Where and how to train: the device (MINITORCHNN_DEVICE, else CUDA when present, else the CPU), whether
a run fits in its memory, and how many CPU threads suit a model of a given size."""
from __future__ import annotations

import os

import torch

from .nn.module import memory_bytes

DEVICE_TYPES = ("cpu", "cuda", "mps")
EXPECTED = "cpu, cuda, cuda:N or mps"


def parse_device(text, source: str = "device") -> torch.device:
    """A device this machine has, from text like "cuda:1"; a ValueError naming source (the option or
    variable it came from) otherwise: not a device, a GPU this machine lacks, or meta (which computes nothing)."""
    try:
        device = torch.device(text)
    except (RuntimeError, TypeError):
        raise ValueError(f"{source}: expected {EXPECTED}, got {text!r}") from None
    if device.type not in DEVICE_TYPES:
        raise ValueError(f"{source}: expected {EXPECTED}, got {text!r} (a {device.type} device cannot train here)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source}: got {text!r}, but this machine has no CUDA GPU (torch.cuda.is_available() "
                         f"is False); use cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"{source}: got {text!r}, but this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{source}: got {text!r}, but Apple's mps is not available on this machine; use cpu")
    return device


def default_device() -> torch.device:
    """MINITORCHNN_DEVICE if set (cpu, cuda, cuda:1, mps), else CUDA when present, else the CPU."""
    wanted = os.environ.get("MINITORCHNN_DEVICE")
    if wanted:
        return parse_device(wanted, "MINITORCHNN_DEVICE")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --- memory -----------------------------------------------------------------------------------------
BYTES_PER_PARAMETER = 16  # weight, gradient and up to two optimiser moments, float32 each
BYTES_PER_STEP = 64  # the loss kept on the device, and the loss and lr kept in the history as Python floats


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory the device has: the GPU's own, or the machine's RAM for the CPU (None if unknown)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return memory_bytes()  # the same reading the layers' constructors check their weights against


def check_memory(device: torch.device, needs: dict[str, int]) -> None:
    """Refuse a run whose estimated memory (bytes per setting: {"--steps": ..., ...}) exceeds the device's,
    before anything is allocated; the error names the setting that needs the most."""
    total, have = sum(needs.values()), device_memory(torch.device(device))
    if have is None or total <= have:
        return
    name, most = max(needs.items(), key=lambda item: item[1])
    share = f" ({_size(most)} for {name})" if len(needs) > 1 else ""
    raise ValueError(f"{name}: too large for this machine: training would need about {_size(total)} of memory"
                     f"{share}, and the {torch.device(device).type} has {_size(have)}")


def training_needs(n_parameters: int, steps: int, batch_size: int, example_bytes: int,
                   names=("the model", "steps", "batch_size")) -> dict[str, int]:
    """The memory a training run needs, by what sets it: the model, the number of steps, the batch."""
    model, steps_name, batch_name = names
    return {model: BYTES_PER_PARAMETER * n_parameters, steps_name: BYTES_PER_STEP * steps,
            batch_name: batch_size * example_bytes}


def example_bytes(block_size: int, vocab_size: int, sequence: bool) -> int:
    """A lower bound of the memory one example takes in a step: its token ids and targets (int64), and
    its logits (float32), one row per position for a sequence model, one row for a names model."""
    positions = block_size if sequence else 1
    return 8 * (block_size + positions) + 4 * positions * vocab_size


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit in ("bytes", "TB") else f"{n:.1f} {unit}"
        n /= 1000
    return ""


# --- threads ----------------------------------------------------------------------------------------
TORCH_THREADS = torch.get_num_threads()  # torch's own choice at start-up (one per core, or OMP_NUM_THREADS)
MANY_THREADS_FROM = 200_000  # parameters; benchmarks/threads.py: below it a second thread only waits


def threads_for(n_parameters: int, given: int | None = None) -> tuple[int, str]:
    """How many threads torch should use for a model of n_parameters, and why: `given` (--threads) first,
    then OMP_NUM_THREADS, else one thread for the small names models and torch's default for the GPTs."""
    if given is not None:
        return given, "--threads"
    if os.environ.get("OMP_NUM_THREADS"):
        return TORCH_THREADS, "OMP_NUM_THREADS"
    if n_parameters < MANY_THREADS_FROM:
        return 1, f"models under {MANY_THREADS_FROM:,} parameters run fastest on one"
    return TORCH_THREADS, f"torch's default for models of {MANY_THREADS_FROM:,} parameters or more"
