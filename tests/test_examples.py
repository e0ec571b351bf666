"""The examples in examples/ run as documented."""

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_train_mlp_example_learns_the_spirals(capsys):
    runpy.run_path(str(EXAMPLES / "train_mlp.py"), run_name="__main__")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert float(last.split("accuracy")[1]) >= 0.95
