"""Train a small MLP on generated data with hubkit's engine; prints the loss and accuracy.

    python examples/train_mlp.py
"""

import numpy as np

import hubkit
import hubkit.nn.functional as F


def make_spirals(n_per_class: int = 200, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(classes):
        r = np.linspace(0.05, 1.0, n_per_class)
        theta = np.linspace(c * 4.0, (c + 1) * 4.0, n_per_class) + rng.normal(0, 0.2, n_per_class)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(n_per_class, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def main() -> None:
    hubkit.manual_seed(0)
    x_np, y_np = make_spirals()
    x, y = hubkit.from_numpy(x_np), hubkit.from_numpy(y_np)
    w1 = (hubkit.randn(2, 64) * 0.5).requires_grad_()
    b1 = hubkit.zeros(64, requires_grad=True)
    w2 = (hubkit.randn(64, 3) * 0.1).requires_grad_()
    b2 = hubkit.zeros(3, requires_grad=True)
    params = [w1, b1, w2, b2]
    lr = 0.5
    for step in range(1, 1001):
        hidden = hubkit.maximum(x @ w1 + b1, hubkit.zeros(1))
        logits = hidden @ w2 + b2
        # softmax cross-entropy written out from primitives
        logp = logits - (logits.exp().sum(dim=1, keepdim=True)).log()
        loss = -(logp[hubkit.arange(len(y)), y]).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with hubkit.no_grad():
            for p in params:
                p.sub_(p.grad * lr)
        if step % 250 == 0:
            accuracy = (logits.argmax(dim=1) == y).float().mean().item()
            print(f"step {step:4d}  loss {loss.item():.4f}  accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
