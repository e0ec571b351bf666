"""The process-wide switches of hubkit/_config.py (torch.use_deterministic_algorithms and friends), the
deterministic scatter-add they select on CUDA, and set_printoptions against torch's repr."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hubkit
from hubkit import _config
from hubkit._backend import deterministic_scatter_add, scatter_add
from hubkit.errors import ArgumentError, ArgumentTypeError


@pytest.fixture(autouse=True)
def _restore_switches():
    saved = (_config._deterministic, _config._deterministic_warn_only, _config._matmul_precision,
             _config._warn_always, _config._interop_threads, hubkit._tensor_str.get_printoptions())
    yield
    (_config._deterministic, _config._deterministic_warn_only, _config._matmul_precision,
     _config._warn_always, _config._interop_threads, options) = saved
    hubkit.set_printoptions(**options)


# ---------------------------------------------------------------- determinism


def test_deterministic_flags_default_off_and_round_trip():
    assert hubkit.are_deterministic_algorithms_enabled() is False
    assert hubkit.is_deterministic_algorithms_warn_only_enabled() is False
    assert hubkit.get_deterministic_debug_mode() == 0
    hubkit.use_deterministic_algorithms(True)
    assert hubkit.are_deterministic_algorithms_enabled() and hubkit.get_deterministic_debug_mode() == 2
    hubkit.use_deterministic_algorithms(True, warn_only=True)
    assert hubkit.is_deterministic_algorithms_warn_only_enabled() and hubkit.get_deterministic_debug_mode() == 1
    hubkit.use_deterministic_algorithms(False)
    assert not hubkit.are_deterministic_algorithms_enabled() and hubkit.get_deterministic_debug_mode() == 0


@pytest.mark.parametrize("mode, enabled, warn_only", [("default", False, False), ("warn", True, True),
                                                      ("error", True, False), (0, False, False), (1, True, True),
                                                      (2, True, False)])
def test_debug_mode_is_the_other_spelling(mode, enabled, warn_only):
    hubkit.set_deterministic_debug_mode(mode)
    assert hubkit.are_deterministic_algorithms_enabled() is enabled
    assert hubkit.is_deterministic_algorithms_warn_only_enabled() is warn_only
    assert hubkit.get_deterministic_debug_mode() == {False: 0, True: 1 if warn_only else 2}[enabled]


def test_bad_determinism_arguments_raise_torchs_errors():
    with pytest.raises(ArgumentTypeError, match="'mode' must be bool, not str"):
        hubkit.use_deterministic_algorithms("yes")
    with pytest.raises(ArgumentError, match="expected one of `default`, `warn`, `error`, but got loud"):
        hubkit.set_deterministic_debug_mode("loud")
    with pytest.raises(ArgumentError, match="expected 0, 1, or 2, but got 3"):
        hubkit.set_deterministic_debug_mode(3)


INDEX_CASES = [
    ((7,), lambda r: r.integers(0, 7, 50), (50,)),
    ((5, 4), lambda r: (r.integers(-5, 5, 30), r.integers(0, 4, 30)), (30,)),
    ((6, 3), lambda r: r.integers(0, 6, 20), (20, 3)),
    ((6, 3), lambda r: (slice(None), r.integers(0, 3, 9)), (6, 9)),
    ((4, 4), lambda r: np.tile([True, False, True, True], (4, 1)), (12,)),
    ((3, 2), lambda r: (np.array([0, 0, 2]), np.array([1, 1, 1])), ()),
]


@pytest.mark.parametrize("case", range(len(INDEX_CASES)))
def test_deterministic_scatter_add_matches_add_at(case):
    shape, make_index, values_shape = INDEX_CASES[case]
    rng = np.random.default_rng(case)
    index = make_index(rng)
    values = rng.standard_normal(values_shape)
    expected = rng.standard_normal(shape)
    got = expected.copy()
    np.add.at(expected, index, values)
    deterministic_scatter_add(got, index, values)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_deterministic_scatter_add_handles_non_contiguous_targets_and_long_runs():
    target = np.zeros((3, 1000)).T  # a transposed view: written through, not replaced
    index = np.zeros(5000, dtype=np.int64)  # one run of 5000 contributions to the same row
    values = np.random.default_rng(0).standard_normal((5000, 3))
    deterministic_scatter_add(target, index, values)
    np.testing.assert_allclose(target[0], values.sum(axis=0), rtol=1e-10)
    assert not target[1:].any()


def test_scatter_add_on_the_cpu_is_numpys_add_at_either_way():
    hubkit.use_deterministic_algorithms(True)
    target = np.zeros(3)
    scatter_add(target, np.array([0, 0, 2]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(target, [3.0, 0.0, 3.0])
    x = hubkit.zeros(4).index_add(0, hubkit.tensor([1, 1, 3]), hubkit.tensor([1.0, 2.0, 5.0]))
    assert x.tolist() == [0.0, 3.0, 0.0, 5.0]


@pytest.mark.gpu
def test_cuda_scatter_adds_are_bitwise_reproducible_under_the_flag():
    hubkit.use_deterministic_algorithms(True)
    rng = np.random.default_rng(0)
    index = rng.integers(0, 50, 200_000)
    values = rng.standard_normal((200_000, 8)).astype(np.float32)
    expected = np.zeros((50, 8), np.float32)
    np.add.at(expected, index, values)
    runs = []
    for _ in range(3):
        out = hubkit.zeros(50, 8, device="cuda").index_add(0, hubkit.tensor(index, device="cuda"),
                                                            hubkit.tensor(values, device="cuda"))
        runs.append(out.cpu().numpy())
    assert all(np.array_equal(runs[0], r) for r in runs[1:])
    np.testing.assert_allclose(runs[0], expected, rtol=1e-4, atol=1e-3)
    weights = hubkit.tensor(values[:, 0], device="cuda")
    counts = [hubkit.bincount(hubkit.tensor(index, device="cuda"), weights).cpu().numpy() for _ in range(2)]
    assert np.array_equal(counts[0], counts[1])
    emb = hubkit.nn.Embedding(50, 8).to("cuda")
    grads = []
    for _ in range(2):
        emb.zero_grad()
        emb(hubkit.tensor(index[:20000], device="cuda")).sum().backward()
        grads.append(emb.weight.grad.cpu().numpy())
    assert np.array_equal(grads[0], grads[1])


@pytest.mark.parity
def test_flags_match_torchs_defaults():
    import torch

    assert hubkit.are_deterministic_algorithms_enabled() == torch.are_deterministic_algorithms_enabled()
    assert hubkit.get_deterministic_debug_mode() == torch.get_deterministic_debug_mode()
    assert hubkit.get_float32_matmul_precision() == torch.get_float32_matmul_precision()
    assert hubkit.is_warn_always_enabled() == torch.is_warn_always_enabled()


# ---------------------------------------------------------------- matmul precision, compile, the rest


def test_float32_matmul_precision_is_recorded_and_validated():
    assert hubkit.get_float32_matmul_precision() == "highest"
    for value in ("high", "medium", "highest"):
        hubkit.set_float32_matmul_precision(value)
        assert hubkit.get_float32_matmul_precision() == value
    hubkit.set_float32_matmul_precision("medium")
    with pytest.warns(UserWarning, match="low is not one of 'highest', 'high', or 'medium'"):
        hubkit.set_float32_matmul_precision("low")
    assert hubkit.get_float32_matmul_precision() == "medium"
    # GEMMs stay full FP32 whatever is set: a product needing all 24 mantissa bits comes out exact
    a = hubkit.tensor([[1 + 2**-20]], dtype=hubkit.float32)
    assert (a @ a).item() == np.float32(1 + 2**-20) * np.float32(1 + 2**-20)


def test_compile_returns_the_model_itself_in_every_spelling():
    model = hubkit.nn.Linear(3, 2)
    assert hubkit.compile(model) is model
    assert hubkit.compile(model, mode="max-autotune", fullgraph=True, dynamic=False, backend="inductor") is model

    def f(x):
        return x * 2

    assert hubkit.compile(f) is f
    assert hubkit.compile(mode="reduce-overhead")(f) is f

    @hubkit.compile
    def g(x):
        return x + 1

    assert g(hubkit.tensor(1.0)).item() == 2.0
    x = hubkit.randn(4, 3)
    np.testing.assert_array_equal(hubkit.compile(model)(x).detach().numpy(), model(x).detach().numpy())
    assert list(hubkit.compile(model).state_dict()) == ["weight", "bias"]


def test_compile_checks_arguments_like_torch():
    with pytest.raises(ArgumentError, match="Either mode or options can be specified"):
        hubkit.compile(lambda x: x, mode="default", options={"trace.enabled": True})
    with pytest.raises(ArgumentError, match="Unrecognized mode=fastest"):
        hubkit.compile(lambda x: x, mode="fastest")
    with pytest.raises(ArgumentTypeError, match="model must be a Module or a callable"):
        hubkit.compile(3)


def test_warn_always_interop_threads_and_is_storage():
    assert hubkit.is_warn_always_enabled() is False
    hubkit.set_warn_always(True)
    assert hubkit.is_warn_always_enabled() is True
    assert hubkit.get_num_interop_threads() >= 1
    hubkit.set_num_interop_threads(3)
    assert hubkit.get_num_interop_threads() == 3
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ArgumentError, match="set_num_interop_threads expects a positive integer"):
            hubkit.set_num_interop_threads(bad)
    assert hubkit.is_storage(hubkit.ones(2)) is False and hubkit.is_storage(np.ones(2)) is False


# ---------------------------------------------------------------- print options

PRINT_CASES = [
    ({"precision": 2}, [1.23456, 2.5]),
    ({"precision": 6}, [[1.0 / 3, -2.0], [7.25, 1e-3]]),
    ({"sci_mode": True}, [1.23456, 2.5]),
    ({"sci_mode": True}, [1.0, 2.0]),
    ({"sci_mode": False}, [1e-6, 2.5e9]),
    ({"threshold": 5, "edgeitems": 1}, list(range(10))),
    ({"threshold": 5, "edgeitems": 2}, np.arange(24.0).reshape(4, 6).tolist()),
    ({"profile": "short"}, (np.arange(2000.0) / 3).tolist()),
    ({"profile": "full"}, list(range(1002))),
    ({"linewidth": 30}, np.arange(20.0).tolist()),
    ({"linewidth": 40, "precision": 3}, (np.arange(12.0) / 7).reshape(3, 4).tolist()),
]


@pytest.mark.parametrize("case", range(len(PRINT_CASES)))
def test_set_printoptions_changes_repr(case):
    options, data = PRINT_CASES[case]
    default = repr(hubkit.tensor(data))
    hubkit.set_printoptions(**options)
    changed = repr(hubkit.tensor(data))
    hubkit.set_printoptions(profile="default")
    assert repr(hubkit.tensor(data)) == default
    assert changed != default or options.get("sci_mode") is False


@pytest.mark.parity
@pytest.mark.parametrize("case", range(len(PRINT_CASES)))
def test_set_printoptions_matches_torch(case):
    import torch

    options, data = PRINT_CASES[case]
    old = torch._tensor_str.get_printoptions()
    try:
        hubkit.set_printoptions(**options)
        torch.set_printoptions(**options)
        for dtype in ("float32", "int64"):
            if dtype == "int64" and any(isinstance(v, float) and not v.is_integer() for v in np.ravel(data)):
                continue
            h = repr(hubkit.tensor(np.array(data, dtype=dtype)))
            t = repr(torch.tensor(np.array(data, dtype=dtype)))
            assert h == t.replace("torch.", "hubkit.")
    finally:
        torch.set_printoptions(**old)


def test_profile_resets_the_other_options_and_unknown_profiles_are_ignored():
    hubkit.set_printoptions(precision=7, threshold=3, edgeitems=1, linewidth=20, sci_mode=True)
    hubkit.set_printoptions(profile="default")
    assert hubkit._tensor_str.get_printoptions() == {"precision": 4, "threshold": 1000, "edgeitems": 3,
                                                      "linewidth": 80, "sci_mode": None}
    hubkit.set_printoptions(profile="no-such-profile")  # torch ignores it too
    assert hubkit._tensor_str.get_printoptions()["precision"] == 4
    with hubkit._tensor_str.printoptions(precision=1):
        assert repr(hubkit.tensor([1.25])) == "tensor([1.2])"
    assert repr(hubkit.tensor([1.25])) == "tensor([1.2500])"


def test_no_warnings_from_the_switches():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hubkit.set_float32_matmul_precision("high")
        hubkit.use_deterministic_algorithms(True, warn_only=True)
