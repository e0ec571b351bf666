"""The Optimizer base as torch code uses it: hooks, groups, zero_grad, torch-shaped state, options and bad input."""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
import hubkit.optim as optim
from hubkit.errors import ArgumentError, ArgumentTypeError, GradError
from hubkit.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

ALL = ["SGD", "Adam", "AdamW", "Adadelta", "Adagrad", "Adamax", "ASGD", "LBFGS", "NAdam", "RAdam", "RMSprop", "Rprop",
       "SparseAdam"]
ADAM_FAMILY = ["Adam", "AdamW", "Adamax", "NAdam", "RAdam", "SparseAdam"]
# the flags torch's constructors take besides maximize (True is refused where it has no hubkit counterpart)
FLAGS = {"SGD": ["foreach", "differentiable", "fused"],
         "Adam": ["foreach", "capturable", "differentiable", "fused"],
         "AdamW": ["foreach", "capturable", "differentiable", "fused"],
         "Adadelta": ["foreach", "capturable", "differentiable"], "Adagrad": ["foreach", "differentiable", "fused"],
         "Adamax": ["foreach", "capturable", "differentiable"], "ASGD": ["foreach", "capturable", "differentiable"],
         "NAdam": ["foreach", "capturable", "differentiable"], "RAdam": ["foreach", "capturable", "differentiable"],
         "RMSprop": ["foreach", "capturable", "differentiable"], "Rprop": ["foreach", "capturable", "differentiable"],
         "LBFGS": [], "SparseAdam": []}


def _params() -> list[nn.Parameter]:
    rng = np.random.default_rng(0)
    return [nn.Parameter(hubkit.from_numpy(rng.standard_normal(s).astype(np.float32))) for s in [(3, 2), (2,)]]


def _with_grads(params):
    for p in params:
        p.grad = hubkit.ones(*p.shape)
    return params


@pytest.mark.parametrize("name", ALL)
def test_every_optimizer_takes_maximize_and_torchs_flags(name):
    factory = getattr(optim, name)
    opt = factory(_params(), maximize=True, **{flag: False for flag in FLAGS[name]})
    group = opt.param_groups[0]
    assert group["maximize"] is True and all(group[flag] is False for flag in FLAGS[name])
    for flag in FLAGS[name]:
        if flag in ("capturable", "differentiable"):
            with pytest.raises(ArgumentError, match=f"{flag}=True"):
                factory(_params(), **{flag: True})


@pytest.mark.parametrize("name", [n for n in ALL if "fused" in FLAGS[n]])
def test_fused_is_accepted_but_not_together_with_foreach(name):
    opt = getattr(optim, name)(_with_grads(_params()), fused=True)
    opt.step()
    with pytest.raises(ArgumentError, match="fused"):
        getattr(optim, name)(_params(), fused=True, foreach=True)


@pytest.mark.parametrize("name", ALL)
def test_bad_params_and_learning_rates_raise_clear_errors(name):
    factory = getattr(optim, name)
    with pytest.raises(ArgumentError, match="empty parameter list"):
        factory([])
    with pytest.raises(ArgumentTypeError, match="iterable of Tensors"):
        factory(nn.Parameter(hubkit.zeros(1)))
    with pytest.raises(ArgumentTypeError, match="iterable of Tensors"):
        factory(5)
    with pytest.raises(ArgumentTypeError, match="can only optimize Tensors"):
        factory([np.zeros(3)])
    with pytest.raises(ArgumentError, match="learning rate"):
        factory(_params(), lr=-0.1)


@pytest.mark.parametrize("name", ADAM_FAMILY)
@pytest.mark.parametrize("betas", [(1.0, 0.999), (0.9, -0.1), (0.9,)])
def test_invalid_betas_are_refused(name, betas):
    with pytest.raises(ArgumentError, match="beta"):
        getattr(optim, name)(_params(), betas=betas)


