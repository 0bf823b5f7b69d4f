"""CNN classifiers trained on real and/or synthetic spectrograms, scored on the real test split."""
