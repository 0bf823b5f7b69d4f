"""Our own StyleGAN2-ADA: networks, ops (CPU reference + CUDA), augment pipe, loss, training, checkpoints, loaders."""
