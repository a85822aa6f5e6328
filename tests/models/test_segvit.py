"""SegViT (plain ATM and Shrunk QD/QU) models: reduced builds, sizes, checkpoints, full configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from litevit.errors import CheckpointError, InputSizeError
from litevit.models import create_model, get_model_cfg, load_pretrained
from litevit.models._pretrained import check_state_dict, convert_checkpoint, state_dict_from_key_list
from litevit.models import segmentation_labels
from litevit.models.segvit import resample_grid_embedding

KEYS_DIR = Path(__file__).parents[1] / "fixtures" / "keys"
VARIANTS = ("segvit_vit_b_ade", "segvit_vit_l_ade", "segvit_shrunk_vit_l_ade")
NUM_CLASSES = 5

REDUCED = {
    name: get_model_cfg(name).smoke_arch
    for name in ("segvit_vit_b_ade", "segvit_vit_l_ade", "segvit_shrunk_vit_l_ade")
}


def _small(name: str, img_size: tuple[int, int] = (64, 64), **kwargs: object) -> torch.nn.Module:
    return create_model(name, num_classes=NUM_CLASSES, img_size=img_size, **{**REDUCED[name], **kwargs})


def _randomize(model: torch.nn.Module, scale: float = 0.05, seed: int = 1) -> None:
    """Non-trivial values everywhere (LayerNorm affine and biases included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))


