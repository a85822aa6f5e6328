"""Detection backbones: the classifiers' blocks with multi-scale outputs, mmdet's key names.

* ``LvtFeatures``: LVT as LVT's mmdet backbone ``lvt(with_cls_head=False)``
  (``detection/mmdet/models/backbones/lvt.py``): the four stages as the ``backbone`` ModuleList
  (checkpoint keys ``backbone.backbone.{stage}...``), outputs NCHW at strides 4, 8, 16, 32; the
  ``downstream_norms`` are identities (no parameters).
* ``ElsaSwinFeatures``: ELSA-Swin as ELSA's mmdet backbone ``ELSASwin``
  (``det/mmdet/models/backbones/elsa_swin.py``): patch embedding, the four ``layers``, and a
  LayerNorm ``norm{i}`` on each stage's output before its PatchMerging. Differences from the
  classifier the official detector has: every odd stage-4 block shifts its windows whatever the
  map size (the classifier skips the shift on maps that fit one window), and the stage-4 map is
  padded to multiples of the window (as ``litevit.models.elsa`` always does).
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
        self.out_channels = tuple(arch["embed_dims"])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [f.permute(0, 3, 1, 2) for f in lvt.run_backbone(self.backbone, x)]


class ElsaSwinFeatures(nn.Module):
    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        embed_dim, depths = arch["embed_dim"], tuple(arch["depths"])
        self.patch_embed = elsa.PatchEmbed(arch["patch_size"], 3, embed_dim)
        self.layers = elsa.build_stages(
            embed_dim,
            depths,
            tuple(arch["num_heads"]),
            group_width=arch["group_width"],
            window_size=arch["window_size"],
            elsa_kernel=arch["elsa_kernel"],
            mlp_ratio=arch["mlp_ratio"],
            qkv_bias=arch["qkv_bias"],
            qk_scale=arch["qk_scale"],
            lam=arch["lam"],
            gamma=arch["gamma"],
            drop_rate=0.0,
            attn_drop_rate=0.0,
            drop_path_rate=arch["drop_path_rate"],
            shift_small_maps=True,
        )
        self.out_channels = tuple(embed_dim * 2**i for i in range(len(depths)))
        for i, channels in enumerate(self.out_channels):
            self.add_module(f"norm{i}", nn.LayerNorm(channels))
        # Official init: ELSASwin.init_weights (timm-style trunc-normal Linear, LayerNorm 1/0).
        self.apply(elsa._init_weights)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        outputs = []
        for i, stage in enumerate(self.layers):
            assert isinstance(stage, elsa.Stage)
            for block in stage.blocks:
                x = block(x)
            outputs.append(getattr(self, f"norm{i}")(x).permute(0, 3, 1, 2))
            if stage.downsample is not None:
                x = stage.downsample(x)
        return outputs
