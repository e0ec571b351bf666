"""How much of PyTorch's documented API hubkit has: the README's coverage table, and hubkit.ops.unsupported.

    python scripts/torch_api/coverage.py            # print the coverage table (markdown)
    python scripts/torch_api/coverage.py --write    # also rewrite the name lists in hubkit/ops/unsupported.py

The top-level and Tensor name lists are PyTorch's documentation (``torch_md_names.py``,
``tensors_md_names.py``, copied from pytorch/pytorch's docs/source/torch.md and tensors.md). The
torch.nn, torch.nn.functional and torch.optim lists come from the installed torch's ``__all__``
(which is what its documentation pages are generated from), so this script needs torch.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
UNSUPPORTED = HERE.parents[1] / "hubkit" / "ops" / "unsupported.py"
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
import torch.nn.functional  # noqa: E402
from tensors_md_names import NAMES as TENSOR_DOC  # noqa: E402
from torch_md_names import SECTIONS  # noqa: E402

import hubkit  # noqa: E402
import hubkit.nn.functional  # noqa: E402


def _is_stub(obj: object) -> bool:
    return (getattr(obj, "__doc__", None) or "").startswith("Not supported by hubkit")


def _has(module: object, name: str) -> bool:
    try:
        value = getattr(module, name)
    except AttributeError:  # hubkit's UnsupportedError is an AttributeError
        return False
    return not _is_stub(value)


def top_level() -> list[tuple[str, list[str], list[str]]]:
    rows = []
    for section, text in SECTIONS.items():
        names = list(dict.fromkeys(text.split()))
        have = [n for n in names if _has(hubkit, n)]
        rows.append((section, have, [n for n in names if n not in have]))
    return rows


def tensor_names() -> tuple[list[str], list[str], list[str]]:
    """(supported, missing methods, missing attributes) among the documented Tensor names."""
    names = list(dict.fromkeys(TENSOR_DOC))
    have, methods, attrs = [], [], []
    for n in names:
        if hasattr(hubkit.Tensor, n) and not _is_stub(inspect.getattr_static(hubkit.Tensor, n)):
            have.append(n)
            continue
        static = inspect.getattr_static(torch.Tensor, n, None)
        is_attr = not callable(static) or isinstance(static, property) or type(static).__name__ in (
            "getset_descriptor", "member_descriptor")
        (attrs if is_attr else methods).append(n)
    return have, methods, attrs


def nn_modules() -> tuple[list[str], list[str]]:
    names = [n for n in torch.nn.modules.__all__ if inspect.isclass(getattr(torch.nn, n, None))]
    have = [n for n in names if _has(hubkit.nn, n)]
    return have, [n for n in names if n not in have]


def functional() -> tuple[list[str], list[str]]:
    names = sorted(n for n in dir(torch.nn.functional) if not n.startswith("_") and callable(
        getattr(torch.nn.functional, n)) and getattr(getattr(torch.nn.functional, n), "__module__", "").startswith(
        ("torch.nn.functional", "torch._C._nn", "torch.nn.modules")) and not inspect.isclass(
        getattr(torch.nn.functional, n)))
    have = [n for n in names if _has(hubkit.nn.functional, n)]
    return have, [n for n in names if n not in have]


def linalg() -> tuple[list[str], list[str]]:
    import hubkit.linalg

    names = sorted(n for n in dir(torch.linalg) if not n.startswith("_") and callable(getattr(torch.linalg, n))
                   and not inspect.ismodule(getattr(torch.linalg, n)) and n not in ("Tensor",))
    have = [n for n in names if _has(hubkit.linalg, n)]
    return have, [n for n in names if n not in have]


def optim() -> tuple[list[str], list[str]]:
    import hubkit.optim.lr_scheduler

    names = [f"optim.{n}" for n in torch.optim.__all__ if inspect.isclass(getattr(torch.optim, n, None))
             and n != "Optimizer"]
    names += [f"lr_scheduler.{n}" for n in torch.optim.lr_scheduler.__all__
              if inspect.isclass(getattr(torch.optim.lr_scheduler, n)) and n != "LRScheduler"]
    names += [f"swa_utils.{n}" for n in ("AveragedModel", "SWALR", "update_bn")]
    have = []
    for n in names:
        owner, name = n.split(".")
        module = {"optim": hubkit.optim, "lr_scheduler": hubkit.optim.lr_scheduler}.get(owner)
        if module is None:
            import hubkit.optim.swa_utils as module
        if _has(module, name):
            have.append(n)
    return have, [n for n in names if n not in have]


def _cell(missing: list[str], limit: int = 12) -> str:
    if not missing:
        return "-"
    shown = ", ".join(f"`{m}`" for m in missing[:limit])
    return shown + (f" and {len(missing) - limit} more" if len(missing) > limit else "")


def table() -> str:
    lines = ["| area | supported | not supported (raise `UnsupportedError` naming the torch feature) |",
             "|---|---|---|"]
    for section, have, missing in top_level():
        lines.append(f"| `torch` {section} | {len(have)} / {len(have) + len(missing)} | {_cell(missing)} |")
    have, methods, attrs = tensor_names()
    missing = methods + attrs
    lines.append(f"| `torch.Tensor` methods and attributes | {len(have)} / {len(have) + len(missing)} | "
                 f"{_cell(missing)} |")
    for label, (have, missing) in (("`torch.linalg`", linalg()), ("`torch.nn` modules", nn_modules()),
                                   ("`torch.nn.functional`", functional()),
                                   ("`torch.optim` (optimizers, schedulers, swa_utils)", optim())):
        lines.append(f"| {label} | {len(have)} / {len(have) + len(missing)} | {_cell(missing)} |")
    return "\n".join(lines)


def _block(names: list[str]) -> str:
    lines, line = [], "    "
    for n in sorted(names):
        item = f'"{n}", '
        if len(line) + len(item) > 118:
            lines.append(line.rstrip())
            line = "    "
        line += item
    lines.append(line.rstrip())
    return "frozenset({\n" + "\n".join(lines) + "\n})"


def write_unsupported() -> None:
    missing_top = sorted({n for _, _, missing in top_level() for n in missing})
    _, methods, attrs = tensor_names()
    src = UNSUPPORTED.read_text()
    for var, names in (("FUNCTIONS", missing_top), ("TENSOR_METHODS", methods), ("TENSOR_ATTRIBUTES", attrs)):
        src = re.sub(rf"^{var}: frozenset\[str\] = frozenset\((?:\{{.*?\}})?\)",
                     f"{var}: frozenset[str] = {_block(names)}", src, count=1, flags=re.S | re.M)
    UNSUPPORTED.write_text(src)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite hubkit/ops/unsupported.py's lists")
    args = parser.parse_args()
    if args.write:
        write_unsupported()
    print(table())


if __name__ == "__main__":
    main()
