"""Baseline scripts end to end in a smoke configuration: small data in the upstream file formats, served by
the local HTTP server, downloaded through the dataset classes; the loss decreases and results.json says what
was run and against which published number."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from dsfiles import cifar_batch, gz, idx_bytes, md5, serve, tar_gz, wav_bytes

import hubkit
from hubkit.baselines import NAMES, get
from hubkit.baselines._common import RESULTS_MD, Baseline, Outcome, append_row
from hubkit.errors import ArgumentError


def _digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 28x28 images: a bright bar whose height encodes the label, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 50, (n, 28, 28)).astype(np.uint8)
    for i, y in enumerate(labels):
        images[i, 2 + 2 * y: 5 + 2 * y, 4:24] = 230
    return images, labels


def _serve_idx(server, monkeypatch, cls, train: int = 256, test: int = 64) -> None:
    (xtr, ytr), (xte, yte) = _digits(train, 0), _digits(test, 1)
    serve(server, monkeypatch, cls, {
        "train-images-idx3-ubyte.gz": gz(idx_bytes(xtr)), "train-labels-idx1-ubyte.gz": gz(idx_bytes(ytr)),
        "t10k-images-idx3-ubyte.gz": gz(idx_bytes(xte)), "t10k-labels-idx1-ubyte.gz": gz(idx_bytes(yte)),
    })


def _run(name: str, tmp_path, *argv: str) -> dict:
    out = tmp_path / "out"
    assert get(name).main(["--data-root", str(tmp_path / "data"), "--out", str(out), "--seed", "0", *argv]) == 0
    return json.loads((out / "results.json").read_text())


def _check_record(record: dict, name: str) -> None:
    baseline = get(name).BASELINE
    assert record["baseline"] == name and record["published"]["value"] == baseline.published
    assert record["published"]["source"] == baseline.source
    assert record["seed"] == 0 and record["environment"]["hubkit"] == hubkit.__version__
    assert record["hardware"]["cpu_count"] >= 1 and record["wall_time_s"] > 0
    assert record["command"].startswith(f"python -m hubkit.baselines.{name} ")
    assert record["protocol"] != "full"  # smoke data is never reported as the published protocol


def test_mnist_lenet5_smoke(http_server, monkeypatch, tmp_path):
    from hubkit.datasets import MNIST

    _serve_idx(http_server, monkeypatch, MNIST)
    record = _run("mnist_lenet5", tmp_path, "--epochs", "3", "--batch-size", "32", "--lr", "0.05")
    _check_record(record, "mnist_lenet5")
    losses = record["train_loss_per_epoch"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert 0 <= record["reproduced"] <= 100
    assert record["reproduced"] == pytest.approx(record["metrics"]["test_error_pct"])


def test_mnist_lenet5_t10k_split_reads_the_official_files_layout(tmp_path):
    x, y = _digits(8100, 2)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "t10k-images-idx3-ubyte.gz").write_bytes(gz(idx_bytes(x)))
    (flat / "t10k-labels-idx1-ubyte.gz").write_bytes(gz(idx_bytes(y)))
    module = get("mnist_lenet5")
    # these are not the upstream bytes: the md5 check must refuse them rather than train on them
    with pytest.raises(hubkit.errors.HubkitError, match="md5"):
        module.main(["--t10k-split", "--data-root", str(flat), "--out", str(tmp_path / "o"), "--epochs", "1"])
    with pytest.raises(ArgumentError, match="--data-root"):
        module.main(["--t10k-split", "--out", str(tmp_path / "o"), "--epochs", "1"])


def test_fashion_mnist_cnn_smoke(http_server, monkeypatch, tmp_path):
    from hubkit.datasets import FashionMNIST

    _serve_idx(http_server, monkeypatch, FashionMNIST, train=128, test=32)
    record = _run("fashion_mnist_cnn", tmp_path, "--epochs", "3", "--batch-size", "32", "--lr", "0.05")
    _check_record(record, "fashion_mnist_cnn")
    losses = record["train_loss_per_epoch"]
    assert losses[-1] < losses[0] and 0 <= record["reproduced"] <= 1


def _cifar_archive(per_batch: int) -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    members = {}
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        labels = rng.integers(0, 10, per_batch)
        images = rng.integers(0, 60, (per_batch, 3, 32, 32)).astype(np.uint8)
        for i, y in enumerate(labels):  # the label decides which band is bright: learnable in a few steps
            images[i, :, 3 * y: 3 * y + 3] = 240
        members[f"cifar-10-batches-py/{name}"] = cifar_batch(images.reshape(per_batch, -1), labels.tolist())
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {"label_names": [f"c{i}" for i in range(10)], "num_cases_per_batch": per_batch, "num_vis": 3072}, protocol=2)
    return members


def test_cifar10_resnet20_smoke(http_server, monkeypatch, tmp_path):
    from hubkit.datasets import CIFAR10

    members = _cifar_archive(16)
    folder = "cifar-10-batches-py"
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(members[f"{folder}/{n}"])] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[n, md5(members[f"{folder}/{n}"])] for n, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", dict(CIFAR10.meta, md5=md5(members[f"{folder}/batches.meta"])))
    serve(http_server, monkeypatch, CIFAR10, {"cifar-10-python.tar.gz": tar_gz(members)})
    record = _run("cifar10_resnet20", tmp_path, "--epochs", "4", "--batch-size", "16", "--lr", "0.05")
    _check_record(record, "cifar10_resnet20")
    assert record["metrics"]["iterations"] == 20  # 80 images / 16 per batch x 4 epochs; milestones at 10 and 15
    losses = record["train_loss_per_epoch"]
    assert len(losses) == 4 and losses[-1] < losses[0]


def test_speechcommands_m5_smoke(http_server, monkeypatch, tmp_path):
    from hubkit.datasets import SPEECHCOMMANDS

    rng = np.random.default_rng(4)
    files, test_lines = {}, []
    t = np.arange(16000) / 16000
    for label, freq in (("yes", 300), ("no", 900), ("up", 2000)):
        for k in range(10):
            name = f"{label}/s{k:02d}_nohash_0.wav"
            wave = 0.5 * np.sin(2 * np.pi * (freq + 20 * k) * t) + 0.05 * rng.standard_normal(16000)
            files[name] = wav_bytes((wave * 32767).astype(np.int16), rate=16000)
            if k >= 8:
                test_lines.append(name)
    files["validation_list.txt"] = b""
    files["testing_list.txt"] = ("\n".join(test_lines) + "\n").encode()
    serve(http_server, monkeypatch, SPEECHCOMMANDS, {"speech_commands_v0.02.tar.gz": tar_gz(files)})
    record = _run("speechcommands_m5", tmp_path, "--epochs", "6", "--batch-size", "8", "--lr", "0.01")
    _check_record(record, "speechcommands_m5")
    assert record["metrics"]["labels"] == 3 and record["metrics"]["test_clips"] == 6
    losses = record["train_loss_per_epoch"]
    assert losses[-1] < losses[0]


# ---------------------------------------------------------------- the table and RESULTS.md


def test_every_baseline_declares_its_published_number_and_flags():
    for name in NAMES:
        module = get(name)
        baseline = module.BASELINE
        assert baseline.name == name and baseline.source and callable(module.main)
        help_text = module.main.__doc__ or ""
        assert isinstance(help_text, str)
    with pytest.raises(ArgumentError, match="did you mean mnist_lenet5"):
        get("mnist_lenet")


def test_results_md_lists_every_baseline_and_no_unmeasured_number():
    text = RESULTS_MD.read_text()
    for name in NAMES:
        assert f"| {name} |" in text
    assert "| baseline | metric | published | reproduced |" in text


def test_append_row_labels_other_protocols_and_keeps_the_table(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# x\n\n| baseline | metric | published | reproduced | command | hardware | time | date "
                       "| notes |\n|---|---|---|---|---|---|---|---|---|\n")
    baseline = Baseline("demo", "a task", "error (%)", 1.0, "a paper")
    record = {"protocol": "t10k split", "hardware": {"cpu": "cpu", "cpu_count": 2}, "reproduced": 2.5,
              "command": "python -m hubkit.baselines.demo", "wall_time_s": 60.0, "date": "2026-12-02T00:00:00",
              "note": "torch: 2.4"}
    append_row(baseline, record, results)
    row = results.read_text().splitlines()[-1]
    assert row.startswith("| demo | error (%) (t10k split; not the published protocol) | 1.0 | 2.5 |")
    assert row.endswith("| torch: 2.4 |")
    broken = tmp_path / "broken.md"
    broken.write_text("no table\n")
    with pytest.raises(ArgumentError, match="measured-runs table"):
        append_row(baseline, record, broken)


def test_cli_lists_and_runs(capsys):
    from hubkit.cli import main

    assert main(["baselines", "list"]) == 0
    out = capsys.readouterr().out
    assert "cifar10_resnet20" in out and "8.75" in out and "He et al. 2016" in out
    assert main(["baselines", "run", "nope"]) == 1
    assert "no baseline named 'nope'" in capsys.readouterr().err


def test_outcome_record_keeps_published_and_reproduced_apart():
    from hubkit.baselines._common import make_record, parser_for

    baseline = Baseline("demo", "task", "acc", 0.9, "src", lower_is_better=False)
    args = parser_for(baseline).parse_args(["--seed", "3", "--out", "x"])
    record = make_record(baseline, args, Outcome(0.5, {"acc": 0.5}, "full"), 1.5, ["--seed", "3"])
    assert record["reproduced"] == 0.5 and record["published"] == {"value": 0.9, "metric": "acc", "source": "src"}
    assert record["command"] == "python -m hubkit.baselines.demo --seed 3"


def _serve_weights(http_server, monkeypatch, tmp_path, name: str, state: dict) -> None:
    """Point ``name``'s DEFAULT tag at ``state`` (random weights), saved and served by the local server."""
    import dataclasses
    import hashlib

    from hubkit.hub import api, registry, save_checkpoint

    api._ensure_zoo()
    entry = registry.get_entry(name)
    save_checkpoint(state, tmp_path / "w.pth", format="torch")
    data = (tmp_path / "w.pth").read_bytes()
    url = http_server.add(f"/weights/{name}.pth", data)
    tags = tuple(dataclasses.replace(w, url=url, sha256=hashlib.sha256(data).hexdigest(), sha256_prefix=None,
                                     size=len(data)) if w.tag == entry.default else w for w in entry.weights)
    monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(entry, weights=tags))


