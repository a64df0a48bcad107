"""The instructor's lab: fair comparisons over seeds, experiment files, swapping layers, diagnostics."""
from .comparison import Comparison, Variant, compare
from .diagnostics import UpdateRatioTracker, activation_stats, gradient_stats, plot_activations, plot_gradients
from .experiment import Experiment, ExperimentError, load_experiment
from .swap import TorchLayer, swap, to_torch

__all__ = ["Comparison", "Experiment", "ExperimentError", "TorchLayer", "UpdateRatioTracker", "Variant",
           "activation_stats", "compare", "gradient_stats", "load_experiment", "plot_activations", "plot_gradients",
           "swap", "to_torch"]
