"""GhostHead's plugin core (g++-built) and kernel spec against the reference and each other.

The C++ core is compiled with g++ (``plugins/compile.py``: ``-Wall -Wextra -Werror``) into a small
driver, ``tests/plugins/cpp/test_ghost_head_core.cpp``, that prints what ``GhostHeadOp`` makes of
one node: its refusals, output shape, launch and whether that launch writes every output element
exactly once.
"""

from __future__ import annotations

import re
from pathlib import Path

import core_programs
import pytest
from core_programs import Shapes, run_core

from litevit.ops.ghost_head import ghost_head_output_shape
from litevit.plugins.ghost_head import spec


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return core_programs.build(tmp_path_factory, "ghost_head")


def python_launch(shapes: Shapes, attrs: dict[str, list[int]]) -> str:
    return core_programs.python_launch(spec.SPEC, shapes, attrs)


def _four(shapes: Shapes) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The four input shapes, unpacked for the reference's shape function."""
    v, attn, ghost_mul, ghost_add = shapes
    return v, attn, ghost_mul, ghost_add


def node(
    v: tuple[int, ...], heads: int, kernel_size: int, dilation: int
) -> tuple[Shapes, dict[str, list[int]]]:
    """Consistent input shapes and the node's attributes for v."""
    batch, channels, height, width = v
    ghost = (channels, kernel_size, kernel_size)
    shapes = [v, (batch, heads * kernel_size**2, height, width), ghost, ghost]
    return shapes, {"heads": [heads], "kernel_size": [kernel_size], "dilation": [dilation]}


VALID = [
    # (v, heads, kernel_size, dilation): ELSA-Swin-T stages 1-3 at 224 (C 96/192/384, 3/6/12
    # heads, k = 7), batch 1 and 8; heads of fewer than 8 channels or not a multiple of 8 (a
    # shorter last chunk); dilations; planes taking one, several or partial blocks; k > 8 (two
    # stages of ghost taps in the kernel).
    ((1, 96, 56, 56), 3, 7, 1),
    ((8, 192, 28, 28), 6, 7, 1),
    ((8, 384, 14, 14), 12, 7, 1),
    ((2, 12, 9, 7), 3, 3, 2),
    ((1, 20, 5, 6), 2, 5, 1),
    ((1, 6, 4, 4), 6, 3, 1),
    ((3, 24, 11, 13), 1, 9, 3),
    ((1, 8, 1, 1), 2, 1, 1),
    ((2, 16, 300, 1), 2, 3, 1),
    ((0, 8, 5, 5), 2, 3, 1),
]


@pytest.mark.parametrize(("v", "heads", "kernel_size", "dilation"), VALID)
def test_core_and_spec_match_the_reference(
    core: Path, v: tuple[int, ...], heads: int, kernel_size: int, dilation: int
) -> None:
    shapes, attrs = node(v, heads, kernel_size, dilation)
    facts = run_core(core, attrs, shapes)
    assert "error" not in facts, facts["error"]
    expected = ghost_head_output_shape(*_four(shapes), heads, kernel_size, dilation)
    assert tuple(map(int, facts["output"].split())) == expected
    assert spec.output_shape(shapes, attrs) == expected
    plain_attrs = {"heads": heads, "kernel_size": kernel_size, "dilation": dilation}
    assert spec.output_shape(shapes, plain_attrs) == expected  # plain ints as well
    assert facts["launch"] == python_launch(shapes, attrs)
    assert facts["coverage"] == "ok"
    assert facts["roundtrip"] == "ok"


def test_spec_rules_names_and_kernels_match_the_core(core: Path) -> None:
    shapes, attrs = node((1, 8, 3, 3), 2, 3, 1)
    core_programs.check_rules_names_and_kernels(core, spec.SPEC, shapes, attrs)


def test_launch_matches_the_kernel_signature() -> None:
    """Each kernel takes the inputs, the output, then exactly the scalars the launch gives."""
    shapes, attrs = node((1, 8, 3, 3), 2, 3, 1)
    core_programs.check_kernel_signature(spec.SPEC, shapes, attrs)


def _reference_error(shapes: Shapes, heads: int, kernel_size: int, dilation: int) -> str:
    with pytest.raises(ValueError) as refused:
        ghost_head_output_shape(*_four(shapes), heads, kernel_size, dilation)
    return str(refused.value)


def _with(shapes: Shapes, index: int, shape: tuple[int, ...]) -> Shapes:
    return [shape if i == index else s for i, s in enumerate(shapes)]


_SHAPES, _ = node((2, 12, 6, 5), 3, 3, 1)


