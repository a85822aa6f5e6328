"""RASA's plugin core (g++-built) and kernel spec against the reference and each other.

The C++ core is compiled with g++ (``plugins/compile.py``: ``-Wall -Wextra -Werror``) into a small
driver, ``tests/plugins/cpp/test_rasa_core.cpp``, that prints what ``RasaOp`` makes of one node: its
refusals, output shape, launch and whether that launch writes every output element exactly once.
"""

from __future__ import annotations

import re
from pathlib import Path

import core_programs
import pytest
from core_programs import Shapes, run_core

from litevit.ops.rasa import rasa_output_shape
from litevit.plugins.rasa import spec


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return core_programs.build(tmp_path_factory, "rasa")


def python_launch(shapes: Shapes, attrs: dict[str, list[int]]) -> str:
    return core_programs.python_launch(spec.SPEC, shapes, attrs)


def reference_attrs(attrs: dict[str, list[int]]) -> dict[str, object]:
    return {"dilations": attrs["dilations"], "kernel_size": attrs["kernel_size"][0]}


VALID = [
    # (q, dilations, kernel_size): LVT's stages 2-4 at 224 (C 64/160/256), batch 1 and 8, odd maps,
    # planes that take one, several or partial blocks, other sizes and dilation counts.
    ((1, 64, 28, 28), [1, 3, 5], 3),
    ((8, 160, 14, 14), [1, 3, 5], 3),
    ((8, 256, 7, 7), [1, 3, 5], 3),
    ((2, 6, 9, 7), [1, 3, 5], 3),
    ((3, 8, 14, 14), [2], 3),
    ((1, 3, 8, 8), [1, 2], 5),
    ((1, 2, 1, 1), [1], 1),
    ((1, 5, 17, 33), [1, 2, 3, 4, 5, 6, 7, 8], 3),
    ((2, 1, 300, 1), [4, 4], 7),
    ((1, 4, 57, 61), [1, 3, 5], 3),
    ((0, 4, 5, 5), [1], 3),
]


@pytest.mark.parametrize(("q", "dilations", "kernel_size"), VALID)
def test_core_and_spec_match_the_reference(
    core: Path, q: tuple[int, ...], dilations: list[int], kernel_size: int
) -> None:
    weight = (q[1], 1, kernel_size, kernel_size)
    attrs = {"dilations": dilations, "kernel_size": [kernel_size]}
    facts = run_core(core, attrs, [q, weight])
    assert "error" not in facts, facts["error"]
    expected = rasa_output_shape(q, weight, dilations, kernel_size)
    assert tuple(map(int, facts["output"].split())) == expected
    assert spec.output_shape([q, weight], attrs) == expected
    assert spec.output_shape([q, weight], reference_attrs(attrs)) == expected  # plain ints as well
    assert facts["launch"] == python_launch([q, weight], attrs)
    assert facts["coverage"] == "ok"
    assert facts["roundtrip"] == "ok"


def test_spec_rules_names_and_kernels_match_the_core(core: Path) -> None:
    attrs = {"dilations": [1, 3, 5], "kernel_size": [3]}
    core_programs.check_rules_names_and_kernels(core, spec.SPEC, [(1, 2, 3, 3), (2, 1, 3, 3)], attrs)


def test_launch_matches_the_kernel_signature() -> None:
    """Each kernel takes the inputs, the output, then exactly the scalars the launch gives."""
    attrs = {"dilations": [1], "kernel_size": 3}
    core_programs.check_kernel_signature(spec.SPEC, [(1, 2, 3, 3), (2, 1, 3, 3)], attrs)


def _reference_error(
    q: tuple[int, ...], weight: tuple[int, ...], dilations: list[int], kernel_size: int
) -> str:
    with pytest.raises(ValueError) as refused:
        rasa_output_shape(q, weight, dilations, kernel_size)
    return str(refused.value)


