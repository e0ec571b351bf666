"""What every baseline script shares: its flags, the run record (``results.json``) and the RESULTS.md row.

A baseline module defines ``BASELINE`` (what is reproduced and the published number) and
``run(args) -> Outcome``; ``main(argv)`` is ``run_cli(BASELINE, run, argv, add_arguments)``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubkit.errors import ArgumentError

RESULTS_MD = Path(__file__).with_name("RESULTS.md")


@dataclass(frozen=True)
class Baseline:
    """A published result and how this script measures the same thing."""

    name: str
    task: str
    metric: str  # e.g. "test error (%)"
    published: float | None
    source: str
    lower_is_better: bool = True
    defaults: dict[str, Any] = field(default_factory=dict)  # --epochs, --batch-size, --lr defaults
    needs: str = ""  # what the user must provide (e.g. the ImageNet validation folder)


@dataclass
class Outcome:
    """What a run produced: the metric comparable with the published number, and everything else."""

    reproduced: float
    metrics: dict[str, Any]
    protocol: str  # "full" when the run used the published protocol's full data, else a description
    per_epoch_seconds: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def parser_for(baseline: Baseline) -> argparse.ArgumentParser:
    d = baseline.defaults
    p = argparse.ArgumentParser(prog=f"python -m hubkit.baselines.{baseline.name}",
                                description=f"{baseline.task}: reproduce {baseline.metric} "
                                            f"(published {baseline.published}, {baseline.source})")
    p.add_argument("--epochs", type=int, default=d.get("epochs", 1), help="training epochs")
    p.add_argument("--batch-size", type=int, default=d.get("batch_size", 64))
    p.add_argument("--lr", type=float, default=d.get("lr", 0.1), help="initial learning rate")
    p.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda'")
    p.add_argument("--data-root", default=None, help="dataset root (default: hubkit's data dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default: ./baseline_runs/<name>-<time>)")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--append-results", action="store_true",
                   help="append this run's row to baselines/RESULTS.md (refused unless the run used the full data)")
    return p


def hardware() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import hubkit

        if hubkit.cuda.is_available():
            info["gpu"] = hubkit.cuda.get_device_name()
    except Exception:  # noqa: BLE001 - hardware description is best effort
        pass
    return info


def run_cli(baseline: Baseline, run: Callable[[argparse.Namespace], Outcome], argv: list[str] | None = None,
            add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    parser = parser_for(baseline)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path("baseline_runs") / \
        f"{baseline.name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    args.out = str(out)
    start = time.perf_counter()
    outcome = run(args)
    wall = time.perf_counter() - start
    record = make_record(baseline, args, outcome, wall, argv)
    (out / "results.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(summary(baseline, outcome, wall, out))
    if args.append_results:
        append_row(baseline, record)
        print(f"appended to {RESULTS_MD}")
    return 0


def make_record(baseline: Baseline, args: argparse.Namespace, outcome: Outcome, wall: float,
                argv: list[str] | None) -> dict[str, Any]:
    from hubkit.train._output import environment

    command = "python -m hubkit.baselines." + baseline.name + " " + shlex.join(
        argv if argv is not None else sys.argv[1:])
    return {
        "baseline": baseline.name,
        "task": baseline.task,
        "command": command.strip(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": vars(args),
        "seed": args.seed,
        "environment": environment(),
        "hardware": hardware(),
        "wall_time_s": round(wall, 2),
        "per_epoch_seconds": [round(s, 2) for s in outcome.per_epoch_seconds],
        "protocol": outcome.protocol,
        "metrics": outcome.metrics,
        "reproduced": outcome.reproduced,
        "published": {"value": baseline.published, "metric": baseline.metric, "source": baseline.source},
        **outcome.extra,
    }


def summary(baseline: Baseline, outcome: Outcome, wall: float, out: Path) -> str:
    lines = [f"{baseline.name}: {baseline.metric} = {outcome.reproduced:.4g}"
             + (f" (published {baseline.published}, {baseline.source})" if baseline.published is not None else "")]
    if outcome.protocol != "full":
        lines.append(f"  protocol: {outcome.protocol} -- NOT the published protocol; not comparable")
    for k, v in outcome.metrics.items():
        lines.append(f"  {k}: {v:.6g}" if isinstance(v, float) else f"  {k}: {v}")
    lines.append(f"  wall time {wall:.1f} s; results in {out / 'results.json'}")
    return "\n".join(lines)


def append_row(baseline: Baseline, record: dict[str, Any], path: Path = RESULTS_MD) -> None:
    """Add the run's row to RESULTS.md's table of measured runs.

    Only a run on the published protocol's full data is written as a reproduction; a run on another
    protocol is written labelled with it (and only if the baseline script offers that protocol).
    """
    protocol = record["protocol"]
    hw = record["hardware"]
    machine = hw.get("gpu") or f"{hw.get('cpu')} ({hw.get('cpu_count')} cores)"
    label = "" if protocol == "full" else f" ({protocol}; not the published protocol)"
    row = (f"| {baseline.name} | {baseline.metric}{label} | "
           f"{'-' if baseline.published is None else baseline.published} | {record['reproduced']:.4g} | "
           f"`{record['command']}` | {machine} | {record['wall_time_s'] / 60:.1f} min | {record['date'][:10]} | "
           f"{record.get('note', '')} |\n")
    text = path.read_text() if path.exists() else ""
    if "| baseline | metric | published | reproduced |" not in text:
        raise ArgumentError(f"{path} has no measured-runs table (it must end with it); restore the file from git")
    path.write_text(text.rstrip("\n") + "\n" + row)


def resolve_device(name: str) -> str:
    """``--device auto`` as the Trainer reads it: CUDA when a GPU is usable, else the CPU."""
    if name != "auto":
        return name
    import hubkit

    return "cuda" if hubkit.cuda.is_available() else "cpu"


def loader_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"batch_size": args.batch_size, "num_workers": args.num_workers}
