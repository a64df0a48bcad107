"""Which device to train on: MINITORCHNN_DEVICE if set, else CUDA when present, else the CPU."""
from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    """MINITORCHNN_DEVICE if set (cpu, cuda, cuda:1, mps), else CUDA when present, else the CPU."""
    wanted = os.environ.get("MINITORCHNN_DEVICE")
    if wanted:
        try:
            return torch.device(wanted)
        except RuntimeError:
            raise ValueError(f"MINITORCHNN_DEVICE={wanted!r} is not a device; use cpu, cuda, cuda:1 or mps") from None
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
