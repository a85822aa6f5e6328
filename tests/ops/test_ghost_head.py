"""GhostHead op: reference vs. explicit loops, vs. ELSA's official unfold fallback, autograd, shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from litevit.ops import GHOST_HEAD_OP, OPS
from litevit.ops.ghost_head import ghost_head, ghost_head_macs, ghost_head_output_shape


def _inputs(
    batch: int = 2,
    channels: int = 4,
    heads: int = 2,
    size: tuple[int, int] = (5, 6),
    k: int = 3,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    v = torch.randn(batch, channels, h, w, generator=gen, dtype=dtype)
    logits = torch.randn(batch, heads, k * k, h, w, generator=gen, dtype=dtype)
    attn = logits.softmax(2).reshape(batch, heads * k * k, h, w)
    ghost_mul = torch.randn(channels, k, k, generator=gen, dtype=dtype)
    ghost_add = 0.1 * torch.randn(channels, k, k, generator=gen, dtype=dtype)
    return v, attn, ghost_mul, ghost_add


def _naive(v, attn, mul, add, heads: int, k: int, dilation: int) -> torch.Tensor:
    """The formula written out element by element in Python loops."""
    batch, channels, h, w = v.shape
    per_head = channels // heads
    out = torch.zeros_like(v)
    for b in range(batch):
        for c in range(channels):
            g = c // per_head
            for i in range(h):
                for j in range(w):
                    total = 0.0
                    for ky in range(k):
                        for kx in range(k):
                            y, x = i + (ky - k // 2) * dilation, j + (kx - k // 2) * dilation
                            if 0 <= y < h and 0 <= x < w:
                                a = attn[b, g * k * k + ky * k + kx, i, j]
                                total += float(v[b, c, y, x] * (a * mul[c, ky, kx] + add[c, ky, kx]))
                    out[b, c, i, j] = total
    return out


def _official_unfold_fallback(v, attn, mul, add, heads: int, k: int, dilation: int) -> torch.Tensor:
    """ELSA's CPU path (``elsa_op`` in cls/models/elsa/elsa.py), including its (B*G, C/G) layout."""
    batch, channels, h, w = v.shape
    n, c = batch * heads, channels // heads
    features = v.reshape(n, c, h, w)
    spatial = attn.reshape(n, k * k, h, w)
    mul_n = mul.expand(batch, channels, k, k).reshape(n, c, k, k)
    add_n = add.expand(batch, channels, k, k).reshape(n, c, k, k)
    cols = F.unfold(features, kernel_size=k, dilation=dilation, padding=k // 2 * dilation).reshape(
        n, c, k * k, h * w
    )
    filters = mul_n.reshape(n, c, k * k, 1) * spatial.reshape(n, 1, k * k, h * w) + add_n.reshape(
        n, c, k * k, 1
    )
    return (cols * filters).sum(2).reshape(batch, channels, h, w)


@pytest.mark.parametrize("dilation", [1, 2])
def test_matches_explicit_loops(dilation: int) -> None:
    v, attn, mul, add = _inputs()
    out = GHOST_HEAD_OP(v, attn, mul, add, heads=2, kernel_size=3, dilation=dilation)
    expected = _naive(v, attn, mul, add, heads=2, k=3, dilation=dilation)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("heads", "k", "dilation"), [(1, 3, 1), (3, 7, 1), (2, 5, 2), (6, 7, 1)])
def test_matches_official_unfold_fallback(heads: int, k: int, dilation: int) -> None:
    v, attn, mul, add = _inputs(batch=2, channels=12, heads=heads, size=(9, 8), k=k, seed=1)
    out = GHOST_HEAD_OP(v, attn, mul, add, heads=heads, kernel_size=k, dilation=dilation)
    expected = _official_unfold_fallback(v, attn, mul, add, heads, k, dilation)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_released_setting_is_attention_plus_static_kernel() -> None:
    # lambda = 0, gamma = 1: mul = 1, so the output is local attention + a depthwise conv by S.
    v, attn, _, add = _inputs(channels=6, heads=3, k=5, seed=2)
    ones = torch.ones_like(add)
    out = GHOST_HEAD_OP(v, attn, ones, add, heads=3, kernel_size=5, dilation=1)
    attn_only = GHOST_HEAD_OP(v, attn, ones, torch.zeros_like(add), heads=3, kernel_size=5, dilation=1)
    depthwise = F.conv2d(v, add.unsqueeze(1), padding=2, groups=6)
    torch.testing.assert_close(out, attn_only + depthwise, atol=1e-5, rtol=1e-5)


