"""minitorchnn: hand-written layers on raw torch tensors, for learning how language models work."""
from .attention import Block, Dropout, FeedForward, MultiHeadAttention
from .conv import CausalConv1d, WaveNet, WaveNetLayer
from .data import CharVocab, TextDataset, data_path, names_dataset, shakespeare_dataset
from .layers import BatchNorm1d, Embedding, Flatten, FlattenConsecutive, LayerNorm1d, Linear, ReLU, Sequential, Tanh
from .loss import cross_entropy
from .models import MODELS, mlp, wavenet, wavenet_every_position
from .module import Module
from .gpt import GPT, LanguageModel
from .optim import SGD, AdamW, Constant, ExponentialDecay, StepDecay, WarmupCosine, clip_grad_norm
from .training import LossTable, RegisterModel, default_device
from .wavegpt import WaveGPT

__version__ = "0.1.0"

__all__ = [
    "AdamW", "Block", "CausalConv1d", "Dropout", "FeedForward", "GPT", "LanguageModel", "MultiHeadAttention",
    "WaveGPT", "WaveNet", "WaveNetLayer", "clip_grad_norm",
    "BatchNorm1d", "CharVocab", "Constant", "Embedding", "ExponentialDecay", "Flatten", "FlattenConsecutive",
    "LayerNorm1d", "Linear", "LossTable", "MODELS", "Module", "ReLU", "RegisterModel", "SGD", "Sequential",
    "StepDecay", "Tanh", "WarmupCosine", "TextDataset", "cross_entropy", "data_path", "default_device", "mlp", "names_dataset",
    "shakespeare_dataset", "wavenet", "wavenet_every_position",
]
