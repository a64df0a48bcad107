"""minitorchnn: hand-written layers on raw torch tensors, for learning how language models work."""
from .data import CharVocab, TextDataset, data_path, names_dataset, shakespeare_dataset
from .layers import BatchNorm1d, Embedding, Flatten, FlattenConsecutive, LayerNorm1d, Linear, ReLU, Sequential, Tanh
from .loss import cross_entropy
from .models import MODELS, mlp, wavenet, wavenet_every_position
from .module import Module
from .optim import SGD, Constant, ExponentialDecay, StepDecay, WarmupCosine
from .training import LossTable, RegisterModel, default_device

__version__ = "0.1.0"

__all__ = [
    "BatchNorm1d", "CharVocab", "Constant", "Embedding", "ExponentialDecay", "Flatten", "FlattenConsecutive",
    "LayerNorm1d", "Linear", "LossTable", "MODELS", "Module", "ReLU", "RegisterModel", "SGD", "Sequential",
    "StepDecay", "Tanh", "WarmupCosine", "TextDataset", "cross_entropy", "data_path", "default_device", "mlp", "names_dataset",
    "shakespeare_dataset", "wavenet", "wavenet_every_position",
]
