"""The host-side logic of benchmarks/gpu_kernels.py, the GPU verification script (no GPU here).

What runs here: the cases (that they are the shapes the models really feed each op), the bytes
each case moves, the roofline arithmetic, the report, and the no-GPU exit. What the script
measures on a GPU (kernel accuracy and speed) is not proven here.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from litevit.models import create_model
from litevit.ops import OPS
from litevit.ops._define import OpDef
from litevit.plugins.kernels import specs

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_kernels.py"
_spec = importlib.util.spec_from_file_location("gpu_kernels", SCRIPT)
assert _spec is not None and _spec.loader is not None
gpu_kernels = importlib.util.module_from_spec(_spec)
sys.modules["gpu_kernels"] = gpu_kernels  # dataclasses look their module up there
_spec.loader.exec_module(gpu_kernels)


def _key(op_type, shapes, attrs):
    return (
        op_type,
        tuple(tuple(s) for s in shapes),
        tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in attrs.items())),
    )


def model_op_calls(monkeypatch, model_name: str, resolution: int, batch: int) -> set:
    """Every distinct (op, input shapes, attributes) a model calls its litevit ops with, from a
    forward pass on the meta device (shapes only, no arithmetic)."""
    calls = set()
    original = OpDef.__call__

    def record(self, *args, **kwargs):
        shapes, attrs = self.shapes_and_attrs(args, kwargs)
        calls.add(_key(self.onnx_name, shapes, attrs))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(OpDef, "__call__", record)
    with torch.device("meta"):
        model = create_model(model_name).eval()
    with torch.no_grad():
        model(torch.zeros(batch, 3, resolution, resolution, device="meta"))
    return calls


@pytest.mark.parametrize("resolution", [160, 224, 320])
def test_cases_are_the_shapes_the_models_feed_the_ops(monkeypatch, resolution):
    # Proves: the script verifies and times each op at exactly the input shapes and attributes
    # LVT (CSA, RASA) and ELSA-Swin-T (GhostHead) call it with at that resolution.
    batch = 2
    expected = model_op_calls(monkeypatch, "lvt", resolution, batch) | model_op_calls(
        monkeypatch, "elsa_swin_tiny", resolution, batch
    )
    cases = gpu_kernels.lvt_cases(resolution, batch) + gpu_kernels.elsa_cases(resolution, batch)
    assert {_key(c.op_type, c.shapes, c.reference_attrs) for c in cases} == expected
    assert [c.where for c in cases] == [
        "LVT stage 1",
        "LVT stage 2",
        "LVT stage 3",
        "LVT stage 4",
        "ELSA-Swin-T stage 1",
        "ELSA-Swin-T stage 2",
        "ELSA-Swin-T stage 3",
    ]


def test_case_outputs_agree_with_spec_and_reference_and_node_attributes_cover_the_spec():
    # Proves: each case's output shape (from the op's spec) is the reference's, and the node
    # attributes the script hands the spec include every attribute the spec reads.
    cases = gpu_kernels.all_cases(gpu_kernels.OP_TYPES, [224, 320], [1, 8])
    assert len(cases) == 2 * 2 * 7
    found = specs()
    for case in cases:
        reference = OPS[case.op_type].output_shape(*case.shapes, **case.reference_attrs)
        assert case.output == tuple(reference)
        assert set(found[case.op_type].attribute_names) <= set(case.node_attrs)
        assert case.reference_attrs.items() <= case.node_attrs.items()


def test_bytes_moved_are_every_input_once_and_the_output_once():
    # Proves the roofline's numerator, written out by hand for LVT at 224: CSA in stage 1
    # (windows 28x28, C 64, 2 heads), RASA in stage 3 (14x14, C 160), and ELSA-Swin-T stage 1's
    # GhostHead (56x56, C 96, 3 heads, k 7).
    cases = {c.where: c for c in gpu_kernels.all_cases(gpu_kernels.OP_TYPES, [224], [8])}
    csa = cases["LVT stage 1"]
    assert csa.output == (8, 64, 56, 56)
    assert gpu_kernels.bytes_moved(csa, "float32") == 4 * 8 * (162 * 28 * 28 + 576 * 28 * 28 + 64 * 56 * 56)
    assert gpu_kernels.bytes_moved(csa, "float16") == gpu_kernels.bytes_moved(csa, "float32") // 2
    rasa = cases["LVT stage 3"]
    assert gpu_kernels.bytes_moved(rasa, "float16") == 2 * (2 * 8 * 160 * 14 * 14 + 160 * 9)
    ghost = cases["ELSA-Swin-T stage 1"]
    assert gpu_kernels.bytes_moved(ghost, "float32") == 4 * (
        2 * 8 * 96 * 56 * 56 + 8 * 3 * 49 * 56 * 56 + 2 * 96 * 49
    )


def test_stage_sizes():
    assert gpu_kernels.lvt_stage_sizes(224) == [56, 28, 14, 7]
    assert gpu_kernels.lvt_stage_sizes(230) == [58, 29, 15, 8]
    assert gpu_kernels.elsa_stage_sizes(224) == [56, 28, 14, 7]


def test_roofline_arithmetic():
    # H100 SXM: HBM3 at 2619 MHz over 5120 bits is NVIDIA's 3.35 TB/s.
    peak = gpu_kernels.peak_bandwidth(2_619_000, 5120)
    assert peak == pytest.approx(3.352e12, rel=1e-3)
    gb_s, fraction = gpu_kernels.roofline(1_676_160_000, 1e-3, peak)
    assert gb_s == pytest.approx(1676.16)
    assert fraction == pytest.approx(0.5)
    assert gpu_kernels.roofline(10**9, 1.0, None) == (1.0, None)


def _row(**changes):
    row = {
        "op": "CSA",
        "where": "LVT stage 1",
        "resolution": 224,
        "batch": 1,
        "output": [1, 64, 56, 56],
        "dtype": "float16",
        "max_err_over_scale": 2e-4,
        "passed": True,
        "kernel_us": 10.0,
        "torch_us": 45.0,
        "speedup": 4.5,
        "gb_s": 2000.0,
        "fraction_of_peak": 0.6,
    }
    return {**row, **changes}


def test_report_table_and_goals():
    rows = [_row(), _row(passed=False, max_err_over_scale=0.5, speedup=1.5, fraction_of_peak=None)]
    lines = gpu_kernels.table(rows).splitlines()
    assert lines[0] == (
        "| op | where | output | dtype | max err / scale | pass | kernel us | torch us | speed-up | GB/s "
        "| % of peak |"
    )
    assert lines[2] == (
        "| CSA | LVT stage 1 @224 | 1x64x56x56 | float16 | 2.00e-04 | yes | 10.0 | 45.0 | 4.5x | 2000 | 60 |"
    )
    assert lines[3].endswith("| 5.00e-01 | NO | 10.0 | 45.0 | 1.5x | 2000 | n/a |")
    assert gpu_kernels.summary(rows).splitlines() == [
        "accuracy: 1/2 cases within tolerance; FAILED: CSA LVT stage 1 @224 b1 float16",
        "goal >= 2x decomposed PyTorch: 1/2 cases",
        "goal >= 60 % of peak bandwidth: 1/1 cases",
    ]


def test_without_a_gpu_one_sentence_and_exit_2(monkeypatch, capsys):
    monkeypatch.setattr(gpu_kernels, "gpu_available", lambda: False)
    assert gpu_kernels.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == gpu_kernels.NO_GPU + "\n"
    assert captured.err.count(". ") == 0 and captured.err.rstrip().endswith(".")


def test_fewer_than_100_timed_calls_are_refused(monkeypatch):
    with pytest.raises(SystemExit) as exit_:
        gpu_kernels.main(["--iters", "50"])
    assert exit_.value.code == 2


def test_tolerances_are_the_issues():
    assert gpu_kernels.TOLERANCE == {"float32": 1e-5, "float16": 1e-2}
    assert (gpu_kernels.GOAL_SPEEDUP, gpu_kernels.GOAL_ROOFLINE) == (2.0, 0.6)
    assert math.isclose(
        gpu_kernels.BYTES_PER_ELEMENT["float16"] * 2, gpu_kernels.BYTES_PER_ELEMENT["float32"]
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_inputs_fit_the_reference_and_attention_is_softmaxed_per_head(dtype):
    # Proves (on the CPU): every case's inputs have its shapes and type, the reference runs on them
    # and gives the case's output shape, and attention sums to 1 over the axis the op reduces
    # (CSA: the k² sources of each head and target; GhostHead: the k² taps of each head).
    generator = torch.Generator().manual_seed(0)
    for case in gpu_kernels.all_cases(gpu_kernels.OP_TYPES, [64], [2]):
        tensors = gpu_kernels.make_inputs(torch, case, dtype, generator)
        assert [tuple(t.shape) for t in tensors] == list(case.shapes)
        assert all(t.dtype == dtype and t.is_contiguous() for t in tensors)
        output = OPS[case.op_type].reference(*(t.float() for t in tensors), **case.reference_attrs)
        assert tuple(output.shape) == case.output
        taps = case.node_attrs["kernel_size"] ** 2
        if case.op_type == "CSA":
            attn = tensors[0].float().reshape(2, case.node_attrs["heads"], taps, taps, *case.shapes[0][2:])
            assert torch.allclose(attn.sum(dim=3), torch.ones(()), atol=1e-2)
        if case.op_type == "GhostHead":
            attn = tensors[1].float().reshape(2, case.node_attrs["heads"], taps, *case.shapes[1][2:])
            assert torch.allclose(attn.sum(dim=2), torch.ones(()), atol=1e-2)


def test_kernel_call_passes_pointers_then_int32_scalars_on_the_given_stream():
    # Proves: the script launches the kernels with the plugins' argument order (input pointers,
    # output pointer, int32 scalars) and the spec's grid, block and shared memory, inside the
    # stream it is given (torch's, so the CUDA events time it).
    import numpy as np

    from litevit.plugins.kernels import Launch

    class Tensor:
        def __init__(self, pointer):
            self.pointer = pointer

        def data_ptr(self):
            return self.pointer

    events = []

    class Stream:
        def __enter__(self):
            events.append("enter")

        def __exit__(self, *exc):
            events.append("exit")

    def function(grid, block, args, shared_mem):
        events.append((grid, block, args, shared_mem))

    launch = Launch(grid=(3, 2, 1), block=(256, 1, 1), shared_bytes=0, scalars=(8, 64))
    call = gpu_kernels.kernel_call(function, launch, [Tensor(16), Tensor(32)], Tensor(48), Stream())
    call()
    enter, (grid, block, args, shared), exit_ = events
    assert (enter, grid, block, shared, exit_) == ("enter", (3, 2, 1), (256, 1, 1), 0, "exit")
    assert [type(a) for a in args] == [np.uint64] * 3 + [np.int32] * 2
    assert [int(a) for a in args] == [16, 32, 48, 8, 64]
