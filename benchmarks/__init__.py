"""Speed and memory benchmarks: run each from the repository root, `python -m benchmarks.overhead`."""
