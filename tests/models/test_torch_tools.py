"""torch's own tools on every registered model: torch.compile and FlopCounterMode.

Parametrised from the registry, so a newly registered model is covered without editing this
file. torch.compile (inductor on CPU compiles C++) runs once per model on its smoke
architecture: two models in the default run, the others and one full-size model under the
``slow`` marker (CI runs both).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pytest
import torch
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

import litevit
from litevit.flops import count_macs
from litevit.artifacts import DETECTION_TASKS
from litevit.models import get_model_cfg, list_models
from litevit.ops import OPS

MODELS = list_models()
DETECTORS = {name for name in MODELS if get_model_cfg(name).task in DETECTION_TASKS}
COMPILE_RTOL = 1e-4  # max |compiled - eager| / max |eager|, per output tensor

# ----------------------------------------------------------------------------- torch.compile


def _informative_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Redraw every weight matrix/kernel as N(0, 2/fan_in), deterministically.

    The registry's initialisation (e.g. N(0, 0.01) linears) leaves attention softmaxes almost
    uniform, and a uniform attention hides a wrong one: a compiled graph that mixes up keys
    still averages the values right. With these weights it does not.
    """
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim >= 2:
                fan_in = param[0].numel()
                param.copy_(torch.randn(param.shape, generator=generator) * math.sqrt(2.0 / fan_in))
    return model


def _compile_and_compare(model: torch.nn.Module, x: torch.Tensor) -> None:
    torch._dynamo.reset()  # fresh caches: models of one family share forward() code objects
    torch._dynamo.utils.counters.clear()
    with torch.no_grad():
        eager = tree_leaves(model(x))
        compiled = tree_leaves(torch.compile(model, backend="inductor")(x))
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1, "nothing was compiled"
    assert len(compiled) == len(eager)
    for got, want in zip(compiled, eager, strict=True):
        assert got.shape == want.shape and got.dtype == want.dtype
        if not want.dtype.is_floating_point:  # labels, counts, masks, segment ids
            assert torch.equal(got, want), f"compiled {want.dtype} output differs from eager"
            continue
        scale = want.abs().max().item()
        error = (got - want).abs().max().item()
        assert math.isfinite(scale) and scale > 0
        assert error <= COMPILE_RTOL * scale, (
            f"compiled differs from eager by {error:.3g} (max |eager| {scale:.3g})"
        )


# Inductor compiles C++ for 15-30 s a model on 2 cores (1-3 min a detector): the default run compiles
# the two models whose compilation once broke (LVT: the ops' fake kernels; Mobile-Former: inductor's
# attention fusion), every other model is slow.
DEFAULT_COMPILED = ("lvt", "mobile_former_26m")


@pytest.mark.parametrize(
    "name",
    [name if name in DEFAULT_COMPILED else pytest.param(name, marks=pytest.mark.slow) for name in MODELS],
)
def test_torch_compile_equals_eager(name: str) -> None:
    # Batch 1, the deployment case: inductor's graph rewrites depend on the shapes (its attention
    # fusion mistook Mobile-Former's permuted key for a transposed one at batch 1, not at batch 2).
    model = _informative_weights(litevit.create_model(name, smoke=True))
    x = torch.randn(1, 3, *model.cfg.input_size, generator=torch.Generator().manual_seed(1))
    if name in DETECTORS:
        # In float64: a detector amplifies float32 rounding (box decoding's exp, then RoIAlign
        # sampling at the decoded coordinates), so inductor's reordered sums moved float32 scores
        # by 6e-4 (lvt_panoptic_fpn); in float64 compiled and eager agree to 1e-11, and a wrong
        # compilation still shows.
        model, x = model.double(), x.double()
    _compile_and_compare(model, x)


@pytest.mark.slow
def test_torch_compile_equals_eager_full_size() -> None:
    # LVT: all three kinds of litevit op paths (CSA, RASA) at the paper's size; the model
    # whose fake kernels once broke torch.compile.
    model = _informative_weights(litevit.create_model("lvt"))
    x = torch.randn(1, 3, *model.cfg.input_size, generator=torch.Generator().manual_seed(1))
    _compile_and_compare(model, x)


# ----------------------------------------------------------------------------- FlopCounterMode

# Categories both counters count, by the aten/litevit op names each reports. litevit counts
# MACs, torch 2 FLOPs per MAC: in a shared category torch's figure is exactly twice litevit's.
# (mm/bmm/addmm form one category: how matmul splits a product between mm and bmm differs
# between no_grad and inference_mode, the sum does not.)
SHARED = {
    "matrix products": {"mm", "addmm", "bmm", "baddbmm"},
    "convolutions": {"convolution"},
    "attention kernels (CUDA)": {
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    },
    **{opdef.onnx_name: {opdef.onnx_name, opdef.torch_name} for opdef in OPS.values()},
}
# What litevit counts (fvcore's rules, as the papers counted) and torch's counter does not.
LITEVIT_ONLY = {
    "native_layer_norm",
    "native_group_norm",
    "native_batch_norm",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_no_training",
    "upsample_bilinear2d",
    "upsample_nearest2d",
    "_adaptive_avg_pool2d",
    "_scaled_dot_product_flash_attention_for_cpu",  # torch 2.13 has no formula for the CPU kernel
    "_native_multi_head_attention",
}


def _by_category(counts: dict[str, int], who: str) -> dict[str, int]:
    categories: dict[str, int] = defaultdict(int)
    for op, count in counts.items():
        category = next((c for c, ops in SHARED.items() if op in ops), None)
        if category is None:
            assert who == "litevit" and op in LITEVIT_ONLY, f"{who} counts {op}, which the test does not know"
            continue
        categories[category] += count
    return dict(categories)


@pytest.mark.per_architecture
@pytest.mark.parametrize("grad_mode", ["no_grad", "inference_mode"])
@pytest.mark.parametrize("name", MODELS)
def test_flop_counter_mode_agrees_with_litevit(name: str, grad_mode: str) -> None:
    """torch's FlopCounterMode runs under no_grad and inference_mode (on the full-size model,
    built on the meta device: shapes only) and agrees with litevit.flops category by category."""
    with torch.device("meta"):
        model = litevit.create_model(name)
        x = torch.zeros(2, 3, *model.cfg.input_size)
    _, litevit_macs = count_macs(model, x)
    context = torch.no_grad() if grad_mode == "no_grad" else torch.inference_mode()
    with context, FlopCounterMode(display=False) as counter:
        model(x)
    torch_flops = {packet.__name__: int(n) for packet, n in counter.get_flop_counts()["Global"].items()}

    ours, theirs = _by_category(litevit_macs, "litevit"), _by_category(torch_flops, "torch")
    assert set(theirs) == set(ours)
    assert {category: 2 * macs for category, macs in ours.items()} == theirs
    assert sum(theirs.values()) > 0


def test_flop_counter_mode_counts_litevit_ops_by_their_formula() -> None:
    q = torch.zeros(2, 8, 6, 5)
    weight = torch.zeros(8, 1, 3, 3)
    with FlopCounterMode(display=False) as counter:
        OPS["RASA"](q, weight, dilations=[1, 3, 5], kernel_size=3)
    counts: dict[Any, int] = counter.get_flop_counts()["Global"]
    assert {packet.__name__: n for packet, n in counts.items()} == {"rasa": 2 * 3 * 2 * 8 * 6 * 5 * 9}
