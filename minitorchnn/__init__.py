"""minitorchnn: hand-written layers on raw torch tensors, for learning how language models work."""
from .attention import Block, FeedForward, MultiHeadAttention
from .checkpoint import CheckpointError
from .comparison import Comparison, Variant, compare
from .config import ConfigError, TrainConfig
from .conv import CausalConv1d, DepthwiseCausalConv1d, WaveNet, WaveNetLayer
from .corpus import TextDataset, TokenCorpus, shakespeare_dataset, text_dataset
from .data import CharVocab, data_path, names_dataset
from .diagnostics import UpdateRatioTracker, activation_stats, gradient_stats, plot_activations, plot_gradients
from .evaluation import LossTable, estimate_loss, evaluate
from .experiment import Experiment, ExperimentError, load_experiment
from .gpt import GPT, LanguageModel
from .layers import (GELU, BatchNorm1d, BatchNorm1dPerPosition, Dropout, Embedding, Flatten, FlattenConsecutive,
                     LayerNorm1d, Linear, ReLU, Sequential, Tanh)
from .loss import cross_entropy
from .models import MODELS, ModelSpec, mlp, wavenet, wavenet_every_position
from .module import Module
from .optim import (SGD, AdamW, Constant, ExponentialDecay, Optimizer, StepDecay, WarmupCosine, clip_grad_norm,
                    make_schedule)
from .sampling import sample_names
from .swap import TorchLayer, swap, to_torch
from .training import RegisterModel, Step, TrainingDiverged, default_device, fit, print_every
from .wavegpt import ParallelWaveGPT, WaveGPT

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "ConfigError", "ModelSpec", "Optimizer", "Step", "TokenCorpus", "TrainConfig",
    "TrainingDiverged", "estimate_loss", "evaluate", "fit", "make_schedule", "print_every", "sample_names",
    "text_dataset",
    "BatchNorm1dPerPosition", "Comparison", "Experiment", "ExperimentError", "TorchLayer", "UpdateRatioTracker",
    "Variant", "activation_stats", "compare", "gradient_stats", "load_experiment", "plot_activations",
    "plot_gradients", "swap", "to_torch",
    "AdamW", "Block", "CausalConv1d", "Dropout", "FeedForward", "GPT", "LanguageModel", "MultiHeadAttention",
    "WaveGPT", "ParallelWaveGPT", "DepthwiseCausalConv1d", "WaveNet", "WaveNetLayer", "clip_grad_norm",
    "BatchNorm1d", "CharVocab", "Constant", "Embedding", "ExponentialDecay", "Flatten", "FlattenConsecutive", "GELU",
    "LayerNorm1d", "Linear", "LossTable", "MODELS", "Module", "ReLU", "RegisterModel", "SGD", "Sequential",
    "StepDecay", "Tanh", "WarmupCosine", "TextDataset", "cross_entropy", "data_path", "default_device", "mlp",
    "names_dataset",
    "shakespeare_dataset", "wavenet", "wavenet_every_position",
]
