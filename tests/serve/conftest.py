"""Fixtures of the serve tests: local model assets and the main server, both once per session."""

from __future__ import annotations

import pytest
from servekit import ServeProcess, make_assets


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("serve_assets"))


@pytest.fixture(scope="session")
def server(assets, tmp_path_factory):
    """One server (shared by the inference and page tests) with an image classifier, a sentence encoder and a
    speech recognizer (a TOML config for its builder arguments), a 2 MiB request and 4-megapixel image limit."""
    workdir = tmp_path_factory.mktemp("server")
    toml = workdir / "serve.toml"
    toml.write_text(
        "access_log = \"-\"\n"
        "[models.asr]\n"
        f"url = \"wav2vec2_asr_base_960h:{assets.asr}\"\n"
        "model_kwargs = {conv_layers = [[8, 10, 5], [8, 3, 2]], embed_dim = 16, pos_conv_kernel = 4, "
        "pos_conv_groups = 2, num_layers = 2, num_heads = 2, ffn_dim = 24, dropout = 0.0, attention_dropout = 0.0}\n",
        encoding="utf-8",
    )
    proc = ServeProcess([f"shuf=shufflenet_v2_x0_5:{assets.shufflenet_v2_x0_5}", f"st=all-MiniLM-L6-v2:{assets.text}",
                         "--config", str(toml), "--max-request-size", "2M", "--max-image-pixels", "4000000"],
                        workdir)  # fmt: skip
    yield proc
    proc.stop()
