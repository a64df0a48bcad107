"""The framework a student reads: Module, the layers, their hand-written backward passes, the loss,
attention, causal convolutions, GPT and WaveGPT, and the optimisers. Everything else in minitorchnn
(data, training, the lab, data parallelism, the course tools) is built on this folder."""
from .attention import Block, FeedForward, MultiHeadAttention
from .conv import CausalConv1d, DepthwiseCausalConv1d, WaveNet, WaveNetLayer
from .gpt import GPT, LanguageModel
from .layers import GELU, Dropout, Embedding, Flatten, FlattenConsecutive, Linear, ReLU, Sequential, Tanh
from .loss import cross_entropy
from .module import Module
from .norm import BatchNorm1d, BatchNorm1dPerPosition, LayerNorm1d
from .optim import (SGD, AdamW, Constant, ExponentialDecay, Optimizer, StepDecay, WarmupCosine, clip_grad_norm,
                    make_schedule)
from .wavegpt import ParallelWaveGPT, WaveGPT

__all__ = [
    "GELU", "SGD", "AdamW", "BatchNorm1d", "BatchNorm1dPerPosition", "Block", "CausalConv1d", "Constant",
    "DepthwiseCausalConv1d", "Dropout", "Embedding", "ExponentialDecay", "FeedForward", "Flatten",
    "FlattenConsecutive", "GPT", "LanguageModel", "LayerNorm1d", "Linear", "Module", "MultiHeadAttention",
    "Optimizer", "ParallelWaveGPT", "ReLU", "Sequential", "StepDecay", "Tanh", "WarmupCosine", "WaveGPT", "WaveNet",
    "WaveNetLayer", "clip_grad_norm", "cross_entropy", "make_schedule",
]
