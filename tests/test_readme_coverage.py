"""README's table of PyTorch API coverage is what scripts/torch_api/coverage.py computes today."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parity
def test_readme_coverage_table_is_current():
    spec = importlib.util.spec_from_file_location("coverage_script", ROOT / "scripts" / "torch_api" / "coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.table()
    assert table in (ROOT / "README.md").read_text(), (
        "README.md's coverage table is out of date: paste the output of python scripts/torch_api/coverage.py")
