"""GPT: token and position embeddings, a stack of transformer blocks, a final LayerNorm and the head."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .attention import Block
from .layers import Dropout, Embedding, Linear
from .module import Module, check_setting, check_sizes, inference
from .norm import LayerNorm1d


class LanguageModel(Module):
    """A model mapping ids (B, T) to next-token logits (B, T, vocab_size); adds generate()."""

    block_size: int

    def check_length(self, idx: Tensor) -> None:
        self.expect(idx.ndim == 2, "expected token ids of shape (B, T), got {}", idx.shape)
        self.expect(idx.shape[1] <= self.block_size, "got {} tokens, more than block_size={}; crop the context "
                    "to its last {} tokens", idx.shape[1], self.block_size, self.block_size)

    def short_name(self) -> str:
        return type(self).__name__

    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None, seed: int | None = None) -> Tensor:
        """Append max_new_tokens sampled tokens to idx (B, T); runs in eval mode without gradients.

        idx is moved to the model's device; with seed, the random generator is made there too, so the
        same call works with the model on the CPU or a GPU.
        """
        check_generate(self, idx, max_new_tokens, temperature, top_k)
        device = self.parameters()[0].device
        idx = idx.to(device)
        if seed is not None:
            generator = torch.Generator(device=device).manual_seed(seed)
        with inference(self):
            for _ in range(max_new_tokens):
                context = idx[:, -self.block_size:]  # the model sees at most block_size tokens
                logits = self(context)[:, -1, :] / temperature  # (B, vocab_size): the last position's prediction
                if top_k is not None:  # keep the k most likely tokens, give the others probability 0
                    kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = torch.softmax(logits, dim=-1)
                next_id = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
                idx = torch.cat([idx, next_id], dim=1)
        return idx


def check_generate(model: LanguageModel, idx: Tensor, max_new_tokens: int, temperature: float,
                   top_k: int | None) -> None:
    """generate()'s arguments, each refused with its name before anything is sampled."""
    name = f"{type(model).__name__}.generate"
    check_sizes(name, minimum=0, max_new_tokens=max_new_tokens)
    check_setting(name, "temperature", temperature, 0, math.inf, "()")
    if top_k is not None:
        check_sizes(name, top_k=top_k)
    if idx.ndim != 2 or 0 in idx.shape:
        raise ValueError(f"{name}: expected a context of token ids of shape (B, T) with B, T >= 1, "
                         f"got {tuple(idx.shape)}; start from torch.zeros(1, 1, dtype=torch.long)")


def init_gpt_weights(model: Module, n_layer: int) -> None:
    """nanoGPT's initialisation: N(0, 0.02) weights, zero biases, and the projections back into the residual
    stream (attention's and the feed-forward net's `proj`) scaled by 1/sqrt(2 n_layer), so the stream does
    not grow with depth."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name.endswith("beta"):
                p.zero_()
            elif name.endswith("gamma"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02 / (2 * n_layer) ** 0.5 if name.endswith("proj.weight") else 0.02)


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
