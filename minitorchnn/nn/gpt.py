"""GPT: token and position embeddings, a stack of transformer blocks, a final LayerNorm and the head."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .attention import Block
from .layers import Dropout, Embedding, LayerNorm1d, Linear
from .module import Module, check_sizes, inference


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
                 generator: torch.Generator | None = None, seed: int | None = None) -> Tensor:
        """Append max_new_tokens sampled tokens to idx (B, T); runs in eval mode without gradients.

        idx is moved to the model's device; with seed, the random generator is made there too, so the
        same call works with the model on the CPU or a GPU.
        """
        name = f"{type(self).__name__}.generate"
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(f"{name}: max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"{name}: temperature must be a finite number > 0, got {temperature!r}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"{name}: top_k must be an integer >= 1 (or None), got {top_k!r}")
        if idx.ndim != 2 or idx.shape[0] == 0 or idx.shape[1] == 0:
            raise ValueError(f"{name}: expected a context of token ids of shape (B, T) with B, T >= 1, "
                             f"got {tuple(idx.shape)}; start from torch.zeros(1, 1, dtype=torch.long)")
        device = self.parameters()[0].device
        idx = idx.to(device)
        if seed is not None:
            generator = torch.Generator(device=device).manual_seed(seed)
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
    """A decoder-only transformer: ids (B, T) -> logits (B, T, vocab_size), for T <= block_size.

    Everything after vocab_size is keyword-only, so n_head and n_layer cannot be swapped by accident.
    The defaults are the course's CPU configuration (818,241 parameters for 65 characters). nanoGPT's
    choices are options: bias=False (no biases in Linear and LayerNorm), activation="gelu", and
    tie_weights=True (the head reuses the token embedding, transposed, and has no bias).
    """

    def __init__(self, vocab_size: int, *, block_size: int = 64, n_embd: int = 128, n_head: int = 4,
                 n_layer: int = 4, dropout: float = 0.0, bias: bool = True, activation: str = "relu",
                 tie_weights: bool = False) -> None:
        check_sizes(type(self).__name__, vocab_size=vocab_size, block_size=block_size, n_embd=n_embd,
                    n_head=n_head, n_layer=n_layer)
        self.vocab_size, self.block_size = vocab_size, block_size
        self.n_embd, self.n_head, self.n_layer = n_embd, n_head, n_layer
        self.bias, self.activation, self.tie_weights = bias, activation, tie_weights
        self.token_embedding = Embedding(vocab_size, n_embd)
        self.position_embedding = Embedding(block_size, n_embd)
        self.dropout = Dropout(dropout)
        self.blocks = [self.make_block(layer, dropout) for layer in range(n_layer)]
        self.ln_f = LayerNorm1d(n_embd, bias=bias)
        self.lm_head = None if tie_weights else Linear(n_embd, vocab_size, bias)
        init_gpt_weights(self, n_layer)

    def make_block(self, layer: int, dropout: float) -> Block:
        """The transformer block at depth `layer` (0 = next to the embeddings); WaveGPT makes its own."""
        return Block(self.n_embd, self.n_head, self.block_size, dropout, self.bias, self.activation)

    def head(self, x: Tensor) -> Tensor:
        """The final LayerNorm and the output layer: (B, T, n_embd) -> logits (B, T, vocab_size)."""
        x = self.ln_f(x)
        if self.lm_head is None:  # tied: score each character by its own embedding vector
            return x @ self.token_embedding.weight.t()
        return self.lm_head(x)

    def embed(self, idx: Tensor) -> Tensor:
        """Token plus position embeddings: ids (B, T) -> (B, T, n_embd)."""
        self.check_length(idx)
        # positions 0..T-1 are the table's first T rows: a slice, no lookup (and no index check) needed
        pos = self.position_embedding.weight[: idx.shape[1]]  # (T, n_embd)
        return self.dropout(self.token_embedding(idx) + pos)

    def forward(self, idx: Tensor) -> Tensor:
        x = self.embed(idx)  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.head(x)  # (B, T, vocab_size)

    def extra_repr(self) -> str:
        nanogpt = "".join([", bias=False" if not self.bias else "",
                           f", activation={self.activation!r}" if self.activation != "relu" else "",
                           ", tie_weights=True" if self.tie_weights else ""])
        return (f"vocab_size={self.vocab_size}, block_size={self.block_size}, n_embd={self.n_embd}, "
                f"n_head={self.n_head}, n_layer={self.n_layer}{nanogpt}")
