"""Sampling names from a trained names model, one character at a time (makemore's generate loop)."""
from __future__ import annotations

import torch

from ..data.vocab import CharVocab
from .evaluation import device_of
from ..nn.module import Module, inference


def sample_names(model: Module, vocab: CharVocab, block_size: int, n: int, seed: int | None = None,
                 max_len: int = 50) -> list[str]:
    """n names: start from block_size '.' (id 0), draw each next character from the softmax, stop at '.'.

    The context and the random generator live on the model's device, so this works on a GPU too.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"sample expected a number of names >= 0, got {n!r}")
    if not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < 1:
        raise ValueError(f"sample expected max_len, the most characters of a name, >= 1, got {max_len!r}")
    if n == 0:
        return []
    device = device_of(model)
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    with inference(model):
        context = torch.zeros(n, block_size, dtype=torch.long, device=device)  # (n, T)
        drawn = []
        for _ in range(max_len):
            logits = model(context)
            if logits.ndim == 3:  # sequence models predict every position: keep the last
                logits = logits[:, -1]
            ix = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)  # (n, 1)
            drawn.append(ix)
            context = torch.cat([context[:, 1:], ix], dim=1)
            if len(drawn) % 8 == 0 and (torch.cat(drawn, 1) == 0).any(1).all():  # every name has ended
                break
    names = []
    for row in torch.cat(drawn, 1).tolist():
        ids = row[:row.index(0)] if 0 in row else row
        names.append(vocab.decode(ids))
    return names
