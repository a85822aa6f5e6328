"""Small building blocks shared by several model families."""

from __future__ import annotations

import torch
from torch import nn

from litevit.errors import InputSizeError
from litevit.models._registry import ModelCfg


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval mode and when ``p == 0``)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """Linear -> activation -> Linear, the transformer FFN (timm ``Mlp`` key names)."""

    def __init__(
        self,
        dim: int,
        hidden_dim: int,
        out_dim: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_dim, out_dim or dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def expand_to_batch(weight: torch.Tensor, batch: int) -> torch.Tensor:
    """Learned tokens or queries ``(N, D)`` as a ``(batch, N, D)`` view, to feed the blocks.

    Without grad mode (``torch.no_grad``) the view is taken of ``weight.detach()``. A view of a
    parameter made under ``no_grad`` still reports ``requires_grad=True`` but has no autograd
    node, and torch's module tracker (inside ``FlopCounterMode``) registers a backward hook on
    every module input that requires grad and fails on it ("Expected gradient function to be
    set"). Detaching changes nothing else: without grad mode there is no backward to reach the
    weight, and the view costs no copy either way.
    """
    source = weight if torch.is_grad_enabled() else weight.detach()
    return source.unsqueeze(0).expand(batch, -1, -1)


def _is_tracing() -> bool:
    return bool(torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export())


def check_input(x: torch.Tensor, cfg: ModelCfg) -> None:
    """Refuse an input the model cannot take with one sentence naming the constraint.

    Skipped while tracing/exporting, where shapes may be symbolic (export validates sizes
    through the model's cfg before tracing).
    """
    if _is_tracing():
        return
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputSizeError(
            f"{cfg.name} takes a (batch, 3, height, width) image tensor; got shape {tuple(x.shape)}."
        )
    cfg.check_img_size(x.shape[-2:])
