"""The classic-ML baseline (the thesis' "Experiment X"): handcrafted audio features + scikit-learn classifiers."""
