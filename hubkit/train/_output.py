"""What a training run leaves behind and shows: the run folder (``metrics.csv``, ``hparams.json``,
``curves.png``), the model summary table and the per-epoch progress bar."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


class CSVLogger:
    """Metrics as rows of ``<save_dir>/<name>/version_<n>/metrics.csv`` (Lightning's CSVLogger layout).

    Each row has ``epoch`` and ``step`` and the metrics logged then; columns are the union of all
    names. The file is rewritten atomically when flushed (at the end of each epoch), so a crash leaves
    the previous version, never half a row.
    """

    def __init__(self, save_dir: str | os.PathLike = ".", name: str = "hubkit_logs", version: int | None = None):
        self.save_dir = Path(save_dir)
        self.name = name
        self._version = version
        self.rows: list[dict[str, Any]] = []

    @property
    def version(self) -> int:
        if self._version is None:
            root = self.save_dir / self.name
            taken = [int(p.name.split("_", 1)[1]) for p in root.glob("version_*") if p.name.split("_", 1)[1].isdigit()]
            self._version = max(taken, default=-1) + 1
        return self._version

    @property
    def log_dir(self) -> Path:
        return self.save_dir / self.name / f"version_{self.version}"

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        if metrics:
            self.rows.append({"epoch": epoch, "step": step, **metrics})

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.log_dir / "hparams.json", json.dumps(params, indent=2, default=_jsonable) + "\n")

    def save(self) -> None:
        if not self.rows:
            return
        columns = ["epoch", "step"]
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.log_dir / "metrics.csv", buffer.getvalue())

    def plot(self) -> Path | None:
        """``curves.png``: every logged metric against the step, one panel each (needs matplotlib)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        names = sorted({k for row in self.rows for k in row} - {"epoch", "step"})
        if not names:
            return None
        cols = min(3, len(names))
        rows = math.ceil(len(names) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            points = [(r["step"], r[name]) for r in self.rows if name in r]
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3)
            ax.set_title(name)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.tight_layout()
        path = self.log_dir / "curves.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return repr(value)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def environment() -> dict[str, Any]:
    """Package versions and hardware, for ``hparams.json`` and the baselines' ``results.json``."""
    import hubkit

    info: dict[str, Any] = {"hubkit": hubkit.__version__, "numpy": np.__version__,
                            "python": platform.python_version(), "platform": platform.platform(),
                            "machine": platform.machine(), "cpu_count": os.cpu_count()}
    if "cupy" in sys.modules:
        info["cupy"] = sys.modules["cupy"].__version__
    return info


# ---------------------------------------------------------------- model summary


def _size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:.1f} {unit}" if unit != "B" else f"{int(n_bytes)} B"
        n_bytes /= 1024
    return ""


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


def model_summary(model: Any, max_depth: int = 1) -> str:
    """A table of the model's top-level layers: name, type, parameters; then totals and size."""
    rows = []
    for name, child in model.named_children():
        n = sum(p.numel() for p in child.parameters())
        rows.append((name, type(child).__name__, _count(n)))
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    size = sum(p.numel() * p.element_size() for p in params) + sum(b.numel() * b.element_size()
                                                                    for b in model.buffers())
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("Name", "Type", "Params"))]
    lines = []
    if rows:
        header = "  | " + " | ".join(h.ljust(w) for h, w in zip(("Name", "Type", "Params"), widths))
        lines += [header, "-" * len(header)]
        lines += [f"{i:<2}| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) for i, r in enumerate(rows)]
        lines.append("-" * len(header))
    lines += [f"{_count(trainable):<9} Trainable params", f"{_count(total - trainable):<9} Non-trainable params",
              f"{_count(total):<9} Total params", f"{_size(size):<9} Total estimated model params size"]
    return "\n".join(lines)


# ---------------------------------------------------------------- progress bar


class ProgressBar:
    """One tqdm bar per epoch on stderr: batches, loss, ``prog_bar`` metrics and samples per second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._samples = 0
        self._t0 = 0.0

    def start(self, description: str, total: int | None) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        self.close()
        self._bar = tqdm(total=total, desc=description, file=sys.stderr, dynamic_ncols=True, leave=True,
                         unit="batch")
        self._samples = 0
        self._t0 = time.perf_counter()

    def update(self, batch_size: int, metrics: dict[str, float]) -> None:
        if self._bar is None:
            return
        self._samples += batch_size
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        postfix = {k: f"{v:.4g}" for k, v in metrics.items()}
        postfix["samples/s"] = f"{self._samples / elapsed:.1f}"
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