def _transpose_grid(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Row-major (..., h*w, C) grid tokens -> the tokens of the transposed (w, h) grid."""
    lead, c = tokens.shape[:-2], tokens.shape[-1]
    t = tokens.reshape(*lead, grid[0], grid[1], c).transpose(-3, -2)
    return t.reshape(*lead, grid[0] * grid[1], c)


@pytest.mark.parametrize(
    ("name", "size"),
    [(n, s) for n in ("segvit_vit_b_ade", "segvit_shrunk_vit_l_ade") for s in ((64, 64), (64, 96), (96, 64))]
    + [("segvit_vit_l_ade", (64, 96))],
)
def test_reduced_forward_shape_and_labels(name: str, size: tuple[int, int]) -> None:
    model = _small(name, img_size=size)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        scores = model(x)
    assert scores.shape == (2, NUM_CLASSES, *size)
    # Sum over the N_cls queries of (softmax class weights, no-object dropped) x sigmoid masks:
    # non-negative, and each query adds at most 1 to a pixel's sum over classes.
    assert torch.isfinite(scores).all()
    assert scores.min() >= 0 and scores.sum(dim=1).max() <= NUM_CLASSES
    labels = segmentation_labels(scores, size)
    assert labels.shape == (2, *size) and labels.dtype == torch.int64
    assert 0 <= labels.min() and labels.max() < NUM_CLASSES


@pytest.mark.parametrize("name", ["segvit_vit_b_ade", "segvit_shrunk_vit_l_ade"])
def test_transposed_input_gives_transposed_output(name: str) -> None:
    """With the patch kernels and grid-tied tensors transposed, f'(x^T) == f(x)^T (non-square).

    This pins the (H/16, W/16) token order (a swapped reshape would fail) and the Shrunk
    model's 2x2 query down-sampling and grid queries.
    """
    model = _small(name, img_size=(64, 96))
    _randomize(model)
    transposed = _small(name, img_size=(96, 64))
    state = model.state_dict()
    # Each 16x16 patch is transposed as well, so the patch kernels must be.
    kernel = state["backbone.patch_embed.projection.weight"]
    state["backbone.patch_embed.projection.weight"] = kernel.transpose(-2, -1).contiguous()
    pos = state["backbone.pos_embed"]
    state["backbone.pos_embed"] = torch.cat([pos[:, :1], _transpose_grid(pos[:, 1:], (4, 6))], dim=1)
    if "decode_head.atm.q.weight" in state:  # Shrunk: QU queries on the 1/16 grid
        state["decode_head.q.weight"] = _transpose_grid(state["decode_head.q.weight"], (4, 6))
    transposed.load_state_dict(state)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = model(x).transpose(-2, -1)
        actual = transposed(x.transpose(-2, -1).contiguous())
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["segvit_vit_b_ade", "segvit_shrunk_vit_l_ade"])
def test_other_input_size_equals_model_built_for_it(name: str) -> None:
    """Running at a new size (grid tensors resampled on the fly) == building the model for that
    size and loading the weights through the checkpoint filter (resampled at load time)."""
    trained = _small(name, img_size=(64, 64))
    _randomize(trained)
    rebuilt = _small(name, img_size=(64, 128))
    load_pretrained(rebuilt, trained.state_dict())
    assert rebuilt.backbone.pos_embed.shape[1] == 1 + 4 * 8
    x = torch.randn(1, 3, 64, 128)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), trained(x), rtol=1e-5, atol=1e-6)


def test_grid_resampling_is_identity_at_the_training_grid() -> None:
    tokens = torch.randn(2, 4 * 6, 8)
    assert resample_grid_embedding(tokens, (4, 6), (4, 6)) is tokens
    # mmseg skips the resize at the training size; a bicubic resize to the same size is the
    # identity as well, so skipping does not change the result.
    forced = resample_grid_embedding(tokens, (4, 6), (4, 7))
    assert forced.shape == (2, 4 * 7, 8)
    grid = tokens.reshape(2, 4, 6, 8).permute(0, 3, 1, 2)
    same = torch.nn.functional.interpolate(grid, size=(4, 6), mode="bicubic", align_corners=False)
    torch.testing.assert_close(same.permute(0, 2, 3, 1).reshape(2, 24, 8), tokens)


def test_low_res_combination_differs_but_agrees_on_a_single_cell() -> None:
    model = _small("segvit_vit_b_ade", img_size=(64, 96))
    _randomize(model, scale=0.2)  # masks that vary across the image
    low = _small("segvit_vit_b_ade", img_size=(64, 96), combine_at_low_res=True)
    low.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        official, cheap = model(x), low(x)
        assert cheap.shape == official.shape
        assert (cheap - official).abs().max() > 1e-2  # documented as not equal
        # On a 1x1 grid the upsampling is constant, so the order of upsample and sigmoid x class
        # product cannot matter.
        x1 = torch.randn(1, 3, 16, 16)
        torch.testing.assert_close(low(x1), model(x1))


def test_bad_input_sizes_are_refused() -> None:
    plain = _small("segvit_vit_b_ade")
    shrunk = _small("segvit_shrunk_vit_l_ade")
    with pytest.raises(InputSizeError, match="multiples of 16"):
        plain(torch.randn(1, 3, 64, 72))
    with pytest.raises(InputSizeError, match="multiples of 32"):
        shrunk(torch.randn(1, 3, 64, 80))
    with pytest.raises(InputSizeError):
        plain(torch.randn(1, 1, 64, 64))
    with pytest.raises(InputSizeError, match="multiples of 32"):
        create_model("segvit_shrunk_vit_l_ade", img_size=(640, 624))


def test_variant_configs() -> None:
    for name in VARIANTS:
        cfg = get_model_cfg(name)
        assert (cfg.task, cfg.label_set, cfg.num_classes, cfg.pixel_scale) == (
            "segmentation",
            "ade20k150",
            150,
            255.0,
        )
        assert "slid" in cfg.seg_resize and "multiple of" in cfg.seg_resize
    assert get_model_cfg("segvit_vit_b_ade").input_size == (512, 512)
    assert get_model_cfg("segvit_vit_l_ade").mean == get_model_cfg("segvit_vit_l_ade").std == (127.5,) * 3
    assert get_model_cfg("segvit_shrunk_vit_l_ade").input_size == (640, 640)
    assert get_model_cfg("segvit_shrunk_vit_l_ade").size_divisor == 32
    assert get_model_cfg("segvit_vit_l_ade").size_divisor == 16


def _official_keys(name: str) -> dict[str, list[int]]:
    return json.loads((KEYS_DIR / f"{name}.json").read_text())


def _meta_model(name: str, **kwargs: object) -> torch.nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


@pytest.mark.parametrize("name", VARIANTS)
def test_official_key_list_loads(name: str) -> None:
    model = _meta_model(name)
    state = convert_checkpoint(model, state_dict_from_key_list(_official_keys(name), device="meta"))
    check_state_dict(model, state)


@pytest.mark.parametrize("name", ["segvit_vit_b_ade", "segvit_shrunk_vit_l_ade"])
def test_official_key_list_loads_into_a_model_built_for_another_size(name: str) -> None:
    model = _meta_model(name, img_size=(512, 768))
    state = convert_checkpoint(model, state_dict_from_key_list(_official_keys(name), device="meta"))
    check_state_dict(model, state)
    assert state["backbone.pos_embed"].shape[1] == 1 + 32 * 48


@pytest.mark.parametrize("name", VARIANTS)
def test_corrupted_key_list_is_refused(name: str) -> None:
    keys = _official_keys(name)
    removed = (
        "decode_head.class_embed.weight"
        if name != "segvit_shrunk_vit_l_ade"
        else "decode_head.atm.class_embed.weight"
    )
    renamed = "backbone.layers.3.ffn.layers.0.0.weight"
    del keys[removed]
    keys[renamed.replace("layers.0.0", "layers.0.9")] = keys.pop(renamed)
    model = _meta_model(name)
    state = convert_checkpoint(model, state_dict_from_key_list(keys, device="meta"))
    with pytest.raises(CheckpointError) as err:
        check_state_dict(model, state)
    assert removed in str(err.value) and renamed in str(err.value)
    assert "backbone.layers.3.ffn.layers.0.9.weight" in str(err.value)


# Measured on the official classes (docs/model-figures.md, SegViT): backbone + head parameters.
FULL_PARAMS_M = {
    "segvit_vit_b_ade": (86.43, 22.30),
    "segvit_vit_l_ade": (304.74, 39.57),
    "segvit_shrunk_vit_l_ade": (304.74, 39.86),
}
# README GFLOPs (fvcore MACs at the crop size, all attention matmuls counted).
PAPER_GMACS = {"segvit_vit_b_ade": 120.9, "segvit_vit_l_ade": 637.9, "segvit_shrunk_vit_l_ade": 373.5}


@pytest.mark.slow
@pytest.mark.parametrize("name", VARIANTS)
def test_full_config_parameters_and_macs(name: str) -> None:
    model = create_model(name)
    backbone = sum(p.numel() for p in model.backbone.parameters()) / 1e6
    head = sum(p.numel() for p in model.decode_head.parameters()) / 1e6
    assert (round(backbone, 2), round(head, 2)) == FULL_PARAMS_M[name]
    check_state_dict(model, convert_checkpoint(model, state_dict_from_key_list(_official_keys(name))))
    from litevit.flops import count_model

    with torch.device("meta"):
        meta = create_model(name)
    assert count_model(meta).macs / 1e9 == pytest.approx(PAPER_GMACS[name], rel=0.005)


@pytest.mark.slow
def test_full_vit_b_forward_non_square() -> None:
    model = create_model("segvit_vit_b_ade")
    with torch.no_grad():
        scores = model(torch.randn(1, 3, 512, 704))
    assert scores.shape == (1, 150, 512, 704) and torch.isfinite(scores).all()
