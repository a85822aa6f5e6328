"""RASA op: equals separate dilated depthwise convolutions through SiLU, summed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from litevit.ops import OPS, RASA_OP
from litevit.ops.rasa import rasa_macs, rasa_output_shape


def _separate_convs(q: torch.Tensor, weight: torch.Tensor, dilations: list[int]) -> torch.Tensor:
    """The official ds_conv2d: one nn.Conv2d per dilation, all sharing one weight."""
    channels, _, k, _ = weight.shape
    out = torch.zeros_like(q)
    for d in dilations:
        conv = nn.Conv2d(channels, channels, k, padding=d * (k // 2), dilation=d, groups=channels, bias=False)
        conv.weight.data.copy_(weight)
        out += F.silu(conv(q))
    return out


@pytest.mark.parametrize("shape", [(2, 6, 9, 7), (1, 4, 3, 3), (3, 8, 14, 14)])
@pytest.mark.parametrize("dilations", [[1, 3, 5], [2]])
def test_matches_separate_dilated_convs(shape: tuple[int, ...], dilations: list[int]) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(shape, generator=gen)
    weight = torch.randn(shape[1], 1, 3, 3, generator=gen)
    with torch.no_grad():
        expected = _separate_convs(q, weight, dilations)
    got = RASA_OP(q, weight, dilations=dilations, kernel_size=3)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_kernel_size_five() -> None:
    q, weight = torch.randn(1, 3, 8, 8), torch.randn(3, 1, 5, 5)
    with torch.no_grad():
        expected = _separate_convs(q, weight, [1, 2])
    torch.testing.assert_close(
        RASA_OP(q, weight, dilations=[1, 2], kernel_size=5), expected, rtol=0, atol=1e-5
    )


def test_output_shape_and_macs() -> None:
    q, weight = torch.randn(2, 6, 9, 7), torch.randn(6, 1, 3, 3)
    out = RASA_OP(q, weight, dilations=[1, 3, 5], kernel_size=3)
    assert tuple(out.shape) == rasa_output_shape(tuple(q.shape), tuple(weight.shape), [1, 3, 5], 3)
    # fvcore per depthwise conv: output elements x (C_in / groups) x k x k, three convs.
    assert rasa_macs(tuple(q.shape), tuple(weight.shape), [1, 3, 5], 3) == 3 * out.numel() * 1 * 9
    assert OPS["RASA"] is RASA_OP


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="weight must have shape"):
        RASA_OP(torch.zeros(1, 4, 5, 5), torch.zeros(3, 1, 3, 3), dilations=[1], kernel_size=3)
    with pytest.raises(ValueError, match="odd kernel_size"):
        RASA_OP(torch.zeros(1, 4, 5, 5), torch.zeros(4, 1, 2, 2), dilations=[1], kernel_size=2)
    with pytest.raises(ValueError, match="dilations"):
        RASA_OP(torch.zeros(1, 4, 5, 5), torch.zeros(4, 1, 3, 3), dilations=[], kernel_size=3)


def test_gradcheck_and_opcheck() -> None:
    q = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    attrs = {"dilations": [1, 3, 5], "kernel_size": 3}
    assert torch.autograd.gradcheck(lambda a, w: RASA_OP(a, w, **attrs), (q, weight))
    torch.library.opcheck(RASA_OP.torch_op, (q, weight), attrs)
