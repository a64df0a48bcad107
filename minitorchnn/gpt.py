"""GPT: token and position embeddings, a stack of transformer blocks, a final LayerNorm and the head."""
from __future__ import annotations

import torch
from torch import Tensor

from .attention import Block, Dropout
from .layers import Embedding, LayerNorm1d, Linear
from .module import Module, inference


class LanguageModel(Module):
    """A model mapping ids (B, T) to next-token logits (B, T, vocab_size); adds generate()."""

    block_size: int

    def check_length(self, idx: Tensor) -> None:
        if idx.ndim != 2:
            raise ValueError(f"{type(self).__name__} expected token ids of shape (B, T), got {tuple(idx.shape)}")
        if idx.shape[1] > self.block_size:
            raise ValueError(f"{type(self).__name__} got {idx.shape[1]} tokens, more than block_size="
                             f"{self.block_size}; crop the context to its last {self.block_size} tokens")

    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> Tensor:
        """Append max_new_tokens sampled tokens to idx (B, T); runs in eval mode without gradients."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        with inference(self):
            for _ in range(max_new_tokens):
                context = idx[:, -self.block_size:]  # the model sees at most block_size tokens
                logits = self(context)[:, -1, :] / temperature  # (B, vocab_size)
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = torch.softmax(logits, dim=-1)
                next_id = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
                idx = torch.cat([idx, next_id], dim=1)
        return idx


def init_gpt_weights(model: Module, n_layer: int) -> None:
    """nanoGPT's initialisation: N(0, 0.02) weights, zero biases, and residual projections scaled by
    1/sqrt(2 n_layer) so the residual stream does not grow with depth."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name.endswith("beta"):
                p.zero_()
            elif name.endswith("gamma"):
                p.fill_(1.0)
            else:
                std = 0.02 / (2 * n_layer) ** 0.5 if name.endswith(("attn.proj.weight", "net.2.weight")) else 0.02
                p.normal_(0.0, std)


class GPT(LanguageModel):
    """A decoder-only transformer: ids (B, T) -> logits (B, T, vocab_size), for T <= block_size."""

    def __init__(self, vocab_size: int, block_size: int, n_embd: int, n_head: int, n_layer: int,
                 dropout: float = 0.0) -> None:
        self.vocab_size, self.block_size = vocab_size, block_size
        self.n_embd, self.n_head, self.n_layer = n_embd, n_head, n_layer
        self.token_embedding = Embedding(vocab_size, n_embd)
        self.position_embedding = Embedding(block_size, n_embd)
        self.dropout = Dropout(dropout)
        self.blocks = [Block(n_embd, n_head, block_size, dropout) for _ in range(n_layer)]
        self.ln_f = LayerNorm1d(n_embd)
        self.lm_head = Linear(n_embd, vocab_size)
        init_gpt_weights(self, n_layer)

    def embed(self, idx: Tensor) -> Tensor:
        """Token plus position embeddings: ids (B, T) -> (B, T, n_embd)."""
        self.check_length(idx)
        pos = torch.arange(idx.shape[1], device=idx.device)
        return self.dropout(self.token_embedding(idx) + self.position_embedding(pos))

    def forward(self, idx: Tensor) -> Tensor:
        x = self.embed(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))  # (B, T, vocab_size)

    def extra_repr(self) -> str:
        return (f"vocab_size={self.vocab_size}, block_size={self.block_size}, n_embd={self.n_embd}, "
                f"n_head={self.n_head}, n_layer={self.n_layer}")