@pytest.mark.parametrize(
    ("q", "weight", "dilations", "kernel_size"),
    [
        ((1, 4, 8, 8), (4, 1, 4, 4), [1], 4),
        ((1, 4, 8, 8), (4, 1, 0, 0), [1], 0),
        ((1, 4, 8, 8), (4, 1, 3, 3), [], 3),
        ((1, 4, 8, 8), (4, 1, 3, 3), [1, 0, 3], 3),
        ((4, 8, 8), (4, 1, 3, 3), [1], 3),
        ((1, 4, 8, 8), (4, 1, 5, 5), [1], 3),
        ((1, 4, 8, 8), (3, 1, 3, 3), [1], 3),
        ((1, 4, 8, 8), (4, 3, 3), [1], 3),
    ],
)
def test_refusals_are_the_references_sentences(
    core: Path, q: tuple[int, ...], weight: tuple[int, ...], dilations: list[int], kernel_size: int
) -> None:
    expected = _reference_error(q, weight, dilations, kernel_size)
    attrs = {"dilations": dilations, "kernel_size": [kernel_size]}
    assert run_core(core, attrs, [q, weight])["error"] == expected
    with pytest.raises(ValueError, match=re.escape(expected)):
        spec.output_shape([q, weight], attrs)
    with pytest.raises(ValueError, match=re.escape(expected)):
        spec.launch([q, weight], attrs)


@pytest.mark.parametrize(
    ("attrs", "shapes", "expected"),
    [
        ({"kernel_size": [3]}, [(1, 4, 8, 8), (4, 1, 3, 3)], "RASA needs the attribute dilations."),
        ({"dilations": [1]}, [(1, 4, 8, 8), (4, 1, 3, 3)], "RASA needs the attribute kernel_size."),
        (
            {"dilations": [1], "kernel_size": [3, 3]},
            [(1, 4, 8, 8), (4, 1, 3, 3)],
            "RASA's kernel_size attribute must be one integer; got 2 values.",
        ),
        (
            {"dilations": [1] * 9, "kernel_size": [3]},
            [(1, 4, 8, 8), (4, 1, 3, 3)],
            "RASA's kernel takes at most 8 dilations; got 9.",
        ),
        ({"dilations": [1], "kernel_size": [3]}, [(1, 4, 8, 8)], "RASA takes 2 inputs (q, weight); got 1."),
        (
            {"dilations": [1], "kernel_size": [3]},
            [(1, 70000, 2, 2), (70000, 1, 3, 3)],
            "RASA's launch takes at most 65535 batches and 65535 channels (CUDA grid y, z);"
            " got (1, 70000, 2, 2).",
        ),
        (
            {"dilations": [1], "kernel_size": [3]},
            [(70000, 4, 2, 2), (4, 1, 3, 3)],
            "RASA's launch takes at most 65535 batches and 65535 channels (CUDA grid y, z);"
            " got (70000, 4, 2, 2).",
        ),
        (
            {"dilations": [1], "kernel_size": [3]},
            [(1, 4, 50000, 50000), (4, 1, 3, 3)],
            "RASA's kernel indexes with int32: H*W, k*k and H or W plus (k//2)*dilation must stay below 2^31;"
            " got query (1, 4, 50000, 50000).",
        ),
        (
            {"dilations": [2**30], "kernel_size": [5]},
            [(1, 4, 8, 8), (4, 1, 5, 5)],
            "RASA's kernel indexes with int32: H*W, k*k and H or W plus (k//2)*dilation must stay below 2^31;"
            " got query (1, 4, 8, 8).",
        ),
        (
            {"dilations": [1], "kernel_size": [3]},
            [(-1, 4, 8, 8), (4, 1, 3, 3)],
            "RASA cannot launch for a query with negative dims; got (-1, 4, 8, 8).",
        ),
        # Engine build time: -1 is a dim only the run time knows; what is known is checked.
        (
            {"dilations": [1, 3, 5], "kernel_size": [3]},
            [(-1, 64, -1, -1), (64, 1, 5, 5)],
            "RASA weight must have shape (64, 1, 3, 3) for query (-1, 64, -1, -1); got (64, 1, 5, 5).",
        ),
        (
            {"dilations": [1], "kernel_size": [3]},
            [(2, 4, 8, 8), (-1, 1, 3, 3)],
            "RASA cannot launch for a weight with negative dims; got (-1, 1, 3, 3).",
        ),
    ],
)
def test_plugin_refusals_agree(
    core: Path, attrs: dict[str, list[int]], shapes: Shapes, expected: str
) -> None:
    assert run_core(core, attrs, shapes)["error"] == expected
    with pytest.raises(ValueError, match=re.escape(expected)):
        spec.launch(shapes, attrs)