def test_general_lambda_gamma_path() -> None:
    # lambda != 0, gamma != 0: the model passes O**lambda and gamma*S; check against the fallback.
    v, attn, o_matrix, s_matrix = _inputs(channels=4, heads=2, k=3, seed=3)
    lam, gamma = 2.0, 0.5
    mul, add = o_matrix**lam, gamma * s_matrix
    out = GHOST_HEAD_OP(v, attn, mul, add, heads=2, kernel_size=3, dilation=1)
    torch.testing.assert_close(out, _naive(v, attn, mul, add, 2, 3, 1), atol=1e-5, rtol=1e-5)
    # The multiplicative matrix really scales the attention term, channel by channel.
    plain = GHOST_HEAD_OP(v, attn, torch.ones_like(mul), add, heads=2, kernel_size=3, dilation=1)
    assert not torch.allclose(out, plain)


def test_channel_to_head_mapping_is_contiguous() -> None:
    # Channels 0..C/G-1 belong to head 0: zeroing head 1's attention must only change channels C/G..
    v, attn, mul, add = _inputs(channels=4, heads=2, k=3, seed=4)
    zero_add = torch.zeros_like(add)
    base = GHOST_HEAD_OP(v, attn, mul, zero_add, heads=2, kernel_size=3, dilation=1)
    attn_changed = attn.clone()
    attn_changed[:, 9:] = 0.0
    changed = GHOST_HEAD_OP(v, attn_changed, mul, zero_add, heads=2, kernel_size=3, dilation=1)
    torch.testing.assert_close(changed[:, :2], base[:, :2])
    assert changed[:, 2:].abs().max() == 0


def test_gradcheck_float64() -> None:
    v, attn, mul, add = (
        t.requires_grad_(True)
        for t in _inputs(batch=1, channels=4, heads=2, size=(4, 3), k=3, dtype=torch.float64)
    )
    assert torch.autograd.gradcheck(
        lambda *ts: GHOST_HEAD_OP(*ts, heads=2, kernel_size=3, dilation=1), (v, attn, mul, add)
    )


def test_custom_op_registration() -> None:
    assert OPS["GhostHead"] is GHOST_HEAD_OP
    assert GHOST_HEAD_OP.tensor_args == ("v", "attn", "ghost_mul", "ghost_add")
    assert GHOST_HEAD_OP.attr_args == ("heads", "kernel_size", "dilation")
    args = _inputs(batch=1, channels=4, heads=2, size=(4, 4), k=3)
    torch.library.opcheck(GHOST_HEAD_OP.torch_op, args, {"heads": 2, "kernel_size": 3, "dilation": 1})


def test_output_shape_and_macs() -> None:
    v, attn, mul, add = _inputs(batch=2, channels=6, heads=3, size=(7, 5), k=3)
    shapes = [tuple(t.shape) for t in (v, attn, mul, add)]
    assert ghost_head_output_shape(*shapes, heads=3, kernel_size=3, dilation=1) == tuple(
        ghost_head(v, attn, mul, add, 3, 3, 1).shape
    )
    assert (
        GHOST_HEAD_OP(
            v.to("meta"), attn.to("meta"), mul.to("meta"), add.to("meta"), heads=3, kernel_size=3, dilation=1
        ).shape
        == v.shape
    )
    # One multiply-add per (output element, tap): 2*6*7*5 outputs, 9 taps each.
    assert ghost_head_macs(*shapes, heads=3, kernel_size=3, dilation=1) == 2 * 6 * 7 * 5 * 9
    assert (
        GHOST_HEAD_OP.count_macs(v, attn, mul, add, heads=3, kernel_size=3, dilation=1) == 2 * 6 * 7 * 5 * 9
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"heads": 4}, "heads"),
        ({"kernel_size": 4}, "odd"),
        ({"dilation": 0}, "dilation"),
        ({"attn": (2, 18, 7, 5)}, "attn"),
        ({"ghost_add": (6, 5, 5)}, "ghost_add"),
    ],
)
def test_output_shape_rejects_inconsistent_inputs(change: dict, message: str) -> None:
    args = {
        "v": (2, 6, 7, 5),
        "attn": (2, 27, 7, 5),
        "ghost_mul": (6, 3, 3),
        "ghost_add": (6, 3, 3),
        "heads": 3,
        "kernel_size": 3,
        "dilation": 1,
    }
    with pytest.raises(ValueError, match=message):
        ghost_head_output_shape(**{**args, **change})
