"""GAN data augmentation for small-data classification (music emotion recognition first)."""

__version__ = "0.1.0"
