"""Package discovery for hubkit.

The folders ``zoo/``, ``datasets/`` and ``baselines/`` live at the top of the repository but install as
``hubkit.zoo``, ``hubkit.datasets`` and ``hubkit.baselines`` (a bare top-level ``datasets`` would collide with
Hugging Face's package). Everything else is declared in pyproject.toml.
"""

from setuptools import find_packages, setup


def _mapped(folder: str, prefix: str) -> list[str]:
    found = find_packages(include=[folder, folder + ".*"])
    return [prefix + name[len(folder):] for name in found]


setup(
    packages=find_packages(include=["hubkit", "hubkit.*"])
    + _mapped("zoo", "hubkit.zoo")
    + _mapped("datasets", "hubkit.datasets")
    + _mapped("baselines", "hubkit.baselines"),
    package_dir={"hubkit": "hubkit", "hubkit.zoo": "zoo", "hubkit.datasets": "datasets",
                 "hubkit.baselines": "baselines"},
)