def test_other_hyperparameter_checks():
    with pytest.raises(ArgumentError, match="rho"):
        optim.Adadelta(_params(), rho=1.5)
    with pytest.raises(ArgumentError, match="eta values"):
        optim.Rprop(_params(), etas=(1.2, 0.5))
    with pytest.raises(ArgumentError, match="weight_decay"):
        optim.NAdam(_params(), weight_decay=-1)
    with pytest.raises(ArgumentError, match="momentum_decay"):
        optim.NAdam(_params(), momentum_decay=-1)
    with pytest.raises(ArgumentError, match="epsilon"):
        optim.SparseAdam(_params(), eps=0.0)
    with pytest.raises(ArgumentError, match="non-leaf"):
        optim.SGD([nn.Parameter(hubkit.zeros(2)) * 2], lr=0.1)


def test_state_holds_tensors_like_torch():
    params = _with_grads(_params())
    opt = optim.Adam(params, lr=0.1)
    opt.step()
    state = opt.state[params[0]]
    assert isinstance(state["exp_avg"], hubkit.Tensor) and state["exp_avg"].shape == params[0].shape
    assert isinstance(state["step"], hubkit.Tensor) and state["step"].shape == () and state["step"].item() == 1.0
    assert state["step"].dtype == hubkit.float32
    assert opt.state_dict()["state"][0]["exp_avg"] is state["exp_avg"]  # torch returns references too


def test_step_hooks_run_around_step_and_can_be_removed():
    opt = optim.SGD(_with_grads(_params()), lr=0.1)
    calls = []
    pre = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o is opt)))
    post = opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", o is opt)))
    opt.step()
    assert calls == [("pre", True), ("post", True)]
    pre.remove()
    post.remove()
    opt.step()
    assert len(calls) == 2


def test_step_pre_hook_can_replace_the_arguments():
    opt = optim.SGD(_with_grads(_params()), lr=0.1)
    opt.register_step_pre_hook(lambda o, args, kwargs: ((), {"closure": lambda: 42.0}))
    assert opt.step() == 42.0
    opt.register_step_pre_hook(lambda o, args, kwargs: "nonsense")
    with pytest.raises(ArgumentError, match="pre-hook"):
        opt.step()


def test_global_step_hooks_see_every_optimizer():
    seen = []
    pre = register_optimizer_step_pre_hook(lambda o, a, k: seen.append(type(o).__name__))
    post = register_optimizer_step_post_hook(lambda o, a, k: seen.append("after"))
    try:
        optim.Adam(_with_grads(_params())).step()
        optim.RMSprop(_with_grads(_params())).step()
    finally:
        pre.remove()
        post.remove()
    optim.SGD(_with_grads(_params())).step()
    assert seen == ["Adam", "after", "RMSprop", "after"]


def test_state_dict_and_load_state_dict_hooks():
    opt = optim.SGD(_with_grads(_params()), lr=0.1, momentum=0.9)
    opt.step()
    order = []
    opt.register_state_dict_pre_hook(lambda o: order.append("pre"))
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1})
    sd = opt.state_dict()
    assert order == ["pre"] and sd["extra"] == 1

    def rename(o, state_dict):
        state_dict["param_groups"][0]["lr"] = 0.5
        return state_dict

    opt.register_load_state_dict_pre_hook(rename)
    opt.register_load_state_dict_post_hook(lambda o: order.append("loaded"))
    opt.load_state_dict({"state": sd["state"], "param_groups": sd["param_groups"]})
    assert opt.param_groups[0]["lr"] == 0.5 and order[-1] == "loaded"


