"""minitorchnn: hand-written layers on raw torch tensors, for learning how language models work."""
from .attention import Block, Dropout, FeedForward, MultiHeadAttention
from .comparison import Comparison, Variant, compare
from .conv import CausalConv1d, WaveNet, WaveNetLayer
from .data import CharVocab, TextDataset, data_path, names_dataset, shakespeare_dataset
from .diagnostics import (UpdateRatioTracker, activation_stats, gradient_stats, plot_activations,
                          plot_gradients)
from .experiment import Experiment, ExperimentError, load_experiment
from .layers import (BatchNorm1d, BatchNorm1dPerPosition, Embedding, Flatten, FlattenConsecutive, LayerNorm1d,
                     Linear, ReLU, Sequential, Tanh)
from .loss import cross_entropy
from .models import MODELS, mlp, wavenet, wavenet_every_position
from .module import Module
from .gpt import GPT, LanguageModel
from .optim import SGD, AdamW, Constant, ExponentialDecay, StepDecay, WarmupCosine, clip_grad_norm
from .swap import TorchLayer, swap, to_torch
from .training import LossTable, RegisterModel, default_device
from .wavegpt import WaveGPT

__version__ = "0.1.0"

__all__ = [
    "BatchNorm1dPerPosition", "Comparison", "Experiment", "ExperimentError", "TorchLayer", "UpdateRatioTracker",
    "Variant", "activation_stats", "compare", "gradient_stats", "load_experiment", "plot_activations",
    "plot_gradients", "swap", "to_torch",
    "AdamW", "Block", "CausalConv1d", "Dropout", "FeedForward", "GPT", "LanguageModel", "MultiHeadAttention",
    "WaveGPT", "WaveNet", "WaveNetLayer", "clip_grad_norm",
    "BatchNorm1d", "CharVocab", "Constant", "Embedding", "ExponentialDecay", "Flatten", "FlattenConsecutive",
    "LayerNorm1d", "Linear", "LossTable", "MODELS", "Module", "ReLU", "RegisterModel", "SGD", "Sequential",
    "StepDecay", "Tanh", "WarmupCosine", "TextDataset", "cross_entropy", "data_path", "default_device", "mlp", "names_dataset",
    "shakespeare_dataset", "wavenet", "wavenet_every_position",
]
