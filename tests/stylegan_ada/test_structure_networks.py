"""The small helpers the network constructors are built from: feature widths, activation gains, frozen tensors."""
from __future__ import annotations

import math

import pytest
import torch

from stylegan_ada.networks import MappingNetwork
from stylegan_ada.networks.layers import activation_gain, add_tensor, conv_weight
from stylegan_ada.networks.mapping import mapping_widths


@pytest.mark.parametrize("args, expected", [
    # (z_dim, c_dim, w_dim, num_layers, embed_features, layer_features) -> (embed width, activation widths)
    ((512, 0, 512, 8, None, None), (0, [512] * 9)),
    ((512, 0, 512, 2, 64, 128), (0, [512, 128, 512])),  # unconditional: no embedding whatever embed_features says
    ((16, 3, 32, 2, None, None), (32, [48, 32, 32])),  # the embedding defaults to w_dim and sits next to z
    ((0, 5, 8, 3, 4, 6), (4, [4, 6, 6, 8])),  # the discriminator's label mapping: no z at all
    ((16, 3, 32, 1, None, 7), (32, [48, 32])),  # one layer: no hidden width used
])
def test_mapping_widths(args, expected):
    assert mapping_widths(*args) == expected


def test_mapping_network_layers_have_the_resolved_widths():
    net = MappingNetwork(z_dim=16, c_dim=3, w_dim=32, num_ws=4, num_layers=3, layer_features=24)
    shapes = {name: tuple(p.shape) for name, p in net.named_parameters() if name.endswith("weight")}
    assert shapes == {"embed.weight": (32, 3), "fc0.weight": (24, 48), "fc1.weight": (24, 24),
                      "fc2.weight": (32, 24)}


def test_activation_gain_and_unknown_activation():
    assert activation_gain("lrelu") == pytest.approx(math.sqrt(2))
    assert activation_gain("linear") == 1
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        activation_gain("gelu")


def test_add_tensor_keeps_the_name_as_parameter_or_buffer():
    trained, frozen = torch.nn.Module(), torch.nn.Module()
    for module, trainable in ((trained, True), (frozen, False)):
        add_tensor(module, "weight", torch.ones(2), trainable)
        add_tensor(module, "bias", None, trainable)
        assert list(module.state_dict()) == ["weight"] and module.bias is None
    assert [n for n, _ in trained.named_parameters()] == ["weight"] and not list(trained.buffers())
    assert [n for n, _ in frozen.named_buffers()] == ["weight"] and not list(frozen.parameters())


def test_conv_weight_layout():
    assert conv_weight(4, 3, 3).is_contiguous()
    w = conv_weight(4, 3, 3, channels_last=True)
    assert w.shape == (4, 3, 3, 3) and w.is_contiguous(memory_format=torch.channels_last)
