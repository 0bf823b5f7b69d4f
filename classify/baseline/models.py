"""The classic classifiers of the baseline and their cross-validated hyper-parameter grids."""
from __future__ import annotations

from typing import Any

import numpy as np

MODELS = ("svm_linear", "svm_rbf", "knn", "random_forest", "extra_trees")


def _estimator(name: str, seed: int, trees: int) -> tuple[Any, dict[str, list]]:
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    forest_grid = {"clf__max_features": ["sqrt", 0.3], "clf__min_samples_leaf": [1, 3]}
    return {
        "svm_linear": (SVC(kernel="linear"), {"clf__C": [0.001, 0.01, 0.1, 1, 10]}),
        "svm_rbf": (SVC(kernel="rbf"), {"clf__C": [0.1, 1, 10, 100], "clf__gamma": ["scale", 0.001, 0.01, 0.1]}),
        "knn": (KNeighborsClassifier(), {"clf__n_neighbors": [1, 3, 5, 9, 15], "clf__weights": ["uniform", "distance"]}),
        "random_forest": (RandomForestClassifier(n_estimators=trees, random_state=seed), forest_grid),
        "extra_trees": (ExtraTreesClassifier(n_estimators=trees, random_state=seed), forest_grid),
    }[name]


def fit_model(name: str, X: np.ndarray, y: np.ndarray, *, seed: int = 0, folds: int = 5, trees: int = 300,
              jobs: int = 1, groups: np.ndarray | None = None) -> tuple[Any, dict[str, Any]]:
    """StandardScaler + classifier, hyper-parameters by stratified k-fold CV (macro-F1); refit on all of X.

    ``groups`` (the clip of each segment row): the folds keep a clip's segments together (StratifiedGroupKFold)."""
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    clf, grid = _estimator(name, seed, trees)
    # k-NN's n_neighbors must stay below the size of a training fold
    if name == "knn":
        limit = int(len(y) * (folds - 1) / folds)
        grid = {**grid, "clf__n_neighbors": [k for k in grid["clf__n_neighbors"] if k <= limit] or [1]}
    cv = (StratifiedKFold if groups is None else StratifiedGroupKFold)(n_splits=folds, shuffle=True, random_state=seed)
    search = GridSearchCV(Pipeline([("scale", StandardScaler()), ("clf", clf)]), grid, scoring="f1_macro", cv=cv,
                          n_jobs=jobs, refit=True)
    search.fit(X, y, groups=groups)
    params = {k.removeprefix("clf__"): v for k, v in search.best_params_.items()}
    return search.best_estimator_, {"best_params": params, "cv_macro_f1": float(search.best_score_),
                                    "cv_macro_f1_sd": float(search.cv_results_["std_test_score"][search.best_index_]),
                                    "folds": folds}


def cv_folds(y: np.ndarray, wanted: int = 5) -> int:
    """As many folds as the rarest class allows (2..wanted)."""
    smallest = int(np.bincount(y).min()) if len(y) else 0
    return max(2, min(wanted, smallest))