def test_imagenet_eval_smoke_on_an_image_folder(http_server, monkeypatch, tmp_path):
    from PIL import Image

    hubkit.manual_seed(0)
    model = hubkit.load("squeezenet1_1")
    _serve_weights(http_server, monkeypatch, tmp_path, "squeezenet1_1",
                   {k: v.numpy() for k, v in model.state_dict().items()})
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    for k in range(1000):
        folder = root / f"n{k:08d}"
        folder.mkdir(parents=True)
        if k < 3:
            Image.fromarray(rng.integers(0, 255, (300, 280, 3), dtype=np.uint8)).save(folder / "a.JPEG")
    record = _run("imagenet_eval", tmp_path, "--model", "squeezenet1_1", "--batch-size", "2")
    _check_record(record, "imagenet_eval")
    assert record["metrics"]["images"] == 3 and record["protocol"] == "3 of the 50000 validation images"
    assert record["metrics"]["published_acc@1"] == 58.178
    assert 0 <= record["metrics"]["acc@1"] <= record["metrics"]["acc@5"] <= 100


# ---------------------------------------------------------------- the evaluation baselines on tiny models


def _test_module(relative: str):
    """Another test file's module, for its tiny-model fixtures (it is imported, not collected)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / relative
    spec = importlib.util.spec_from_file_location(f"_fixtures_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stsb_minilm_smoke(http_server, monkeypatch, tmp_path):
    from hubkit.datasets import STSB
    from hubkit.hub.transport.download import Resource

    _test_module("zoo/test_text_models.py")._serve_tiny_minilm(http_server, tmp_path, monkeypatch)
    stsb = _test_module("datasets/test_stsb.py")
    rows = [("test", "g", "d", "2014", f"{i:04d}", f"{score:.3f}", a, b) for i, (score, a, b) in enumerate([
        (5.0, "the cat sat on the mat.", "the cat sat on the mat."), (0.2, "a dog", "hello world"),
        (3.1, "the cat sat", "a cat sat on the mat."), (1.0, "running dogs", "the mat."),
    ])]
    url = http_server.add("/stsb/stsbenchmark.tsv.gz", stsb.tsv_gz(rows))
    monkeypatch.setattr(STSB, "resources", (Resource(url=url),))
    record = _run("stsb_minilm", tmp_path, "--batch-size", "2")
    _check_record(record, "stsb_minilm")
    assert record["metrics"]["pairs"] == 4 and record["protocol"] == "4 pairs (the test split has 1379)"
    assert -1 <= record["reproduced"] <= 1 and record["reproduced"] == record["metrics"]["spearman_cosine"]


def test_spearman_handles_ties_like_the_textbook():
    from hubkit.baselines.stsb_minilm import ranks, spearman

    np.testing.assert_array_equal(ranks(np.array([10.0, 20.0, 20.0, 5.0])), [2.0, 3.5, 3.5, 1.0])
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 20.0, 100.0])) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)


def test_librispeech_wav2vec2_smoke(http_server, monkeypatch, tmp_path):
    from hubkit.datasets import LIBRISPEECH

    _test_module("zoo/test_audio_models.py")._serve_tiny_recognizer(http_server, tmp_path, monkeypatch)
    libri = _test_module("datasets/test_librispeech.py")
    members, _ = libri.tree("test-clean")
    serve(http_server, monkeypatch, LIBRISPEECH, {"test-clean.tar.gz": tar_gz(members)})
    record = _run("librispeech_wav2vec2", tmp_path)
    _check_record(record, "librispeech_wav2vec2")
    assert record["metrics"]["utterances"] == 3 and record["metrics"]["reference_words"] == 19  # 8 + 8 + 3
    assert record["reproduced"] >= 0 and len(record["examples"]) == 3
    assert record["examples"][0]["reference"] == "HE HOPED THERE WOULD BE STEW FOR DINNER"


def test_word_edits_counts_substitutions_insertions_and_deletions():
    from hubkit.baselines.librispeech_wav2vec2 import word_edits

    assert word_edits(["THE", "CAT", "SAT"], ["THE", "CAT", "SAT"]) == 0
    assert word_edits(["THE", "CAT", "SAT"], ["A", "CAT", "SAT", "ON"]) == 2
    assert word_edits(["THE", "CAT", "SAT"], []) == 3
