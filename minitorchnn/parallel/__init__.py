"""Data parallelism: torch.distributed helpers (distributed.py) and notebook 08's workers (workers.py).

Import them by name (`from minitorchnn.parallel import distributed, workers`): the workers train with
the rest of the package, so loading them here would make every import of minitorchnn pay for it."""
