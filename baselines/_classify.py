"""The image-classification recipe the vision baselines share: a TrainModule around any model, with
accuracy tracked by ``hubkit.train.metrics`` (exact over batches of unequal size)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import hubkit.nn.functional as F
from hubkit.train import Callback, TrainModule
from hubkit.train.metrics import Accuracy


class Classifier(TrainModule):
    """``model`` trained with cross-entropy by ``make_optimizer(params) -> optimizer or config``.

    Logs ``train_loss`` (per step), ``val_loss``/``val_acc``/``val_acc5`` and ``test_loss``/``test_acc``.
    """

    def __init__(self, model: Any, make_optimizer: Callable[[Any], Any], label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.__dict__["_make_optimizer"] = make_optimizer
        self.__dict__["_acc"] = {stage: (Accuracy(), Accuracy(top_k=5)) for stage in ("val", "test")}
        self.label_smoothing = label_smoothing

    def forward(self, x: Any) -> Any:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        loss = F.cross_entropy(self(x), y, label_smoothing=self.label_smoothing)
        self.log("train_loss", loss, prog_bar=True, on_epoch=True)
        return loss

    def _evaluate(self, stage: str, batch: Any) -> None:
        x, y = batch
        logits = self(x)
        self.log(f"{stage}_loss", F.cross_entropy(logits, y))
        top1, top5 = self._acc[stage]
        top1.update(logits, y)
        if logits.shape[1] >= 5:
            top5.update(logits, y)

    def _epoch_end(self, stage: str) -> None:
        top1, top5 = self._acc[stage]
        if top1.total:
            self.log(f"{stage}_acc", top1.compute(), prog_bar=True)
        if top5.total:
            self.log(f"{stage}_acc5", top5.compute())
        top1.reset()
        top5.reset()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._epoch_end("val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate("test", batch)

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    def configure_optimizers(self) -> Any:
        return self._make_optimizer(self.model.parameters())


class EpochTimer(Callback):
    """Seconds each training epoch took (validation excluded), and its mean training loss when logged."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.losses: list[float] = []

    def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
        self._t0 = time.perf_counter()

    def on_validation_start(self, trainer: Any, module: Any) -> None:
        if not trainer.sanity_checking and trainer.state == "fit":
            self._pause = time.perf_counter()

    def on_validation_end(self, trainer: Any, module: Any) -> None:
        if not trainer.sanity_checking and trainer.state == "fit":
            self._t0 += time.perf_counter() - self._pause

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        self.seconds.append(time.perf_counter() - self._t0)
        loss = trainer.callback_metrics.get("train_loss_epoch")
        if loss is not None:
            self.losses.append(loss)
