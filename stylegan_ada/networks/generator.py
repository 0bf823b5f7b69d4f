"""Generator = mapping network + synthesis network (the reference's constructor kwargs and call signature)."""
from __future__ import annotations

import torch

from stylegan_ada.networks.init_kwargs import records_init_kwargs
from stylegan_ada.networks.layers import keep
from stylegan_ada.networks.mapping import MappingNetwork
from stylegan_ada.networks.synthesis import SynthesisNetwork


@records_init_kwargs
class Generator(torch.nn.Module):
    """z [N, z_dim] (+ c [N, c_dim]) -> image [N, img_channels, img_resolution, img_resolution] in about [-1, 1]."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int, img_channels: int,
                 mapping_kwargs: dict | None = None, synthesis_kwargs: dict | None = None):
        super().__init__()
        image = dict(img_resolution=img_resolution, img_channels=img_channels)
        keep(self, z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, **image)
        # Built first: the synthesis network decides how many w vectors the mapping network broadcasts to.
        self.synthesis = SynthesisNetwork(w_dim=w_dim, **image, **(synthesis_kwargs or {}))
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **(mapping_kwargs or {}))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)
