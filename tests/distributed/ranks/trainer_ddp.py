"""Trainer(strategy="ddp", devices=2) on a linear regression. Started with plain `python`, it restarts itself as
2 ranks. Rank 0 writes OUT/params.npz; every rank writes OUT/done_<rank> (its global step). Usage: trainer_ddp.py OUT
"""

import os
import sys
from pathlib import Path

import numpy as np

import hubkit
import hubkit.nn.functional as F
from hubkit import nn, optim
from hubkit.data import DataLoader, TensorDataset
from hubkit.train import Trainer, TrainModule

out = Path(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.standard_normal((32, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.1).astype(np.float32)


class Regression(TrainModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return optim.SGD(self.parameters(), lr=0.1)

    def prepare_data(self):
        (out / f"prepared_{os.environ['RANK']}").write_text("")

    def train_dataloader(self):
        # where a dataset would download: rank 0 gets here first, the others after it is done
        marker = out / "downloaded"
        if os.environ["RANK"] == "0":
            marker.write_text("")
        elif not marker.exists():
            raise AssertionError("a rank built its loader before rank 0 finished")
        return DataLoader(TensorDataset(hubkit.from_numpy(X), hubkit.from_numpy(Y)), batch_size=4, shuffle=True)


hubkit.manual_seed(0)
model = Regression()
trainer = Trainer(strategy="ddp", devices=2, max_epochs=2, accelerator="cpu", seed=0, default_root_dir=out,
                  enable_progress_bar=False)
trainer.fit(model)
rank = hubkit.distributed.get_rank()
if rank == 0:
    np.savez(out / "params.npz", **{n: p.numpy() for n, p in model.named_parameters()})
(out / f"done_{rank}").write_text(str(trainer.global_step))
