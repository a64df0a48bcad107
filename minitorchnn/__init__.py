"""minitorchnn: hand-written layers on raw torch tensors, for learning how language models work."""
from .data import CharVocab, TextDataset, TokenCorpus, data_path, names_dataset, shakespeare_dataset, text_dataset
from .devices import default_device
from .lab import (Comparison, Experiment, ExperimentError, TorchLayer, UpdateRatioTracker, Variant, activation_stats,
                  compare, gradient_stats, load_experiment, plot_activations, plot_gradients, swap, to_torch)
from .models import MODELS, ModelSpec, mlp, wavenet, wavenet_every_position
from .nn import (GELU, GPT, SGD, AdamW, BatchNorm1d, BatchNorm1dPerPosition, Block, CausalConv1d, Constant,
                 DepthwiseCausalConv1d, Dropout, Embedding, ExponentialDecay, FeedForward, Flatten, FlattenConsecutive,
                 LanguageModel, LayerNorm1d, Linear, Module, MultiHeadAttention, Optimizer, ParallelWaveGPT, ReLU,
                 Sequential, StepDecay, Tanh, WarmupCosine, WaveGPT, WaveNet, WaveNetLayer, clip_grad_norm,
                 cross_entropy, make_schedule)
from .train import (CheckpointError, ConfigError, LossTable, RegisterModel, Step, TrainConfig, TrainingDiverged,
                    estimate_loss, evaluate, fit, print_every, sample_names)

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
