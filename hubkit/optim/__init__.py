"""hubkit.optim: optimizers, learning-rate schedulers and SWA utilities with PyTorch's names and update rules."""

import importlib
from typing import Any

from hubkit.optim import lr_scheduler
from hubkit.optim.adadelta import Adadelta
from hubkit.optim.adafactor import Adafactor
from hubkit.optim.adagrad import Adagrad
from hubkit.optim.adam import Adam, AdamW
from hubkit.optim.adamax import Adamax
from hubkit.optim.asgd import ASGD
from hubkit.optim.lbfgs import LBFGS
from hubkit.optim.muon import Muon
from hubkit.optim.nadam import NAdam
from hubkit.optim.optimizer import Optimizer
from hubkit.optim.radam import RAdam
from hubkit.optim.rmsprop import RMSprop
from hubkit.optim.rprop import Rprop
from hubkit.optim.sgd import SGD
from hubkit.optim.sparse_adam import SparseAdam

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adadelta", "Adagrad", "Adamax", "ASGD", "LBFGS", "NAdam", "RAdam",
           "RMSprop", "Rprop", "SparseAdam", "Adafactor", "Muon", "lr_scheduler", "swa_utils"]


def __getattr__(name: str) -> Any:
    # swa_utils builds on hubkit.nn (AveragedModel is a Module); load it on first use so that importing
    # the optimizers does not import the layers
    if name == "swa_utils":
        return importlib.import_module("hubkit.optim.swa_utils")
    raise AttributeError(f"module 'hubkit.optim' has no attribute {name!r}")
