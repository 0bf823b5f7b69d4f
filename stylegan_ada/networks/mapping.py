"""Mapping network z (+ class label c) -> w, with the tracked average of w used for truncation."""
from __future__ import annotations

import torch

from stylegan_ada.networks.init_kwargs import records_init_kwargs
from stylegan_ada.networks.layers import FullyConnectedLayer, check_shape, keep, normalize_2nd_moment


def mapping_widths(z_dim: int, c_dim: int, w_dim: int, num_layers: int, embed_features: int | None = None,
                   layer_features: int | None = None) -> tuple[int, list[int]]:
    """(width of the label embedding, 0 if unconditional; the num_layers + 1 activation widths from input to w).

    The input is z next to the embedded label; hidden layers default to w_dim wide, and so does the embedding.
    """
    embed_width = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
    hidden = w_dim if layer_features is None else layer_features
    return embed_width, [z_dim + embed_width, *[hidden] * (num_layers - 1), w_dim]


@records_init_kwargs
class MappingNetwork(torch.nn.Module):
    """`num_layers` fully connected layers with lr multiplier; optional label embedding; w broadcast to `num_ws`."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None, activation: str = "lrelu",
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        keep(self, z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=num_layers,
             w_avg_beta=w_avg_beta)
        embed_width, widths = mapping_widths(z_dim, c_dim, w_dim, num_layers, embed_features, layer_features)
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_width)
        for idx, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
            setattr(self, f"fc{idx}", FullyConnectedLayer(width_in, width_out, activation=activation,
                                                          lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, skip_w_avg_update: bool = False) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            check_shape("mapping z", z, [None, self.z_dim])
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"mapping: this network is conditional; pass labels c of shape [N, {self.c_dim}]")
            check_shape("mapping c", c, [None, self.c_dim])
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y

        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])

        if truncation_psi != 1:
            if self.w_avg_beta is None:
                raise ValueError("mapping: truncation needs a tracked w_avg (w_avg_beta is None)")
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x
