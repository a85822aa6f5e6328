"""ELSA-Swin: reduced builds, input sizes, official key lists, ELSA and window-attention details."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from litevit.errors import CheckpointError, InputSizeError
from litevit.models._pretrained import (
    check_state_dict,
    convert_checkpoint,
    load_pretrained,
    state_dict_from_key_list,
)
from litevit.models._registry import create_model, get_model_cfg, list_models
from litevit.models.elsa import ELSA, SwinBlock, WindowAttention, relative_position_index

VARIANTS = ("elsa_swin_tiny", "elsa_swin_small", "elsa_swin_base")
KEYS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
REDUCED = get_model_cfg("elsa_swin_tiny").smoke_arch
# docs/model-figures.md, ELSA-Swin, "measured params" (millions).
MEASURED_PARAMS_M = {"elsa_swin_tiny": 29.141, "elsa_swin_small": 52.875, "elsa_swin_base": 92.682}


def _official_keys(name: str) -> dict[str, list[int]]:
    return json.loads((KEYS_DIR / f"{name}.json").read_text())


def _meta_model(name: str):
    with torch.device("meta"):
        return create_model(name)


def test_variants_registered_with_data_config() -> None:
    assert set(VARIANTS) <= set(list_models("elsa_*"))
    for name in VARIANTS:
        cfg = get_model_cfg(name)
        assert cfg.family == "elsa" and cfg.task == "classification"
        assert cfg.input_size == (224, 224) and cfg.size_divisor == 32
        assert cfg.crop_pct == 0.9 and cfg.interpolation == "bicubic"
        assert cfg.label_set == "imagenet1k" and cfg.num_classes == 1000


@pytest.mark.parametrize("name", VARIANTS)
def test_reduced_forward(name: str) -> None:
    model = create_model(name, num_classes=10, img_size=64, **REDUCED)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        out = model(x)
    assert features.shape == (2, 2, 2, 24 * 8)
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_reduced_forward_with_shifted_stage4_windows() -> None:
    # 288 -> stage-4 map 9x9: padded to 14x14, the second block shifts its windows.
    model = create_model(
        "elsa_swin_tiny",
        num_classes=5,
        img_size=288,
        embed_dim=16,
        depths=(1, 1, 1, 2),
        num_heads=(1, 1, 2, 2),
    )
    with torch.no_grad():
        out = model(torch.randn(1, 3, 288, 288))
    assert out.shape == (1, 5) and torch.isfinite(out).all()


def test_non_square_input() -> None:
    model = create_model("elsa_swin_tiny", num_classes=3, img_size=(64, 96), **REDUCED)
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 64, 96)).shape == (1, 2, 3, 192)


@pytest.mark.parametrize("size", [100, (64, 80), 16])
def test_bad_input_sizes_are_refused(size) -> None:
    with pytest.raises(InputSizeError, match="multiples of 32"):
        create_model("elsa_swin_tiny", img_size=size, **REDUCED)


def test_bad_input_tensor_is_refused() -> None:
    model = create_model("elsa_swin_tiny", img_size=64, **REDUCED)
    with pytest.raises(InputSizeError, match="multiples of 32"):
        model(torch.randn(1, 3, 64, 70))
    with pytest.raises(InputSizeError, match="3, height, width"):
        model(torch.randn(1, 1, 64, 64))


@pytest.mark.parametrize("name", VARIANTS)
def test_param_count_matches_models_md(name: str) -> None:
    model = _meta_model(name)
    params = sum(p.numel() for p in model.parameters())
    assert abs(params / 1e6 - MEASURED_PARAMS_M[name]) < 0.0005


@pytest.mark.parametrize("name", VARIANTS)
def test_official_key_list_loads(name: str) -> None:
    keys = _official_keys(name)
    model = _meta_model(name)
    state = convert_checkpoint(model, state_dict_from_key_list(keys, device="meta"))
    check_state_dict(model, state)
    # Every parameter keeps its official name: only derived buffers are dropped.
    assert set(keys) - set(state) == {k for k in keys if k.endswith(".attn.relative_id")}


def test_corrupted_key_list_is_refused() -> None:
    keys = _official_keys("elsa_swin_tiny")
    keys.pop("layers.1.blocks.0.attn.ghost_head")
    keys["layers.3.blocks.1.attn.relative_bias"] = keys.pop("layers.3.blocks.1.attn.rb")
    model = _meta_model("elsa_swin_tiny")
    state = convert_checkpoint(model, state_dict_from_key_list(keys, device="meta"))
    with pytest.raises(CheckpointError) as err:
        check_state_dict(model, state)
    message = str(err.value)
    assert "layers.1.blocks.0.attn.ghost_head" in message
    assert "layers.3.blocks.1.attn.rb" in message
    assert "layers.3.blocks.1.attn.relative_bias" in message


def test_checkpoint_with_shift_mask_buffer_loads() -> None:
    # The official classification model built for sizes with shifted stage-4 windows also stores
    # ``attn_mask``; it follows from the input size and is dropped.
    model = create_model("elsa_swin_tiny", img_size=64, **REDUCED)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["layers.3.blocks.1.attn_mask"] = torch.zeros(4, 49, 49)
    state["layers.3.blocks.0.attn.relative_id"] = relative_position_index(7)
    state["layers.0.blocks.0.attn.ghost_head"] = torch.full_like(
        state["layers.0.blocks.0.attn.ghost_head"], 0.5
    )
    load_pretrained(model, state)
    assert torch.all(model.layers[0].blocks[0].attn.ghost_head == 0.5)


def _elsa_unfold_formulation(module: ELSA, x: torch.Tensor) -> torch.Tensor:
    """ELSA written as in the official CPU path (unfold + filter), from the module's weights."""
    batch, height, width, channels = x.shape
    heads, k, dqk = module.num_heads, module.kernel_size, module.dim_qk
    qkv = F.conv2d(x.permute(0, 3, 1, 2), module.pre_proj.weight, module.pre_proj.bias)
    q, key, v = qkv[:, :dqk], qkv[:, dqk : 2 * dqk], qkv[:, 2 * dqk :]
    conv, _, proj = module.attn
    hidden = F.gelu(F.conv2d(q * key, conv.weight, conv.bias, padding=k // 2, groups=conv.groups))
    attn = F.conv2d(hidden, proj.weight, proj.bias).reshape(batch * heads, k * k, height * width).softmax(1)
    n, c = batch * heads, channels // heads
    cols = F.unfold(v.reshape(n, c, height, width), k, padding=k // 2).reshape(n, c, k * k, height * width)
    static = module.ghost_head.expand(batch, channels, k, k).reshape(n, c, k * k, 1)
    y = (cols * (attn.reshape(n, 1, k * k, -1) + static)).sum(2).reshape(batch, channels, height, width)
    return F.linear(y.permute(0, 2, 3, 1), module.post_proj.weight, module.post_proj.bias)


def test_elsa_matches_unfold_formulation() -> None:
    torch.manual_seed(0)
    module = ELSA(dim=24, num_heads=3, kernel_size=5, group_width=4).eval()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    assert module.dim_qk == 16 and module.ghost_head.shape == (1, 24, 5, 5)
    x = torch.randn(2, 6, 7, 24)
    with torch.no_grad():
        torch.testing.assert_close(module(x), _elsa_unfold_formulation(module, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("lam", "gamma", "shape"),
    [(0.0, 1.0, (1, 12, 3, 3)), (1.0, 1.0, (2, 1, 12, 3, 3)), (2.0, 0.0, (1, 12, 3, 3)), (0.0, 0.0, None)],
)
def test_ghost_head_parameter_layouts(lam: float, gamma: float, shape) -> None:
    module = ELSA(dim=12, num_heads=2, kernel_size=3, group_width=4, lam=lam, gamma=gamma).eval()
    assert (None if module.ghost_head is None else tuple(module.ghost_head.shape)) == shape
    x = torch.randn(1, 4, 4, 12)
    mul, add = module.ghost_filters(x.permute(0, 3, 1, 2))
    if lam != 0 and gamma != 0:
        torch.testing.assert_close(mul, module.ghost_head[0, 0] ** lam)
        torch.testing.assert_close(add, module.ghost_head[1, 0] * gamma)
    elif lam != 0:
        torch.testing.assert_close(mul, module.ghost_head[0] ** lam)
        assert torch.all(add == 0)
    else:
        assert torch.all(mul == 1)
    with torch.no_grad():
        assert module(x).shape == x.shape


def test_dim_qk_rounding() -> None:
    # Base widths with group_width 8: 128//3*2 = 84 -> 88, 256 -> 176, 512//3*2 = 340 -> 344.
    assert [ELSA(d, 4, group_width=8).dim_qk for d in (128, 256, 512)] == [88, 176, 344]


def test_relative_position_index_is_key_minus_query() -> None:
    window = 3
    index = relative_position_index(window).reshape(window * window, window * window)
    span = 2 * window - 1
    for query in range(window * window):
        for key in range(window * window):
            dy = key // window - query // window
            dx = key % window - query % window
            assert index[query, key] == (dy + window - 1) * span + dx + window - 1


def test_window_attention_is_v_q_k_ordered_attention_with_bias() -> None:
    torch.manual_seed(0)
    dim, heads, window = 8, 2, 3
    module = WindowAttention(dim, window, heads).eval()
    x = torch.randn(2, window * window, dim)
    v, q, k = F.linear(x, module.pre_proj.weight, module.pre_proj.bias).chunk(3, dim=-1)

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(2, -1, heads, dim // heads).transpose(1, 2)

    bias = module.rb[:, relative_position_index(window)].reshape(heads, window * window, window * window)
    logits = split(q) @ split(k).transpose(-2, -1) / (dim // heads) ** 0.5 + bias
    out = (logits.softmax(-1) @ split(v)).transpose(1, 2).reshape(2, -1, dim)
    with torch.no_grad():
        torch.testing.assert_close(module(x), module.post_proj(out), atol=1e-6, rtol=1e-5)


def test_stage4_shift_only_when_map_exceeds_window() -> None:
    torch.manual_seed(0)
    plain = SwinBlock(16, 2, window_size=7, shift_size=0).eval()
    shifted = SwinBlock(16, 2, window_size=7, shift_size=3).eval()
    shifted.load_state_dict(plain.state_dict())
    with torch.no_grad():
        small = torch.randn(1, 7, 7, 16)
        torch.testing.assert_close(shifted(small), plain(small))  # one window: shift forced to 0
        large = torch.randn(1, 9, 10, 16)
        assert not torch.allclose(shifted(large), plain(large))


def test_stage4_window_covering_map_equals_global_attention() -> None:
    # A 7x7 map in one 7x7 window: the block's attention is plain attention over all 49 tokens.
    torch.manual_seed(0)
    block = SwinBlock(16, 2, window_size=7).eval()
    x = torch.randn(2, 7, 7, 16)
    with torch.no_grad():
        expected = block.attn(block.norm1(x).reshape(2, 49, 16)).reshape(2, 7, 7, 16)
        torch.testing.assert_close(block._window_attention(block.norm1(x)), expected)


@pytest.mark.slow
def test_full_tiny_forward_at_224() -> None:
    model = create_model("elsa_swin_tiny")
    assert (
        abs(sum(p.numel() for p in model.parameters()) / 1e6 - MEASURED_PARAMS_M["elsa_swin_tiny"]) < 0.0005
    )
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()
