"""Training: TrainConfig, the loop (fit), RegisterModel, evaluation, sampling and checkpoints."""
from .checkpoint import CheckpointError
from .config import ConfigError, TrainConfig
from .evaluation import LossTable, estimate_loss, evaluate
from .loop import Step, TrainingDiverged, fit, print_every
from .register import RegisterModel
from .sampling import sample_names

__all__ = ["CheckpointError", "ConfigError", "LossTable", "RegisterModel", "Step", "TrainConfig", "TrainingDiverged",
           "estimate_loss", "evaluate", "fit", "print_every", "sample_names"]
