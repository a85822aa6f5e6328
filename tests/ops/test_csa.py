"""CSA op: equals the official unfold -> grouped conv -> attn @ v -> fold formulation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from litevit.ops import CSA_OP, OPS
from litevit.ops.csa import csa_macs, csa_output_shape, gather_windows, window_gather_weight


def _official_csa_core(
    x: torch.Tensor,
    attn: torch.Tensor,
    weight: torch.Tensor,
    heads: int,
    kernel_size: int,
    stride: int,
    padding: int,
) -> torch.Tensor:
    """The official CSA between softmax and proj, written with F.unfold / F.fold.

    x (B, C, H, W); attn (B, heads, windows, k², k²) post-softmax; weight (k²C, C, 1, 1), groups k².
    """
    batch, channels, height, width = x.shape
    taps = kernel_size * kernel_size
    windows = attn.shape[2]
    v = F.unfold(x, kernel_size, padding=padding, stride=stride)  # (B, C·k², windows), channel c·k² + j
    v = (
        v.reshape(batch, channels, taps, windows)
        .permute(0, 3, 2, 1)
        .reshape(batch * windows, taps * channels, 1, 1)
    )
    v = F.conv2d(v, weight, groups=taps)
    v = v.reshape(batch, windows, taps, heads, channels // heads).permute(0, 3, 1, 2, 4)
    y = (attn @ v).permute(0, 1, 4, 3, 2).reshape(batch, channels * taps, windows)
    return F.fold(y, output_size=(height, width), kernel_size=kernel_size, padding=padding, stride=stride)


def _inputs(
    batch: int,
    channels: int,
    height: int,
    width: int,
    heads: int,
    kernel_size: int,
    stride: int,
    padding: int,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
):
    gen = torch.Generator().manual_seed(seed)
    taps = kernel_size * kernel_size
    h = (height + 2 * padding - kernel_size) // stride + 1
    w = (width + 2 * padding - kernel_size) // stride + 1
    x = torch.randn(batch, channels, height, width, generator=gen, dtype=dtype)
    logits = torch.randn(batch, heads, h * w, taps, taps, generator=gen, dtype=dtype)
    weight = torch.randn(taps * channels, channels, 1, 1, generator=gen, dtype=dtype) / math.sqrt(channels)
    return x, logits.softmax(dim=-1), weight, h, w


def _ours(x, attn, weight, heads, kernel_size, stride, padding, h, w):
    batch, _, height, width = x.shape
    # (B, heads, windows, i, j) -> (B, heads·k²·k², H', W'), channel (head·k² + i)·k² + j
    attn_map = attn.permute(0, 1, 3, 4, 2).reshape(batch, -1, h, w)
    values = F.conv2d(
        gather_windows(x, window_gather_weight(x.shape[1], kernel_size), kernel_size, stride, padding),
        weight,
        groups=kernel_size * kernel_size,
    )
    out = CSA_OP(attn_map, values, heads=heads, kernel_size=kernel_size, stride=stride, padding=padding)
    return out[:, :, :height, :width]


@pytest.mark.parametrize("height,width", [(8, 8), (7, 9), (9, 6), (5, 5), (1, 2)])
@pytest.mark.parametrize("heads", [1, 2])
def test_matches_official_fold_lvt_settings(height: int, width: int, heads: int) -> None:
    # LVT's k=3, p=1, s=2; odd sides exercise the crop of the op's 2·ceil(H/2) rows to H.
    x, attn, weight, h, w = _inputs(2, 8, height, width, heads, 3, 2, 1)
    expected = _official_csa_core(x, attn, weight, heads, 3, 2, 1)
    got = _ours(x, attn, weight, heads, 3, 2, 1, h, w)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kernel_size,stride,padding", [(3, 1, 1), (5, 2, 2), (3, 2, 0)])
def test_matches_official_fold_other_geometry(kernel_size: int, stride: int, padding: int) -> None:
    x, attn, weight, h, w = _inputs(2, 4, 9, 7, 2, kernel_size, stride, padding, seed=1)
    expected = _official_csa_core(x, attn, weight, 2, kernel_size, stride, padding)
    got = _ours(x, attn, weight, 2, kernel_size, stride, padding, h, w)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_uncropped_output_holds_exactly_the_dropped_contributions() -> None:
    # For odd H the op's last row is what F.fold discards: folding onto H+1 rows gives it back.
    x, attn, weight, h, w = _inputs(1, 4, 7, 7, 2, 3, 2, 1, dtype=torch.float64)
    attn_map = attn.permute(0, 1, 3, 4, 2).reshape(1, -1, h, w)
    values = F.conv2d(gather_windows(x, window_gather_weight(x.shape[1], 3), 3, 2, 1), weight, groups=9)
    full = CSA_OP(attn_map, values, heads=2, kernel_size=3, stride=2, padding=1)
    assert full.shape[-2:] == (8, 8)
    padded_x = F.pad(x, (0, 1, 0, 1))  # 8x8 input has the same 4x4 windows over the 7x7 pixels
    expected = _official_csa_core(padded_x, attn, weight, 2, 3, 2, 1)
    torch.testing.assert_close(full, expected, rtol=0, atol=1e-10)


def test_gather_windows_equals_unfold() -> None:
    x = torch.randn(2, 5, 7, 10)
    got = gather_windows(x, window_gather_weight(x.shape[1], 3), 3, 2, 1)  # channel j·C + c
    ref = F.unfold(x, 3, padding=1, stride=2)  # channel c·k² + j
    regrouped = got.reshape(2, 9, 5, -1).transpose(1, 2).reshape(2, 45, -1)
    torch.testing.assert_close(regrouped, ref, rtol=0, atol=0)


def test_output_shape_and_macs() -> None:
    x, attn, weight, h, w = _inputs(2, 8, 7, 10, 2, 3, 2, 1)
    attn_map = attn.permute(0, 1, 3, 4, 2).reshape(2, -1, h, w)
    values = F.conv2d(gather_windows(x, window_gather_weight(x.shape[1], 3), 3, 2, 1), weight, groups=9)
    out = CSA_OP(attn_map, values, heads=2, kernel_size=3, stride=2, padding=1)
    assert tuple(out.shape) == csa_output_shape(tuple(attn_map.shape), tuple(values.shape), 2, 3, 2, 1)
    # fvcore counts the official `attn @ v` as numel(attn) * head_dim.
    head_dim = 8 // 2
    assert csa_macs(tuple(attn_map.shape), tuple(values.shape), 2, 3, 2, 1) == attn.numel() * head_dim
    assert OPS["CSA"] is CSA_OP


def test_rejects_inconsistent_shapes() -> None:
    with pytest.raises(ValueError, match="attn must have shape"):
        CSA_OP(
            torch.zeros(1, 81, 3, 3), torch.zeros(1, 36, 3, 3), heads=2, kernel_size=3, stride=2, padding=1
        )
    with pytest.raises(ValueError, match="divisible by heads"):
        CSA_OP(
            torch.zeros(1, 162, 3, 3), torch.zeros(1, 27, 3, 3), heads=2, kernel_size=3, stride=2, padding=1
        )


def test_gradcheck_and_opcheck() -> None:
    x, attn, weight, h, w = _inputs(1, 2, 3, 4, 2, 3, 2, 1, dtype=torch.float64)
    attn_map = attn.permute(0, 1, 3, 4, 2).reshape(1, -1, h, w).requires_grad_(True)
    values = (
        F.conv2d(gather_windows(x, window_gather_weight(x.shape[1], 3), 3, 2, 1), weight, groups=9)
        .detach()
        .requires_grad_(True)
    )
    attrs = {"heads": 2, "kernel_size": 3, "stride": 2, "padding": 1}
    assert torch.autograd.gradcheck(lambda a, v: CSA_OP(a, v, **attrs), (attn_map, values))
    torch.library.opcheck(CSA_OP.torch_op, (attn_map, values), attrs)
