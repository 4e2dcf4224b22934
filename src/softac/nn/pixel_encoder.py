"""The encoder of an observation with an image key: the DrQ-v2 convolutions on the frame stack
(``softac.nn.encoders.BatchedConvEncoder``), the vector keys' columns beside its features.

    row [ vector (dim) | K frames ] → [ conv(frames) (image_features) | vector (dim) ]

The vector keys reach the actor's and the critics' MLPs as columns, as SB3's ``CombinedExtractor``
passes its vector keys (flattened): those MLPs are the vector keys' encoder. It is shared by the
actor and the critics and trained by the critic loss alone (SAC-AE, DrQ; ``softac.nn.encoder``
says why), with the interface of the user's stacked encoder: ``params()``, ``features``, and
``forward(rows, params)``. Built from the learners' generators before any other network.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from softac.nn.encoders import BatchedConvEncoder
from softac.pixels import PixelSpec


class PixelEncoder(nn.Module):
    builtin = True  # softac's own: a checkpoint names no class for it (``softac.nn.encoder.encoder_record``)
    cls_name = "PixelEncoder"

    def __init__(self, learners: int, pixels: PixelSpec, features: int, generators: Sequence[torch.Generator]) -> None:
        super().__init__()
        self.pixels = pixels
        self.conv = BatchedConvEncoder(learners, pixels.stacked_chw, features)
        self.conv.reset_parameters(generators)
        self.features = features + pixels.dim

    def params(self) -> list[Tensor]:
        return self.conv.params()

    def forward(self, rows: Tensor, params: list[Tensor] | None = None) -> Tensor:
        vec, images = self.pixels.unpack(rows)
        feats = self.conv(images, params)
        return torch.cat([feats, vec], dim=-1) if self.pixels.dim else feats
