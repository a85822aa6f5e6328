"""Detection backbones: the classifiers' blocks with multi-scale outputs, mmdet's key names.

* ``LvtFeatures``: LVT as LVT's mmdet backbone ``lvt(with_cls_head=False)``
  (``detection/mmdet/models/backbones/lvt.py``): the four stages as the ``backbone`` ModuleList
  (checkpoint keys ``backbone.backbone.{stage}...``), outputs NCHW at strides 4, 8, 16, 32; the
  ``downstream_norms`` are identities (no parameters).
* ``elsa_swin_features``: ELSA-Swin as ELSA's mmdet backbone ``ELSASwin``
  (``det/mmdet/models/backbones/elsa_swin.py``), which is the seg repository's backbone too:
  patch embedding, the four ``layers``, and a LayerNorm ``norm{i}`` on each stage's output before
  its PatchMerging. Differences from the classifier the official detector has: every odd stage-4
  block shifts its windows whatever the map size (the classifier skips the shift on maps that fit
  one window), and odd maps are zero-padded (inert here: detector inputs are multiples of 32).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from litevit.models import elsa, lvt


class LvtFeatures(nn.Module):
    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        self.backbone = lvt.build_backbone(arch)
        self.num_features = tuple(arch["embed_dims"])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [f.permute(0, 3, 1, 2) for f in lvt.run_backbone(self.backbone, x)]


def elsa_swin_features(arch: dict[str, Any]) -> elsa.ELSASwinBackbone:
    """ELSA's det backbone is the seg backbone's build (``litevit.models.elsa.ELSASwinBackbone``):
    same module names, same stage-4 shift and padding rules; the classifier's qk_scale of 1."""
    return elsa.ELSASwinBackbone(
        arch["embed_dim"],
        tuple(arch["depths"]),
        tuple(arch["num_heads"]),
        arch["group_width"],
        patch_size=arch["patch_size"],
        window_size=arch["window_size"],
        elsa_kernel=arch["elsa_kernel"],
        mlp_ratio=arch["mlp_ratio"],
        qkv_bias=arch["qkv_bias"],
        lam=arch["lam"],
        gamma=arch["gamma"],
        drop_path_rate=arch["drop_path_rate"],
    )
