"""Building blocks of ADA (adaptive discriminator augmentation): transform matrices, wavelet filters, p controller.

The pipeline itself is :class:`stylegan_ada.augment_pipe.AugmentPipe`.
"""
from stylegan_ada.ada.controller import AdaController

__all__ = ["AdaController"]
