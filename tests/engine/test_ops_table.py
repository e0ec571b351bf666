"""The op table (hubkit/ops/table.py) and hubkit's top level agree, and what PyTorch documents but hubkit
lacks (hubkit/ops/unsupported.py) raises UnsupportedError naming it."""

import pytest

import hubkit
from hubkit.errors import HubkitError, UnsupportedError
from hubkit.ops import table, unsupported


@pytest.mark.parametrize("name", sorted(table.FUNCTIONS))
def test_every_function_entry_is_hubkits_top_level_name(name):
    assert getattr(hubkit, name) is table.FUNCTIONS[name]


def test_every_method_and_inplace_entry_is_bound_on_tensor():
    for name, fn in table.METHODS.items():
        assert hubkit.Tensor.__dict__[name] is fn, name
    for name in table.INPLACE:
        assert callable(getattr(hubkit.Tensor, name)), name


def test_a_name_that_is_both_function_and_method_is_one_op():
    both = [n for n, fn, where in table._TABLE if "f" in where and "m" in where]
    assert len(both) > 150
    for name in both:
        assert hubkit.Tensor.__dict__[name] is table.FUNCTIONS[name], name


@pytest.mark.parity
def test_table_names_are_torchs_names():
    import torch

    assert [n for n in table.FUNCTIONS if not hasattr(torch, n)] == []
    assert [n for n in table.METHODS if not hasattr(torch.Tensor, n)] == []
    assert [n for n in table.INPLACE if not hasattr(torch.Tensor, n)] == []
    for name in unsupported.FUNCTIONS:
        assert hasattr(torch, name), name
    for name in unsupported.TENSOR_METHODS | unsupported.TENSOR_ATTRIBUTES:
        assert hasattr(torch.Tensor, name), name


# ---------------------------------------------------------------- what is not supported


def test_unsupported_lists_hold_only_names_hubkit_still_lacks():
    provided = set(vars(hubkit)) | set(hubkit._LAZY) | set(hubkit._LAZY_ATTRS)
    assert unsupported.FUNCTIONS.isdisjoint(provided)
    assert unsupported.FUNCTIONS.isdisjoint(table.FUNCTIONS)
    stubs = unsupported.TENSOR_METHODS | unsupported.TENSOR_ATTRIBUTES
    real = {n for n, fn in table.METHODS.items() if not (getattr(fn, "__doc__", "") or "").startswith("Not supported")}
    assert stubs.isdisjoint(real) and stubs.isdisjoint(table.INPLACE)


@pytest.mark.parametrize("name", sorted(unsupported.FUNCTIONS))
def test_unsupported_top_level_name_raises_a_clear_error(name):
    with pytest.raises(UnsupportedError, match=rf"torch\.{name} is not supported by hubkit"):
        getattr(hubkit, name)
    assert not hasattr(hubkit, name)  # still an AttributeError, so hasattr and getattr(..., default) work


def test_unsupported_error_is_both_a_hubkit_error_and_an_attribute_error():
    with pytest.raises(HubkitError) as info:
        hubkit.stft  # noqa: B018
    assert isinstance(info.value, AttributeError)
    assert "FFT" in str(info.value)
    assert getattr(hubkit, "sparse_coo_tensor", None) is None


def test_unknown_names_stay_plain_attribute_errors():
    with pytest.raises(AttributeError, match="module 'hubkit' has no attribute 'no_such_thing'") as info:
        hubkit.no_such_thing  # noqa: B018
    assert not isinstance(info.value, UnsupportedError)


@pytest.mark.parametrize("name", sorted(unsupported.TENSOR_METHODS))
def test_unsupported_tensor_method_raises_when_called(name):
    t = hubkit.ones(2, 2)
    method = getattr(t, name)  # looking it up is fine; calling it says what is missing
    with pytest.raises(UnsupportedError, match=rf"torch\.Tensor\.{name} is not supported by hubkit"):
        method()


def test_unsupported_tensor_attributes_raise_when_read():
    for name in unsupported.TENSOR_ATTRIBUTES:
        with pytest.raises(UnsupportedError, match=rf"torch\.Tensor\.{name} is not supported"):
            getattr(hubkit.ones(2), name)

    class Holder:  # the stand-in is a property: reading it raises, as the bound Tensor attributes do
        stub = unsupported._attribute_stub("is_nested")

    with pytest.raises(UnsupportedError, match=r"torch\.Tensor\.is_nested is not supported by hubkit"):
        Holder().stub  # noqa: B018


def test_supported_names_do_not_hit_the_unsupported_path():
    x = hubkit.ones(2, 2)
    assert hubkit.sin(x).shape == (2, 2) and x.sin().shape == (2, 2)
    assert x.is_sparse is False and x.is_quantized is False and x.is_meta is False
