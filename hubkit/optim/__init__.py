"""hubkit.optim: optimizers and learning-rate schedulers with PyTorch's names and update rules."""

from hubkit.optim import lr_scheduler
from hubkit.optim.adagrad import Adagrad
from hubkit.optim.adam import Adam, AdamW
from hubkit.optim.optimizer import Optimizer
from hubkit.optim.rmsprop import RMSprop
from hubkit.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]
