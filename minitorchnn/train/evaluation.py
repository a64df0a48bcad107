"""Measuring a model: the loss over whole splits, loss estimates on text, and the Loss Analysis table."""
from __future__ import annotations

import torch
from torch import Tensor

from ..nn.loss import cross_entropy
from ..nn.module import Module, inference


def device_of(model: Module) -> torch.device:
    """The device a model's weights live on (the CPU for a model without parameters)."""
    params = model.parameters()
    return params[0].device if params else torch.device("cpu")


@torch.no_grad()
def evaluate(model: Module, x: Tensor, y: Tensor, batch_size: int = 16384) -> float:
    """Mean cross entropy over all of (x, y), in eval mode without gradients; the mode is restored."""
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"evaluate got {len(x)} inputs and {len(y)} targets; expected the same number, at least 1")
    device = device_of(model)
    with inference(model):
        total = torch.zeros((), device=device)
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
            total += cross_entropy(model(xb), yb) * len(yb)
        return total.item() / len(x)


def estimate_loss(model: Module, dataset, eval_iters: int, batch_size: int, block_size: int,
                  seed: int = 1337) -> dict[str, float]:
    """Mean loss over eval_iters random batches of each split of a text corpus, drawn from a fixed seed so
    that every model is scored on the same batches; eval mode, no gradients, the mode restored."""
    device = device_of(model)
    out = {}
    with inference(model):
        for split in ("train", "val"):
            generator = torch.Generator().manual_seed(seed)
            total = torch.zeros((), device=device)
            for _ in range(eval_iters):
                xb, yb = dataset.get_batch(split, batch_size, block_size, generator=generator, device=device)
                total += cross_entropy(model(xb), yb)
            out[split] = total.item() / eval_iters
    return out


class LossTable:
    """Rows of losses per split, printed as an aligned table (the lectures' "Loss Analysis")."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols += [c for c in row if c not in cols]
        return cols

    def __add__(self, other: LossTable) -> LossTable:
        return LossTable(self.rows + other.rows)

    def __getitem__(self, key: str) -> float:
        """For a one-row table, the loss of a split: table["val"]."""
        if len(self.rows) != 1:
            raise KeyError("index a LossTable by split only when it has one row; use .rows")
        return self.rows[0][key]

    def _cells(self) -> list[list[str]]:
        fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
        return [[fmt(row.get(c, "")) for c in self.columns] for row in self.rows]

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cells) + " |" for cells in self._cells()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        table = [self.columns] + self._cells()
        widths = [max(len(r[i]) for r in table) for i in range(len(self.columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def split_losses(model: Module, splits: dict[str, tuple[Tensor, Tensor]], name: str, version: str) -> LossTable:
    """The loss on each split, as a one-row LossTable: model, version, train, val, test."""
    row: dict = {"model": name, "version": version}
    for split, (x, y) in splits.items():
        row[split] = evaluate(model, x, y)
    return LossTable([row])
