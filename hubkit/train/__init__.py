"""hubkit.train: a Trainer in PyTorch Lightning's spirit, its callbacks and metrics.

    from hubkit.train import Trainer, TrainModule, ModelCheckpoint, EarlyStopping

See :class:`Trainer` and :class:`TrainModule`; Lightning users will find the names they know.
"""

from hubkit.train import metrics
from hubkit.train._output import CSVLogger
from hubkit.train.callbacks import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint, Timer
from hubkit.train.module import TrainModule
from hubkit.train.trainer import Trainer

__all__ = ["CSVLogger", "Callback", "EarlyStopping", "LearningRateMonitor", "ModelCheckpoint", "Timer", "TrainModule",
           "Trainer", "metrics"]