def test_zero_grad_drops_or_zeroes():
    params = _with_grads(_params())
    opt = optim.SGD(params, lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_add_param_group_takes_defaults_and_gets_state():
    a, b = _params()
    opt = optim.Adagrad([a], lr=0.1, initial_accumulator_value=0.5)
    opt.add_param_group({"params": b, "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["initial_accumulator_value"] == 0.5
    assert opt.state[b]["sum"].numpy() == pytest.approx(np.full(2, 0.5))
    with pytest.raises(ArgumentError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ArgumentTypeError, match="must be a dict"):
        opt.add_param_group([b])


def test_named_and_unnamed_groups_do_not_mix():
    lin = nn.Linear(2, 2)
    opt = optim.SGD(lin.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]
    with pytest.raises(ArgumentError, match="with or without names"):
        opt.add_param_group({"params": [nn.Parameter(hubkit.zeros(1))]})


def test_duplicate_parameters_in_a_group_warn_like_torch():
    p = nn.Parameter(hubkit.zeros(2))
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([p, p], lr=0.1)


def test_a_tensor_learning_rate_is_accepted():
    params = _with_grads(_params())
    before = params[1].numpy().copy()
    opt = optim.SGD(params, lr=hubkit.tensor(0.5))
    opt.step()
    np.testing.assert_allclose(params[1].numpy(), before - 0.5, rtol=1e-6)
    with pytest.raises(ArgumentError, match="one element"):
        optim.SGD(_params(), lr=hubkit.tensor([0.1, 0.2]))


def test_step_marks_parameters_modified_for_autograd():
    p = nn.Parameter(hubkit.ones(3))
    opt = optim.SGD([p], lr=0.1)
    p.grad = hubkit.ones(3)
    y = (p * p).sum()
    opt.step()
    with pytest.raises(GradError, match="modified by an inplace operation"):
        y.backward()


def test_optimizer_pickles_and_keeps_working():
    params = _with_grads(_params())
    opt = optim.Adam(params, lr=0.1)
    opt.step()
    clone = pickle.loads(pickle.dumps(opt))
    assert clone.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    calls = []
    clone.register_step_post_hook(lambda o, a, k: calls.append(1))
    clone.step()
    assert calls == [1]
    twin = copy.deepcopy(opt)
    np.testing.assert_array_equal(twin.state_dict()["state"][0]["exp_avg"].numpy(),
                                  opt.state_dict()["state"][0]["exp_avg"].numpy())


def test_load_state_dict_casts_arrays_to_the_parameter_dtype():
    params = [nn.Parameter(hubkit.zeros(2, dtype=hubkit.float64))]
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    opt.load_state_dict({"state": {"0": {"momentum_buffer": np.ones(2, np.float32)}},
                         "param_groups": [{**opt.state_dict()["param_groups"][0]}]})
    buf = opt.state[params[0]]["momentum_buffer"]
    assert isinstance(buf, hubkit.Tensor) and buf.dtype == hubkit.float64


def test_optimizer_repr_lists_the_groups():
    text = repr(optim.NAdam(_params(), lr=0.01))
    assert text.startswith("NAdam (") and "momentum_decay: 0.004" in text and "lr: 0.01" in text


def test_sgd_and_adam_keep_their_kernel_fast_path_state_in_place():
    params = _with_grads(_params())
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    opt.step()
    buf = opt.state[params[0]]["momentum_buffer"]
    array = buf.array
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
    assert opt.state[params[0]]["momentum_buffer"].array is array
    np.testing.assert_allclose(array, np.full((3, 2), 1.9), rtol=1e-6)


def test_a_lr_that_is_not_a_number_is_a_type_error():
    with pytest.raises(ArgumentTypeError, match="lr must be a float"):
        optim.Adam(_params(), lr="0.1")
    with pytest.raises(ArgumentTypeError, match="lr must be a float"):
        optim.SGD(_params(), lr=None)


class ScaledSign(optim.Optimizer):
    """A user optimizer written the torch way: its own step(), per-parameter state in self.state."""

    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    @hubkit.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["count"] = state.get("count", 0) + 1
                p.sub_(group["lr"] * p.grad.sign())


def test_a_torch_style_subclass_gets_hooks_state_dict_and_schedulers():
    params = _with_grads(_params())
    before = params[0].numpy().copy()
    opt = ScaledSign(params, lr=0.5)
    calls = []
    opt.register_step_post_hook(lambda o, a, k: calls.append(1))
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # optimizer.step() came first: no scheduler warning
        opt.step()
        scheduler.step()
    np.testing.assert_allclose(params[0].numpy(), before - 0.5)
    assert calls == [1] and opt.param_groups[0]["lr"] == 0.25
    assert opt.state_dict()["state"] == {0: {"count": 1}, 1: {"count": 1}}
