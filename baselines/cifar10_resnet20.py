"""ResNet-20 on CIFAR-10 with He et al. (2016)'s schedule: published 8.75 % test error (Table 6).

    python -m hubkit.baselines.cifar10_resnet20             # 64k iterations, as the paper
    python -m hubkit.baselines.cifar10_resnet20 --epochs 2  # the same schedule shrunk to 2 epochs

The paper's recipe (section 4.2): the option-A ResNet-20 (hubkit's ``resnet20``), SGD with momentum
0.9 and weight decay 1e-4, batch 128, learning rate 0.1 divided by 10 at 32k and 48k iterations,
training ends at 64k iterations; augmentation: 4-pixel padding, a random 32x32 crop and a horizontal
flip; the per-pixel mean subtracted (here: per-channel mean/std normalisation, the common practice).
The paper chose the 64k length on a 45k/5k split and trains on all 50k images, as here. ``--epochs``
replaces the 64k iterations by that many epochs, keeping the milestones at 50 % and 75 %.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from hubkit.baselines._classify import Classifier, EpochTimer
from hubkit.baselines._common import Baseline, Outcome, loader_kwargs, run_cli

BASELINE = Baseline(
    name="cifar10_resnet20",
    task="CIFAR-10 classification with ResNet-20 (option A shortcuts)",
    metric="test error (%)",
    published=8.75,
    source="He et al. 2016, Deep Residual Learning for Image Recognition (arXiv 1512.03385), Table 6",
    defaults={"epochs": None, "batch_size": 128, "lr": 0.1},
)

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
PAPER_ITERATIONS = 64_000


def run(args: argparse.Namespace) -> Outcome:
    import hubkit
    from hubkit import optim
    from hubkit import transforms as T
    from hubkit.data import DataLoader
    from hubkit.datasets import CIFAR10
    from hubkit.train import Trainer

    augment = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    plain = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    train_set = CIFAR10(args.data_root, train=True, download=True, transform=augment)
    test_set = CIFAR10(args.data_root, train=False, download=True, transform=plain)
    hubkit.manual_seed(args.seed)
    train = DataLoader(train_set, shuffle=True, **loader_kwargs(args))
    steps_per_epoch = len(train)
    total = PAPER_ITERATIONS if args.epochs is None else args.epochs * steps_per_epoch
    milestones = [total * 32 // 64, total * 48 // 64]

    def make_optimizer(params):
        opt = optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=1e-4)
        sched = optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    module = Classifier(hubkit.load("resnet20"), make_optimizer)
    timer = EpochTimer()
    trainer = Trainer(max_steps=total, max_epochs=math.ceil(total / steps_per_epoch), accelerator=args.device,
                      seed=args.seed, callbacks=[timer], default_root_dir=args.out, num_sanity_val_steps=0)
    trainer.fit(module, train)
    test = DataLoader(test_set, batch_size=500, num_workers=args.num_workers)
    accuracy = trainer.test(module, test, verbose=False)[0]["test_acc"]
    full = len(train_set) == 50000 and len(test_set) == 10000 and total >= PAPER_ITERATIONS
    protocol = "full" if full else (f"{len(train_set)} train / {len(test_set)} test images, {total} iterations "
                                    f"(the paper: 50000 / 10000, {PAPER_ITERATIONS})")
    metrics = {"test_accuracy": accuracy, "test_error_pct": 100 * (1 - accuracy), "iterations": total,
               "seconds_per_epoch": float(np.mean(timer.seconds)) if timer.seconds else 0.0}
    return Outcome(100 * (1 - accuracy), metrics, protocol, timer.seconds, {"train_loss_per_epoch": timer.losses})


def main(argv: list[str] | None = None) -> int:
    return run_cli(BASELINE, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
