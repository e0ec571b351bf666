"""The registry's data does not change by accident: every model's ``model_info``, key-mapping hook and
preprocessing equal the snapshot in registry_snapshot.json.

The snapshot was written from the registry before its entries moved to ``@register_model``; a deliberate
change to a model's data (a new hash, a pinned revision) is recorded by rewriting it::

    python tests/hub/test_registry_snapshot.py     # then review the diff of registry_snapshot.json

Models registered after the snapshot was written are not in it and are not checked here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import hubkit
from hubkit.errors import ArgumentError
from hubkit.hub import api, registry
from hubkit.hub.registry import TextPreprocessing

SNAPSHOT = Path(__file__).with_name("registry_snapshot.json")


def _describe(name: str) -> dict[str, Any]:
    """What the registry says about ``name``, as plain data: model_info, the key_map hook's name, and each tag's
    preprocessing as built (text tags are left out: building a tokenizer downloads its file)."""
    info = hubkit.model_info(name)
    entry = registry.get_entry(name)
    info["key_map"] = None if entry.key_map is None else f"{entry.key_map.__module__}.{entry.key_map.__qualname__}"
    transforms = {}
    for w in entry.weights:
        if isinstance(w.preprocessing, TextPreprocessing):
            continue
        try:
            transforms[w.tag] = repr(api.get_weights(f"{name}.{w.tag}").transforms())
        except ArgumentError as e:  # weights with no preprocessing say so
            transforms[w.tag] = f"error: {e}"
    info["transforms"] = transforms
    return info


def _snapshot() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(_snapshot()))
def test_registered_model_data_equals_the_snapshot(name):
    assert name in hubkit.list_models(), f"{name} is no longer registered"
    assert json.loads(json.dumps(_describe(name))) == _snapshot()[name]


if __name__ == "__main__":
    import os
    import tempfile

    os.environ["HUBKIT_HOME"] = tempfile.mkdtemp()  # nothing cached: "cached" and recorded hashes stay empty
    data = {name: _describe(name) for name in hubkit.list_models()}
    SNAPSHOT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(data)} models to {SNAPSHOT}", file=sys.stderr)
