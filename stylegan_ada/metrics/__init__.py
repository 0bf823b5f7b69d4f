"""FID and KID with pluggable feature extractors (Inception-v3 when its weights are local, else EfficientNet-Lite0).

See docs/metrics.md for what the numbers mean and how they compare with published FIDs.
"""
from stylegan_ada.metrics.evaluate import evaluate_generator, extract_features, images_to_uint8, real_features
from stylegan_ada.metrics.extractors import (EXTRACTOR_NAMES, EfficientNetLite0Extractor, FeatureExtractor,
                                             InceptionExtractor, find_weights, get_feature_extractor)
from stylegan_ada.metrics.fid_kid import compute_fid_kid, feature_statistics, frechet_distance, kernel_distance

__all__ = ["evaluate_generator", "extract_features", "images_to_uint8", "real_features", "EXTRACTOR_NAMES",
           "EfficientNetLite0Extractor", "FeatureExtractor", "InceptionExtractor", "find_weights",
           "get_feature_extractor", "compute_fid_kid", "feature_statistics", "frechet_distance", "kernel_distance"]
