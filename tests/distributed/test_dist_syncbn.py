"""SyncBatchNorm over 2 and 3 ranks (uneven and empty batches, 2D to 5D inputs, a subgroup, DDP training) equals
one process running BatchNorm on the concatenated batch: outputs, running statistics and every gradient."""

import numpy as np
import pytest
from distjob import explain, hubkit_run, needs_mpi

import hubkit
import hubkit.nn.functional as F
from hubkit import nn, optim

pytestmark = [pytest.mark.distributed, needs_mpi]

# the options each case of ranks/syncbn.py gives its SyncBatchNorm
CASES = {
    "uneven_4d": {},
    "float32_3d": {"momentum": None},
    "empty_rank_2d": {"affine": False},
    "untracked_5d": {"track_running_stats": False, "bias": False},
    "subgroup": {},
}
STEPS = 2


def groups_of(case, nproc):
    """The sets of ranks that synchronize together in ``case`` (see ranks/syncbn.py)."""
    if case == "subgroup":
        return [[0, 2], [1]] if nproc == 3 else [[0], [1]]
    return [list(range(nproc))]


@pytest.fixture(scope="module", params=[2, 3])
def job(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"syncbn{request.param}")
    result = hubkit_run("syncbn.py", request.param, out, timeout=240)
    assert result.returncode == 0, explain(result)
    assert sorted(p.name for p in out.glob("ok_*")) == [f"ok_{r}" for r in range(request.param)], explain(result)
    return request.param, out


def load(out, case, ranks):
    return [dict(np.load(out / f"{case}_{r}.npz")) for r in ranks]


def hubkit_batch_norm(channels, ndim, dtype, options, weight, bias):
    cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[ndim]
    bn = cls(channels, dtype=dtype, **options)
    if weight is not None:
        bn.weight.array[...] = weight
    if bias is not None:
        bn.bias.array[...] = bias
    return bn, hubkit.from_numpy, lambda t: t.detach().numpy()


def torch_batch_norm(channels, ndim, dtype, options, weight, bias):
    import torch

    cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d, 5: torch.nn.BatchNorm3d}[ndim]
    bn = cls(channels, dtype=getattr(torch, np.dtype(dtype).name), **options)
    with torch.no_grad():
        if weight is not None:
            bn.weight.copy_(torch.from_numpy(weight))
        if bias is not None:
            bn.bias.copy_(torch.from_numpy(bias))
    return bn, torch.from_numpy, lambda t: t.detach().numpy()


def check_against_single_process(out, case, ranks, make_batch_norm):
    """Replay ``ranks``' batches of ``case`` concatenated through one BatchNorm and compare every saved value."""
    files = load(out, case, ranks)
    first = files[0]
    dtype = first["x0"].dtype
    tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-10, "atol": 1e-10}
    bn, wrap, unwrap = make_batch_norm(first["x0"].shape[1], first["x0"].ndim, dtype, CASES[case],
                                       first.get("weight"), first.get("bias"))
    bounds = np.cumsum([0] + [f["x0"].shape[0] for f in files])
    for step in range(STEPS):
        x = wrap(np.concatenate([f[f"x{step}"] for f in files])).requires_grad_()
        g = wrap(np.concatenate([f[f"g{step}"] for f in files]))
        bn.zero_grad()
        y = bn(x)
        (y * g).sum().backward()
        for i, f in enumerate(files):
            mine = slice(bounds[i], bounds[i + 1])
            np.testing.assert_allclose(f[f"y{step}"], unwrap(y)[mine], **tol, err_msg=f"{case} y{step} rank {i}")
            np.testing.assert_allclose(f[f"gx{step}"], unwrap(x.grad)[mine], **tol,
                                       err_msg=f"{case} input grad step {step} rank {i}")
        for p in ("weight", "bias"):
            if getattr(bn, p) is not None:  # each rank holds its own part; their sum is the whole gradient
                total = sum(f[f"g{p}{step}"].astype(np.float64) for f in files)
                np.testing.assert_allclose(total, unwrap(getattr(bn, p).grad), **tol,
                                           err_msg=f"{case} {p} grad step {step}")
    for buffer in ("running_mean", "running_var", "num_batches_tracked"):
        if getattr(bn, buffer) is None:
            assert not any(buffer in f for f in files)
            continue
        for i, f in enumerate(files):
            np.testing.assert_allclose(f[buffer], unwrap(getattr(bn, buffer)), **tol, err_msg=f"{case} {buffer} {i}")
    bn.eval()  # eval mode never synchronizes: each rank's batch alone, with the running statistics if tracked
    for i, f in enumerate(files):
        np.testing.assert_allclose(f["y_eval"], unwrap(bn(wrap(f["x_eval"]))), **tol, err_msg=f"{case} eval {i}")


def test_uneven_batches_equal_batch_norm_on_the_concatenated_batch(job):
    nproc, out = job
    sizes = [np.load(out / f"uneven_4d_{r}.npz")["x0"].shape[0] for r in range(nproc)]
    assert len(set(sizes)) == nproc  # the batches really differ
    check_against_single_process(out, "uneven_4d", range(nproc), hubkit_batch_norm)


@pytest.mark.parametrize("case", ["float32_3d", "empty_rank_2d", "untracked_5d"])
def test_dims_dtypes_options_and_an_empty_rank_equal_batch_norm(job, case):
    nproc, out = job
    check_against_single_process(out, case, range(nproc), hubkit_batch_norm)


def test_an_empty_batch_gives_an_empty_output_and_gradient(job):
    nproc, out = job
    empty = np.load(out / "empty_rank_2d_1.npz")
    assert empty["x0"].shape == empty["y0"].shape == empty["gx0"].shape == (0, 5)


def test_a_subgroup_synchronizes_only_its_members(job):
    nproc, out = job
    for ranks in groups_of("subgroup", nproc):
        check_against_single_process(out, "subgroup", ranks, hubkit_batch_norm)


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def test_converted_cnn_trained_under_ddp_equals_single_process_training(job):
    nproc, out = job
    saved = np.load(out / "ddp.npz")
    model = small_cnn()
    model.load_state_dict({k[len("initial."):]: hubkit.from_numpy(saved[k]) for k in saved.files
                           if k.startswith("initial.")})
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(saved["x"].shape[0]):
        opt.zero_grad()
        F.cross_entropy(model(hubkit.from_numpy(saved["x"][step])), hubkit.from_numpy(saved["y"][step])).backward()
        opt.step()
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(saved[f"trained.{key}"], value.numpy(), rtol=0, atol=1e-6, err_msg=key)


@pytest.mark.parity
@pytest.mark.parametrize("case", list(CASES))
def test_every_case_equals_torch_batch_norm_on_the_concatenated_batch(job, case):
    pytest.importorskip("torch")
    nproc, out = job
    for ranks in groups_of(case, nproc):
        check_against_single_process(out, case, ranks, torch_batch_norm)