@pytest.mark.parametrize(
    ("shapes", "heads", "kernel_size", "dilation"),
    [
        (_SHAPES, 3, 4, 1),
        (_SHAPES, 3, -1, 1),
        (_SHAPES, 3, 3, 0),
        (_with(_SHAPES, 0, (2, 12, 6)), 3, 3, 1),
        (_SHAPES, 5, 3, 1),
        (_with(_SHAPES, 1, (2, 28, 6, 5)), 3, 3, 1),
        (_with(_SHAPES, 1, (1, 27, 6, 5)), 3, 3, 1),
        (_with(_SHAPES, 1, (2, 27, 6, 6)), 3, 3, 1),
        (_with(_SHAPES, 2, (12, 3)), 3, 3, 1),
        (_with(_SHAPES, 2, (12,)), 3, 3, 1),
        (_with(_SHAPES, 3, (12, 5, 5)), 3, 3, 1),
    ],
)
def test_refusals_are_the_references_sentences(
    core: Path, shapes: Shapes, heads: int, kernel_size: int, dilation: int
) -> None:
    expected = _reference_error(shapes, heads, kernel_size, dilation)
    attrs = {"heads": [heads], "kernel_size": [kernel_size], "dilation": [dilation]}
    assert run_core(core, attrs, shapes)["error"] == expected
    with pytest.raises(ValueError, match=re.escape(expected)):
        spec.output_shape(shapes, attrs)
    with pytest.raises(ValueError, match=re.escape(expected)):
        spec.launch(shapes, attrs)


_ATTRS = {"heads": [3], "kernel_size": [3], "dilation": [1]}


@pytest.mark.parametrize(
    ("attrs", "shapes", "expected"),
    [
        ({"kernel_size": [3], "dilation": [1]}, _SHAPES, "GhostHead needs the attribute heads."),
        ({"heads": [3], "dilation": [1]}, _SHAPES, "GhostHead needs the attribute kernel_size."),
        ({"heads": [3], "kernel_size": [3]}, _SHAPES, "GhostHead needs the attribute dilation."),
        (
            {**_ATTRS, "dilation": [1, 2]},
            _SHAPES,
            "GhostHead's dilation attribute must be one integer; got 2 values.",
        ),
        ({**_ATTRS, "heads": [0]}, _SHAPES, "GhostHead: heads must be >= 1; got 0."),
        (
            _ATTRS,
            _SHAPES[:3],
            "GhostHead takes 4 inputs (v, attn, ghost_mul, ghost_add); got 3.",
        ),
        (
            {**_ATTRS, "heads": [1]},
            node((1, 600000, 2, 2), 1, 3, 1)[0],
            "GhostHead's launch takes at most 65535 batches and 65535 blocks of 8 channels of one head"
            " (CUDA grid y, z); got v (1, 600000, 2, 2) with 1 heads.",
        ),
        (
            _ATTRS,
            node((70000, 12, 2, 2), 3, 3, 1)[0],
            "GhostHead's launch takes at most 65535 batches and 65535 blocks of 8 channels of one head"
            " (CUDA grid y, z); got v (70000, 12, 2, 2) with 3 heads.",
        ),
        (
            _ATTRS,
            node((1, 12, 20000, 20000), 3, 3, 1)[0],
            "GhostHead's kernel indexes with int32: C, 8*H*W, 8*k*k and H or W plus (k//2)*dilation must stay"
            " below 2^31; got v (1, 12, 20000, 20000).",
        ),
        (
            {**_ATTRS, "dilation": [2**31 - 1]},
            _SHAPES,
            "GhostHead's kernel indexes with int32: C, 8*H*W, 8*k*k and H or W plus (k//2)*dilation must stay"
            " below 2^31; got v (2, 12, 6, 5).",
        ),
        (
            _ATTRS,
            node((2, -12, 6, 5), 3, 3, 1)[0],
            "GhostHead cannot launch for v with negative dims; got (2, -12, 6, 5).",
        ),
        # Engine build time: -1 is a dim only the run time knows; what is known is checked.
        (
            _ATTRS,
            node((-1, 14, -1, -1), 3, 3, 1)[0],
            "GhostHead: heads (3) must divide the 14 channels of v.",
        ),
        (
            _ATTRS,
            [(-1, 12, -1, -1), (-1, 27, -1, -1), (12, 3, 3), (12, 5, 5)],
            "GhostHead: ghost_add must be (12, 3, 3) (C, k, k); got (12, 5, 5).",
        ),
        (
            _ATTRS,
            [(-1, 12, -1, -1), (-1, 27, -1, -1), (12, 3, 3), (-1, 3, 3)],
            "GhostHead cannot launch for v with negative dims; got (-1, 12, -1, -1).",
        ),
        (
            _ATTRS,
            [(2, 12, 6, 5), (2, 27, 6, 5), (12, 3, 3), (-1, 3, 3)],
            "GhostHead cannot launch for ghost_add with negative dims; got (-1, 3, 3).",
        ),
    ],
)
def test_plugin_refusals_agree(
    core: Path, attrs: dict[str, list[int]], shapes: Shapes, expected: str
) -> None:
    assert run_core(core, attrs, shapes)["error"] == expected
    with pytest.raises(ValueError, match=re.escape(expected)):
        spec.launch(shapes, attrs)
