"""``import hubkit`` stays light: no cupy, requests, tqdm (or other heavy optional packages) at import."""

import json
import subprocess
import sys

HEAVY = ("cupy", "requests", "tqdm", "scipy", "PIL", "torch")


def test_import_hubkit_pulls_in_no_heavy_modules():
    code = (
        "import json, sys, hubkit\n"
        "hubkit.tensor([1.0]) + 1\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_functional_ops_and_the_tensor_api_need_no_heavy_modules_either():
    code = (
        "import json, sys, hubkit, hubkit.nn.functional as F\n"
        "x = hubkit.randn(2, 3, requires_grad=True)\n"
        "F.cross_entropy(F.gelu(x), hubkit.tensor([0, 2])).backward()\n"
        "repr(x)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
