"""Interleaved timing of training steps, shared by the benchmarks: every step function runs the same batches
once per round, the order alternating from round to round, so that a slow moment of the machine hits all."""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile


def gpu_kernels_per_step(step: Callable, *args) -> int:
    """How many kernels (and copies) one call of step(*args) runs on the GPU, counted with torch.profiler.

    A small model on a GPU waits on launches, not arithmetic: each kernel costs the host a few
    microseconds to launch, so this count, not the FLOPs, sets the step time there."""
    step(*args)  # warm: the first call may pick kernels and allocate
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step(*args)
        torch.cuda.synchronize()
    return sum(1 for event in prof.events() if event.device_type == torch.autograd.DeviceType.CUDA)


def ops_per_step(step: Callable, *args) -> int:
    """How many operators one call of step(*args) dispatches, on any device, counted with torch.profiler.

    Each top-level aten operator (one not called from inside another) is what a GPU would launch as one
    kernel or a few, so this count follows the launch cost on a machine that has no GPU."""
    step(*args)  # warm: the first call may allocate
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(*args)
    return sum(1 for event in prof.events() if event.name.startswith("aten::") and
               not (event.cpu_parent is not None and event.cpu_parent.name.startswith("aten::")))


def time_rounds(steps: dict[str, Callable], batches: list[tuple], rounds: int,
                device: torch.device) -> dict[str, list[float]]:
    """Seconds per step of each step function (called as step(*batch)), one entry per round, after a warm-up."""

    def timed(step) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()  # the GPU runs ahead of Python: time the work, not the queueing
        start = time.perf_counter()
        for batch in batches:
            step(*batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / len(batches)

    for step in steps.values():  # warm up: first calls allocate and pick kernels
        timed(step)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        order = list(steps) if r % 2 == 0 else list(steps)[::-1]
        for name in order:
            times[name].append(timed(steps[name]))
    return times
