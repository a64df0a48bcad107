"""The step benchmarks run from the repository root as modules (python -m benchmarks.NAME), on the CPU.

Only that they run and print their ratio is checked: timings are never asserted in a test."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["gpt_step", "overhead"])
def test_a_step_benchmark_runs_from_the_repository_root(script):
    out = subprocess.run([sys.executable, "-m", f"benchmarks.{script}", "--steps", "2", "--rounds", "1"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "device cpu" in out.stdout and "ratio" in out.stdout
    assert re.search(r"operations per step \(top-level aten operators, torch.profiler\): minitorchnn \d+, ", out.stdout)


def test_the_threads_benchmark_times_each_model_at_each_thread_count():
    out = subprocess.run([sys.executable, "-m", "benchmarks.threads", "--models", "mlp", "--steps", "1", "--rounds",
                          "1"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "mlp" in out.stdout and "1 thread " in out.stdout and "2 threads " in out.stdout


def test_the_ddp_benchmark_prints_the_notebooks_table():
    """benchmarks.ddp_scaling and notebook 08 print workers.throughput_table through workers.format_throughput."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.ddp_scaling", "--steps", "1", "--rounds", "1",
                          "--warmup", "1"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for label in ("1 process, 1 thread ", "1 process, 2 threads ", "2 processes, 1 thread each "):
        assert re.search(rf"^{label}\s+[\d,]+ tokens/s\s+[\d.]+ ms per step", out.stdout, re.MULTILINE), out.stdout
    assert "batch 12 x 64 tokens per process, 1 steps after 1 of warm-up, median of 1 rounds" in out.stdout
    assert re.search(r"2 processes: [\d.]+x the tokens per second of 1 process, [\d.]+x that of 1 process with 2 "
                     r"threads", out.stdout)
