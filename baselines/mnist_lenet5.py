"""LeNet-5 on MNIST: the test error LeCun et al. (1998) report for LeNet-5 without distortions, 0.95 %.

    python -m hubkit.baselines.mnist_lenet5                  # 60,000 train / 10,000 test, the published protocol
    python -m hubkit.baselines.mnist_lenet5 --t10k-split --data-root ../shared/data/mnist-t10k --torch

Recipe: hubkit's ``lenet5`` (the common modern form: ReLU and max pooling), inputs normalised with
MNIST's mean and std, SGD with momentum 0.9 and weight decay 5e-4, cosine learning-rate decay over
the epochs, batch 64, 10 epochs. The paper's original network (tanh, subsampling layers, RBF output)
and its 20-epoch schedule differ; the comparison is with its published error.

``--t10k-split`` trains on the first 8,000 images of the official test files and evaluates on the
last 2,000 (for a quick real-data check where only those files are at hand). Its number is labelled
as such everywhere: it is not the published protocol. ``--torch`` also trains the same network with
the same schedule in PyTorch (when installed) and reports its accuracy and time per epoch.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.baselines._classify import Classifier, EpochTimer
from hubkit.baselines._common import Baseline, Outcome, loader_kwargs, run_cli

BASELINE = Baseline(
    name="mnist_lenet5",
    task="MNIST digit classification with LeNet-5",
    metric="test error (%)",
    published=0.95,
    source="LeCun et al. 1998, Proc. IEEE 86(11); MNIST page: 'Convolutional net LeNet-5, [no distortions]'",
    defaults={"epochs": 10, "batch_size": 64, "lr": 0.05},
)

MEAN, STD = 0.1307, 0.3081
T10K_TRAIN = 8000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--t10k-split", action="store_true",
                   help=f"train on t10k[:{T10K_TRAIN}], evaluate on t10k[{T10K_TRAIN}:] (not the published protocol)")
    p.add_argument("--torch", action="store_true", help="also train the same network and schedule in PyTorch")


def _arrays(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Normalised float32 images (N, 1, 28, 28) and int64 labels, decoded once by the dataset class."""
    x = (np.asarray(dataset.data, dtype=np.float32) / 255.0 - MEAN) / STD
    return x[:, None], np.asarray(dataset.targets, dtype=np.int64)


def _t10k_root(data_root: str | None, out: Path) -> Path:
    """A dataset root holding the official t10k files in torchvision's layout: ``data_root`` itself, or the
    files found directly in ``data_root`` linked into ``out`` (the shared folder keeps them flat)."""
    names = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    if data_root is None:
        from hubkit.errors import ArgumentError

        raise ArgumentError("--t10k-split reads the official t10k files: pass --data-root with them")
    root = Path(data_root)
    if all((root / "MNIST" / "raw" / n).exists() for n in names):
        return root
    linked = out / "t10k_root"
    raw = linked / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for n in names:
        if not (root / n).exists():
            from hubkit.errors import DatasetNotFoundError

            raise DatasetNotFoundError(f"--t10k-split: {root / n} is missing; --data-root must hold {names}")
        if not (raw / n).exists():
            shutil.copyfile(root / n, raw / n)
    return linked


def load_data(args: argparse.Namespace) -> tuple[tuple, tuple, str]:
    from hubkit.datasets import MNIST

    if args.t10k_split:
        root = _t10k_root(args.data_root, Path(args.out))
        x, y = _arrays(MNIST(root, train=False))  # md5-verified against torchvision's list
        return ((x[:T10K_TRAIN], y[:T10K_TRAIN]), (x[T10K_TRAIN:], y[T10K_TRAIN:]),
                f"trained on MNIST t10k[:{T10K_TRAIN}], evaluated on t10k[{T10K_TRAIN}:]")
    train = _arrays(MNIST(args.data_root, train=True, download=True))
    test = _arrays(MNIST(args.data_root, train=False, download=True))
    full = len(train[0]) == 60000 and len(test[0]) == 10000
    return train, test, "full" if full else f"{len(train[0])} train / {len(test[0])} test images (not MNIST's size)"


def make_optimizer(lr: float, epochs: int, optim: Any) -> Any:
    def build(params: Any) -> Any:
        opt = optim.SGD(params, lr=lr, momentum=0.9, weight_decay=5e-4)
        return {"optimizer": opt, "lr_scheduler": optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)}

    return build


def run(args: argparse.Namespace) -> Outcome:
    import hubkit
    from hubkit import optim
    from hubkit.data import DataLoader, TensorDataset
    from hubkit.train import Trainer

    (xtr, ytr), (xte, yte), protocol = load_data(args)
    hubkit.manual_seed(args.seed)
    model = hubkit.load("lenet5")
    initial = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    module = Classifier(model, make_optimizer(args.lr, args.epochs, optim))
    train = DataLoader(TensorDataset(hubkit.from_numpy(xtr), hubkit.from_numpy(ytr)), shuffle=True,
                       **loader_kwargs(args))
    test = DataLoader(TensorDataset(hubkit.from_numpy(xte), hubkit.from_numpy(yte)), batch_size=1000)
    timer = EpochTimer()
    trainer = Trainer(max_epochs=args.epochs, accelerator=args.device, seed=args.seed, callbacks=[timer],
                      default_root_dir=args.out, enable_checkpointing=False, num_sanity_val_steps=0)
    trainer.fit(module, train)
    accuracy = trainer.test(module, test, verbose=False)[0]["test_acc"]
    metrics = {"test_accuracy": accuracy, "test_error_pct": 100 * (1 - accuracy),
               "seconds_per_epoch": float(np.mean(timer.seconds))}
    extra: dict[str, Any] = {"train_loss_per_epoch": timer.losses}
    if args.torch:
        extra["torch"] = train_in_torch(initial, (xtr, ytr), (xte, yte), args)
        metrics["torch_test_error_pct"] = extra["torch"]["test_error_pct"]
        metrics["torch_seconds_per_epoch"] = extra["torch"]["seconds_per_epoch"]
        extra["note"] = (f"same network, initial weights and schedule in torch {extra['torch']['torch']}: "
                         f"{extra['torch']['test_error_pct']:.2f} % error; {metrics['seconds_per_epoch']:.2f} s per "
                         f"epoch (hubkit) vs {extra['torch']['seconds_per_epoch']:.2f} s (torch)")
    return Outcome(100 * (1 - accuracy), metrics, protocol, timer.seconds, extra)


def train_in_torch(initial: dict[str, np.ndarray], train: tuple, test: tuple, args: argparse.Namespace) -> dict:
    """The same network, initial weights, schedule and batch size in PyTorch (its own shuffling)."""
    import torch
    from torch import nn

    torch.manual_seed(args.seed)
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                                               nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2)))
    model.add_module("flatten", nn.Flatten())
    model.add_module("classifier", nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                                 nn.Linear(84, 10)))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in initial.items()})
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    xtr, ytr = torch.from_numpy(np.array(train[0])), torch.from_numpy(np.array(train[1]))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xtr, ytr), batch_size=args.batch_size,
                                         shuffle=True)
    seconds = []
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        model.train()
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        sched.step()
        seconds.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(np.array(test[0]))).argmax(1).numpy()
    accuracy = float((pred == test[1]).mean())
    return {"test_error_pct": 100 * (1 - accuracy), "seconds_per_epoch": float(np.mean(seconds)),
            "per_epoch_seconds": seconds, "torch": torch.__version__}


def main(argv: list[str] | None = None) -> int:
    return run_cli(BASELINE, run, argv, add_arguments)


if __name__ == "__main__":
    raise SystemExit(main())
