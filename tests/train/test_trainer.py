"""Trainer: exact resume, accumulation, callbacks, logs and progress output, and every bad input."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

import hubkit
import hubkit.nn.functional as F
from hubkit import nn, optim
from hubkit.data import DataLoader, TensorDataset
from hubkit.errors import ArgumentError, TrainerError
from hubkit.train import Callback, EarlyStopping, LearningRateMonitor, ModelCheckpoint, Timer, Trainer, TrainModule


def _data(n: int = 96, seed: int = 0) -> TensorDataset:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, :3].sum(1) > 0).astype(np.int64)
    return TensorDataset(hubkit.from_numpy(x), hubkit.from_numpy(y))


class Classifier(TrainModule):
    def __init__(self, lr: float = 0.1, dropout: float = 0.3, optimizer: str = "adam") -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean(), prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test_acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        if self.hparams.optimizer == "sgd":
            return optim.SGD(self.parameters(), lr=self.hparams.lr)
        opt = optim.Adam(self.parameters(), lr=self.hparams.lr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": optim.lr_scheduler.StepLR(opt, 2, gamma=0.5),
                                                   "interval": "step", "frequency": 1}}


def _trainer(tmp_path, **kwargs):
    kwargs.setdefault("enable_progress_bar", False)
    kwargs.setdefault("enable_model_summary", False)
    return Trainer(default_root_dir=tmp_path, **kwargs)


def _params(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------- exact resume


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_mid_epoch_is_bit_identical_to_an_uninterrupted_run(tmp_path, num_workers):
    def loader():
        return DataLoader(_data(), batch_size=8, shuffle=True, num_workers=num_workers)

    hubkit.manual_seed(3)
    whole = Classifier()
    _trainer(tmp_path / "a", max_epochs=3, seed=5, enable_checkpointing=False).fit(whole, loader())

    hubkit.manual_seed(3)
    first = Classifier()
    stop = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=17, save_top_k=-1)
    trainer = _trainer(tmp_path / "b", max_steps=17, seed=5, callbacks=[stop])
    trainer.fit(first, loader())
    saved = sorted((tmp_path / "ckpt").glob("*.ckpt"))
    assert [p.name for p in saved] == ["epoch=1-step=17.ckpt"]  # 12 batches per epoch: mid-way through epoch 1

    hubkit.manual_seed(123)  # everything random must come back from the checkpoint
    resumed = Classifier()
    _trainer(tmp_path / "c", max_epochs=3, seed=None, enable_checkpointing=False).fit(
        resumed, loader(), ckpt_path=saved[0])
    for key, value in _params(whole).items():
        np.testing.assert_array_equal(_params(resumed)[key], value, err_msg=key)


def test_checkpoint_holds_what_lightning_writes(tmp_path):
    trainer = _trainer(tmp_path, max_epochs=1)
    trainer.fit(Classifier(), DataLoader(_data(), batch_size=32))
    path = trainer.checkpoint_callback.best_model_path
    ckpt = hubkit.load(path)
    assert ckpt["epoch"] == 0 and ckpt["global_step"] == 3
    assert set(ckpt) >= {"state_dict", "optimizer_states", "lr_schedulers", "callbacks", "loops", "rng_states",
                         "hyper_parameters"}
    assert ckpt["hyper_parameters"] == {"lr": 0.1, "dropout": 0.3, "optimizer": "adam"}
    assert isinstance(ckpt["state_dict"]["net.0.weight"], hubkit.Tensor)
    fresh = Classifier()
    fresh.load_state_dict(ckpt["state_dict"])


def test_resume_from_an_epoch_end_starts_the_next_epoch(tmp_path):
    trainer = _trainer(tmp_path, max_epochs=1)
    trainer.fit(Classifier(), DataLoader(_data(), batch_size=32))
    again = _trainer(tmp_path, max_epochs=2)
    seen = []

    class Epochs(Callback):
        def on_train_epoch_start(self, trainer, module):
            seen.append(trainer.current_epoch)

    again.callbacks.append(Epochs())
    again.fit(Classifier(), DataLoader(_data(), batch_size=32), ckpt_path=trainer.checkpoint_callback.best_model_path)
    assert seen == [1] and again.global_step == 6


# ---------------------------------------------------------------- accumulation, clipping


def test_accumulating_four_batches_equals_one_batch_four_times_larger(tmp_path):
    data = _data(64)
    hubkit.manual_seed(0)
    small = Classifier(dropout=0.0, optimizer="sgd")
    big = Classifier(dropout=0.0, optimizer="sgd")
    big.load_state_dict(small.state_dict())
    _trainer(tmp_path / "a", max_epochs=2, accumulate_grad_batches=4).fit(small, DataLoader(data, batch_size=4))
    _trainer(tmp_path / "b", max_epochs=2).fit(big, DataLoader(data, batch_size=16))
    for key, value in _params(big).items():
        np.testing.assert_allclose(_params(small)[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("algorithm", ["value", "norm"])
def test_gradient_clipping_bounds_each_sgd_update(tmp_path, algorithm):
    steps = []

    class Watch(Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.before = np.concatenate([p.numpy().ravel().copy() for p in module.parameters()])

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            after = np.concatenate([p.numpy().ravel() for p in module.parameters()])
            steps.append(after - self.before)

    _trainer(tmp_path, max_epochs=1, gradient_clip_val=1e-3, gradient_clip_algorithm=algorithm,
             callbacks=[Watch()]).fit(Classifier(lr=10.0, optimizer="sgd"), DataLoader(_data(), batch_size=16))
    bound = 10.0 * 1e-3 * (1 + 1e-4)  # lr times the clip value
    sizes = [np.abs(d).max() if algorithm == "value" else np.linalg.norm(d) for d in steps]
    assert len(sizes) == 6 and max(sizes) <= bound and max(sizes) > bound / 2


# ---------------------------------------------------------------- callbacks


def test_model_checkpoint_keeps_the_top_k_by_the_monitored_metric(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", monitor="val_acc", mode="max", save_top_k=2, save_last=True,
                           filename="{epoch:02d}-{val_acc:.3f}")
    trainer = _trainer(tmp_path, max_epochs=5, callbacks=[ckpt])
    trainer.fit(Classifier(lr=0.05), DataLoader(_data(), batch_size=16), DataLoader(_data(32, 1), batch_size=32))
    files = sorted(p.name for p in (tmp_path / "ck").glob("*.ckpt"))
    assert "last.ckpt" in files and len(files) == 3
    assert len(ckpt.best_k_models) == 2
    best = max(ckpt.best_k_models.values())
    assert ckpt.best_model_score == best and ckpt.best_model_path.endswith(f"val_acc={best:.3f}.ckpt")
    assert all(p.startswith("epoch=") for p in files if p != "last.ckpt")
    result = trainer.test(dataloaders=DataLoader(_data(32, 1), batch_size=32), ckpt_path="best", verbose=False)
    assert result[0]["test_acc"] == pytest.approx(best)


def test_early_stopping_stops_after_patience_checks_without_improvement(tmp_path):
    class Flat(Classifier):
        def validation_step(self, batch, batch_idx):
            self.log("val_loss", hubkit.tensor(1.0))

    stop = EarlyStopping(monitor="val_loss", patience=2)
    trainer = _trainer(tmp_path, max_epochs=20, callbacks=[stop])
    trainer.fit(Flat(), DataLoader(_data(), batch_size=48), DataLoader(_data(16), batch_size=16))
    assert trainer.current_epoch == 3 and stop.stopped_epoch == 2 and stop.wait_count == 2


def test_learning_rate_monitor_and_timer(tmp_path):
    lrs = LearningRateMonitor()
    timer = Timer(duration={"days": 1})
    trainer = _trainer(tmp_path, max_epochs=1, callbacks=[lrs, timer])
    trainer.fit(Classifier(), DataLoader(_data(), batch_size=16))
    assert lrs.lrs["lr-Adam"] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    assert 0 < timer.time_elapsed("train") < 3600
    stopper = Timer(duration="00:00:00:00")
    t2 = _trainer(tmp_path, max_epochs=5, callbacks=[stopper])
    t2.fit(Classifier(), DataLoader(_data(), batch_size=16))
    assert t2.global_step == 1


def test_hook_order_of_a_short_fit(tmp_path):
    calls = []

    class Record(Callback):
        pass

    for name in ["on_fit_start", "on_sanity_check_start", "on_train_start", "on_train_epoch_start",
                 "on_train_batch_start", "on_before_backward", "on_after_backward", "on_before_optimizer_step",
                 "on_train_batch_end", "on_validation_start", "on_validation_end", "on_train_epoch_end",
                 "on_train_end", "on_fit_end"]:
        setattr(Record, name, lambda self, *a, _n=name: calls.append(_n))
    _trainer(tmp_path, max_epochs=1, callbacks=[Record()], enable_checkpointing=False).fit(
        Classifier(), DataLoader(_data(16), batch_size=8), DataLoader(_data(8), batch_size=8))
    batch = ["on_train_batch_start", "on_before_backward", "on_after_backward", "on_before_optimizer_step",
             "on_train_batch_end"]
    assert calls == ["on_fit_start", "on_sanity_check_start", "on_validation_start", "on_validation_end",
                     "on_train_start", "on_train_epoch_start", *batch, *batch, "on_validation_start",
                     "on_validation_end", "on_train_epoch_end", "on_train_end", "on_fit_end"]


# ---------------------------------------------------------------- a plain Module, predict, validate


def test_a_plain_module_trains_with_loss_fn_and_optimizer(tmp_path):
    hubkit.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    trainer = _trainer(tmp_path, max_epochs=8)
    loader = DataLoader(_data(), batch_size=16, shuffle=True)
    before = trainer.validate(model, DataLoader(_data(), batch_size=96), verbose=False, loss_fn=nn.CrossEntropyLoss())
    trainer.fit(model, loader, DataLoader(_data(), batch_size=96), loss_fn=nn.CrossEntropyLoss(),
                optimizer=lambda params: optim.SGD(params, lr=0.2))
    after = trainer.callback_metrics["val_loss"]
    assert after < before[0]["val_loss"] * 0.8
    preds = trainer.predict(dataloaders=DataLoader(_data(10), batch_size=4))
    assert [p.shape for p in preds] == [(4, 2), (4, 2), (2, 2)]
    ckpt = hubkit.load(trainer.checkpoint_callback.best_model_path)
    assert "0.weight" in ckpt["state_dict"]  # the plain module's own keys


# ---------------------------------------------------------------- output a person wants


def test_run_folder_has_metrics_hparams_and_curves(tmp_path):
    trainer = _trainer(tmp_path, max_epochs=2, log_every_n_steps=1, seed=7)
    trainer.fit(Classifier(), DataLoader(_data(), batch_size=32), DataLoader(_data(32, 1), batch_size=32))
    run = tmp_path / "hubkit_logs" / "version_0"
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert [r["step"] for r in rows if r["train_loss"]] == ["1", "2", "3", "4", "5", "6"]
    assert [r["epoch"] for r in rows if r["val_acc"]] == ["0", "1"]
    hparams = json.loads((run / "hparams.json").read_text())
    assert hparams["seed"] == 7 and hparams["hyper_parameters"]["lr"] == 0.1
    assert hparams["trainer"]["max_epochs"] == 2 and "numpy" in hparams["environment"]
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"
    second = _trainer(tmp_path, max_epochs=1)
    second.fit(Classifier(), DataLoader(_data(), batch_size=32))
    assert second.log_dir.name == "version_1"


def test_progress_bar_and_summary_are_shown(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HUBKIT_NO_PROGRESS", raising=False)
    trainer = Trainer(default_root_dir=tmp_path, max_epochs=1, enable_progress_bar=True)
    trainer._bars_enabled = lambda: True  # stderr is captured here, not a terminal
    import logging

    handler = logging.StreamHandler()
    monkeypatch.setattr(logging.getLogger("hubkit.train"), "handlers", [handler])
    trainer.fit(Classifier(), DataLoader(_data(), batch_size=32))
    err = capsys.readouterr().err
    assert "Epoch 0" in err and "3/3" in err and "loss=" in err and "samples/s=" in err
    assert "Trainable params" in err and "net" in err and "Sequential" in err


# ---------------------------------------------------------------- bad input


def test_a_module_without_training_step_and_no_loss_fn(tmp_path):
    with pytest.raises(TrainerError, match="pass loss_fn= and optimizer="):
        _trainer(tmp_path).fit(nn.Linear(6, 2), DataLoader(_data(), batch_size=8))
    with pytest.raises(TrainerError, match="pass optimizer="):
        _trainer(tmp_path).fit(nn.Linear(6, 2), DataLoader(_data(), batch_size=8), loss_fn=nn.MSELoss())

    class NoStep(TrainModule):
        def __init__(self):
            super().__init__()
            self.l = nn.Linear(6, 2)

        def configure_optimizers(self):
            return optim.SGD(self.parameters(), lr=0.1)

    with pytest.raises(TrainerError, match="has no training_step"):
        _trainer(tmp_path).fit(NoStep(), DataLoader(_data(), batch_size=8))


def test_a_loader_that_yields_nothing(tmp_path):
    empty = DataLoader(_data(4), batch_size=8, drop_last=True)
    with pytest.raises(TrainerError, match="produced no batches"):
        _trainer(tmp_path, max_epochs=1).fit(Classifier(), empty)


def test_a_monitor_that_was_never_logged(tmp_path):
    with pytest.raises(TrainerError, match=r"monitor='val_f1'.*\['train_loss', 'val_acc', 'val_loss'\]"):
        _trainer(tmp_path, max_epochs=1, callbacks=[ModelCheckpoint(monitor="val_f1")]).fit(
            Classifier(), DataLoader(_data(), batch_size=32), DataLoader(_data(8), batch_size=8))
    with pytest.raises(TrainerError, match="EarlyStopping"):
        _trainer(tmp_path, max_epochs=1, callbacks=[EarlyStopping(monitor="nope")]).fit(
            Classifier(), DataLoader(_data(), batch_size=32))


class Exploding(Classifier):
    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * math.inf if batch_idx == 2 else loss


def test_a_nan_loss_stops_with_the_step_or_is_skipped(tmp_path):
    with pytest.raises(TrainerError, match=r"loss is (inf|nan) at epoch 0, batch 2 \(global step 2\)"):
        _trainer(tmp_path, max_epochs=1).fit(Exploding(optimizer="sgd"), DataLoader(_data(), batch_size=16))
    trainer = _trainer(tmp_path, max_epochs=1, on_nan_loss="skip")
    model = Exploding(optimizer="sgd")
    trainer.fit(model, DataLoader(_data(), batch_size=16))
    assert trainer._skipped_nan == 1 and all(np.isfinite(v).all() for v in _params(model).values())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"accelerator": "tpu"}, "'auto', 'cpu' or 'cuda'"),
    ({"devices": 2}, "one device"),
    ({"accumulate_grad_batches": 0}, "accumulate_grad_batches"),
    ({"gradient_clip_algorithm": "l3"}, "'norm' or 'value'"),
    ({"on_nan_loss": "ignore"}, "'raise' or 'skip'"),
])
def test_bad_trainer_arguments(tmp_path, kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        Trainer(default_root_dir=tmp_path, **kwargs)


def test_bad_limits_and_optimizer_shapes(tmp_path):
    with pytest.raises(ArgumentError, match="is 0 batches"):
        _trainer(tmp_path, max_epochs=1, limit_train_batches=0.01).fit(Classifier(), DataLoader(_data(), batch_size=32))

    class Plateau(Classifier):
        def configure_optimizers(self):
            opt = optim.SGD(self.parameters(), lr=0.1)
            return {"optimizer": opt, "lr_scheduler": optim.lr_scheduler.ReduceLROnPlateau(opt)}

    with pytest.raises(TrainerError, match="'monitor': 'val_loss'"):
        _trainer(tmp_path, max_epochs=1).fit(Plateau(), DataLoader(_data(), batch_size=32))
    with pytest.raises(TrainerError, match="does not exist"):
        _trainer(tmp_path, max_epochs=1).fit(Classifier(), DataLoader(_data(), batch_size=32),
                                             ckpt_path=tmp_path / "missing.ckpt")


def test_reduce_on_plateau_with_a_monitored_metric_and_limits(tmp_path):
    class Plateau(Classifier):
        def configure_optimizers(self):
            opt = optim.SGD(self.parameters(), lr=0.1)
            sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
            return [opt], [{"scheduler": sched, "monitor": "val_loss"}]

        def validation_step(self, batch, batch_idx):
            self.log("val_loss", hubkit.tensor(1.0))

    model = Plateau()
    trainer = _trainer(tmp_path, max_epochs=3, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(model, DataLoader(_data(), batch_size=8), DataLoader(_data(), batch_size=8))
    assert trainer.global_step == 6
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 2)
