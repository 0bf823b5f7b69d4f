"""StyleGAN2-ADA generator and discriminator with the reference's kwargs, call signatures and state-dict names."""
from stylegan_ada.networks.discriminator import (Discriminator, DiscriminatorBlock, DiscriminatorEpilogue,
                                                 MinibatchStdLayer)
from stylegan_ada.networks.generator import Generator
from stylegan_ada.networks.layers import Conv2dLayer, FullyConnectedLayer, modulated_conv2d, normalize_2nd_moment
from stylegan_ada.networks.mapping import MappingNetwork
from stylegan_ada.networks.synthesis import SynthesisBlock, SynthesisLayer, SynthesisNetwork, ToRGBLayer

__all__ = ["Generator", "Discriminator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock", "SynthesisLayer",
           "ToRGBLayer", "FullyConnectedLayer", "Conv2dLayer", "DiscriminatorBlock", "DiscriminatorEpilogue",
           "MinibatchStdLayer", "modulated_conv2d", "normalize_2nd_moment"]
