"""Every litevit op keeps the contract its fake kernel states, for inputs of any layout.

``torch.compile`` and ``torch.export`` never run an op while tracing: they trust its fake
(meta) kernel for the output's shape, dtype, device and strides. So ``torch.library.opcheck``
(all its test_utils: schema, autograd registration, fake tensor against the real kernel, AOT
dispatch with dynamic shapes) runs here on every op with inputs laid out as models really
produce them: contiguous, channels-last, permuted, sliced (storage offset) and batch-expanded
(stride 0), with and without autograd. The op's output must be contiguous and equal whatever
the layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from litevit.ops import OPS
from litevit.ops.csa import gather_windows, window_gather_weight


def _csa_inputs(dtype: torch.dtype) -> tuple[tuple[torch.Tensor, ...], dict[str, Any]]:
    heads, k = 2, 3
    x = torch.randn(2, 4, 5, 6, dtype=dtype)
    values = gather_windows(x, window_gather_weight(4, k), k, 2, 1)
    windows = values.shape[-2:]
    attn = torch.randn(2, heads * k**4, *windows, dtype=dtype).softmax(dim=1)
    return (attn, values), {"heads": heads, "kernel_size": k, "stride": 2, "padding": 1}


def _rasa_inputs(dtype: torch.dtype) -> tuple[tuple[torch.Tensor, ...], dict[str, Any]]:
    q = torch.randn(2, 4, 5, 6, dtype=dtype)
    weight = torch.randn(4, 1, 3, 3, dtype=dtype)
    return (q, weight), {"dilations": [1, 3, 5], "kernel_size": 3}


def _ghost_head_inputs(dtype: torch.dtype) -> tuple[tuple[torch.Tensor, ...], dict[str, Any]]:
    heads, k = 2, 3
    v = torch.randn(2, 4, 5, 6, dtype=dtype)
    attn = torch.randn(2, heads * k * k, 5, 6, dtype=dtype).softmax(dim=1)
    ghost_mul = torch.randn(4, k, k, dtype=dtype)
    ghost_add = torch.randn(4, k, k, dtype=dtype)
    return (v, attn, ghost_mul, ghost_add), {"heads": heads, "kernel_size": k, "dilation": 1}


# One small, valid call per op. A new op without an entry here fails test_every_op_has_samples.
SAMPLES: dict[str, Callable[[torch.dtype], tuple[tuple[torch.Tensor, ...], dict[str, Any]]]] = {
    "CSA": _csa_inputs,
    "RASA": _rasa_inputs,
    "GhostHead": _ghost_head_inputs,
}


def _permuted(t: torch.Tensor) -> torch.Tensor:
    """The same values stored with the axes reversed: a non-contiguous, non-channels-last view."""
    dims = tuple(reversed(range(t.ndim)))
    return t.permute(dims).contiguous().permute(dims)


def _sliced(t: torch.Tensor) -> torch.Tensor:
    """The same values as a strided slice of a larger tensor (storage offset, gaps)."""
    big = torch.zeros(*(2 * s + 1 for s in t.shape), dtype=t.dtype)
    view = big[tuple(slice(1, None, 2) for _ in t.shape)]
    view.copy_(t)
    return view


def _batch_expanded(t: torch.Tensor) -> torch.Tensor:
    """Values repeated along dim 0 by ``expand`` (stride 0), as learned tokens are batched."""
    return t[:1].expand(t.shape)


LAYOUTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "contiguous": lambda t: t,
    "channels_last": lambda t: t.to(memory_format=torch.channels_last) if t.ndim == 4 else t,
    "permuted": _permuted,
    "sliced": _sliced,
    "batch_expanded": _batch_expanded,
}


def test_every_op_has_samples() -> None:
    assert set(SAMPLES) == set(OPS)


# With autograd, opcheck also traces the backward (the reference differentiated), which costs
# seconds per call: every layout without grad, and with grad the two layouts models feed in
# training (channels-last activations, batch-expanded learned tokens; the latter, 10-25 s an op, is
# slow); contiguous inputs with grad are checked in each op's own tests.
CASES = [
    *(pytest.param(layout, False, id=f"{layout}-no_grad") for layout in LAYOUTS),
    pytest.param("channels_last", True, id="channels_last-grad"),
    pytest.param("batch_expanded", True, id="batch_expanded-grad", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("layout", "requires_grad"), CASES)
@pytest.mark.parametrize("op_name", sorted(OPS))
def test_opcheck_and_contiguous_output_for_every_layout(
    op_name: str, layout: str, requires_grad: bool
) -> None:
    opdef = OPS[op_name]
    tensors, attrs = SAMPLES[op_name](torch.float64)
    if layout == "batch_expanded":
        tensors = tuple(t[:1].expand(t.shape).clone() for t in tensors)  # reference values
    expected = opdef(*tensors, **attrs)
    laid_out = tuple(LAYOUTS[layout](t).requires_grad_(requires_grad) for t in tensors)
    if layout != "contiguous":
        assert any(not t.is_contiguous() for t in laid_out), "the layout must change some strides"

    out = opdef(*laid_out, **attrs)
    assert out.is_contiguous() and out.dtype == torch.float64
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    # All of opcheck's test_utils; raises naming the first that fails.
    torch.library.opcheck(opdef.torch_op, laid_out, attrs)


@pytest.mark.parametrize("op_name", sorted(OPS))
def test_fake_kernel_matches_real_output_metadata(op_name: str) -> None:
    """What torch.compile relies on, spelled out: shape, dtype, device and strides."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    opdef = OPS[op_name]
    tensors, attrs = SAMPLES[op_name](torch.float32)
    tensors = tuple(t.to(memory_format=torch.channels_last) if t.ndim == 4 else t for t in tensors)
    real = opdef(*tensors, **attrs)
    with FakeTensorMode() as mode:
        fake = opdef(*(mode.from_tensor(t) for t in tensors), **attrs)
    assert (fake.shape, fake.dtype, fake.device, fake.stride()) == (
        real.shape,
        real.dtype,
        real.device,
        real.stride(),
    )


@pytest.mark.parametrize("op_name", sorted(OPS))
def test_mixed_dtypes_are_refused_in_one_sentence(op_name: str) -> None:
    opdef = OPS[op_name]
    tensors, attrs = SAMPLES[op_name](torch.float32)
    mixed = (tensors[0].double(), *tensors[1:])
    with pytest.raises(ValueError, match=rf"^{op_name} takes tensors of one dtype on one device; got .*\.$"):
        opdef(*mixed, **attrs)
    with torch.device("meta"), pytest.raises(ValueError, match="one dtype"):
        opdef(*(t.to("meta") for t in mixed), **attrs)
