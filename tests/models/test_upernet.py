"""ELSA-Swin UPerNet: exact adaptive pooling (torch and ONNX), official key lists, any input size."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from litevit.errors import CheckpointError
from litevit.flops import count_model
from litevit.models import create_model, get_model_cfg, load_pretrained
from litevit.models._pretrained import check_state_dict, convert_checkpoint, state_dict_from_key_list
from litevit.models.upernet import PPM_BINS, adaptive_avg_pool2d

KEYS_DIR = Path(__file__).parents[1] / "fixtures" / "keys"
VARIANTS = ("elsa_swin_tiny_upernet_ade", "elsa_swin_small_upernet_ade")
# The official build (EncoderDecoder: ELSASwin + UPerHead + FCN auxiliary head), instantiated from
# damo-cv/ELSA seg/ (mmseg 0.11) with stubbed mmcv/timm imports: every parameter, aux head included.
OFFICIAL_PARAMS = {"elsa_swin_tiny_upernet_ade": 60_794_486, "elsa_swin_small_upernet_ade": 84_528_134}
OFFICIAL_AUX_PARAMS = 923_798
# Sizes whose maps do not divide the bins (and some smaller than 6).
ODD_SIZES = [(1, 1), (2, 3), (5, 7), (7, 5), (13, 17), (16, 23), (25, 6)]


@pytest.mark.parametrize("bins", PPM_BINS)
@pytest.mark.parametrize("size", ODD_SIZES)
def test_matrix_pooling_equals_adaptive_avg_pool2d(bins: int, size: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(bins))
    expected = F.adaptive_avg_pool2d(x, bins)
    torch.testing.assert_close(adaptive_avg_pool2d(x, bins), expected, rtol=1e-5, atol=1e-6)


def test_pooling_graph_is_exact_at_sizes_that_do_not_divide(tmp_path: Path) -> None:
    """One dynamic-H x W ONNX graph of the four PPM poolings, run in ONNX Runtime at sizes that do
    not divide the bins, against torch's adaptive_avg_pool2d."""
    ort = pytest.importorskip("onnxruntime")

    class Pools(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(adaptive_avg_pool2d(x, bins) for bins in PPM_BINS)

    height, width = torch.export.Dim("height", min=2, max=512), torch.export.Dim("width", min=2, max=512)
    exported = torch.export.export(
        Pools(), (torch.randn(1, 4, 12, 18),), dynamic_shapes=({2: height, 3: width},), strict=False
    )
    program = torch.onnx.export(exported, (torch.randn(1, 4, 12, 18),), dynamo=True, opset_version=18)
    assert program is not None
    graph = program.model_proto
    ops = {node.op_type for node in graph.graph.node}
    assert "AveragePool" not in ops and "MatMul" in ops  # no fixed-kernel pooling that only divides
    path = tmp_path / "pools.onnx"
    onnx.save(graph, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in [(2, 3), (13, 17), (16, 23), (25, 6), (47, 61)]:
        x = torch.randn(1, 4, *size, generator=torch.Generator().manual_seed(size[0]))
        outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        for bins, out in zip(PPM_BINS, outputs, strict=True):
            np.testing.assert_allclose(out, F.adaptive_avg_pool2d(x, bins).numpy(), rtol=1e-5, atol=1e-6)


def _official_keys(name: str) -> dict[str, list[int]]:
    return json.loads((KEYS_DIR / f"{name}.json").read_text())


@pytest.mark.parametrize("name", VARIANTS)
def test_official_key_list_loads_and_parameters_equal_the_official_build(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name)
    keys = _official_keys(name)
    state = convert_checkpoint(model, state_dict_from_key_list(keys, device="meta"))
    check_state_dict(model, state)
    # The filter drops only the stage-4 bias index buffers (derived from the window size).
    assert set(keys) - set(state) == {k for k in keys if k.endswith(".attn.relative_id")}
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[name]
    assert sum(p.numel() for p in model.auxiliary_head.parameters()) == OFFICIAL_AUX_PARAMS
    # The README's rounded figures (61 M / 85 M) include the auxiliary head.
    assert round(OFFICIAL_PARAMS[name] / 1e6) == get_model_cfg(name).paper.params_m


def test_corrupted_key_list_is_refused() -> None:
    keys = _official_keys("elsa_swin_tiny_upernet_ade")
    del keys["decode_head.psp_modules.3.1.conv.weight"]
    keys["auxiliary_head.conv_seg.weight"] = [151, 256, 1, 1]
    with torch.device("meta"):
        model = create_model("elsa_swin_tiny_upernet_ade")
    with pytest.raises(CheckpointError) as err:
        check_state_dict(model, convert_checkpoint(model, state_dict_from_key_list(keys, device="meta")))
    assert "decode_head.psp_modules.3.1.conv.weight" in str(err.value)
    assert "auxiliary_head.conv_seg.weight" in str(err.value)


# No FLOPs are published for ELSA UPerNet; the counts at the UPerNet convention's 512x2048 are
# pinned so a change of architecture or counter shows. For scale: the Swin paper's Swin-T/S UPerNet
# are 945 / 1038 GFLOPs (MACs) at 512x2048, and ELSA replaces window attention at similar cost.
GMACS_512X2048 = {"elsa_swin_tiny_upernet_ade": 947.13, "elsa_swin_small_upernet_ade": 1046.41}


@pytest.mark.parametrize("name", VARIANTS)
def test_macs_at_512x2048(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name, img_size=(512, 2048))
    assert count_model(model, (512, 2048)).macs / 1e9 == pytest.approx(GMACS_512X2048[name], rel=1e-3)


def _smoke(name: str = "elsa_swin_tiny_upernet_ade", **kwargs: object) -> torch.nn.Module:
    return create_model(name, smoke=True, num_classes=5, **kwargs)


@pytest.mark.parametrize("size", [(64, 64), (67, 91), (33, 45), (100, 35)])
def test_any_input_size(size: tuple[int, int]) -> None:
    model = _smoke()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        logits = model(x)
        aux = model.forward_auxiliary(model.forward_features(x))
    assert logits.shape == (2, 5, math.ceil(size[0] / 4), math.ceil(size[1] / 4))
    assert aux.shape[:2] == (2, 5) and torch.isfinite(logits).all()


def test_padding_does_not_leak_into_a_cropped_comparison() -> None:
    """The zero padding is the official behaviour: an image and the same image with a zero border
    (after normalisation) give the same features up to the border, as they are the same input."""
    model = _smoke()
    x = torch.randn(1, 3, 62, 90)
    padded = F.pad(x, (0, 2, 0, 2))  # what the patch embedding does itself for 62x90
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(padded), rtol=1e-5, atol=1e-5)


def test_load_pretrained_round_trip() -> None:
    model = _smoke()
    other = _smoke()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.1)
    load_pretrained(model, other.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), other(x))
