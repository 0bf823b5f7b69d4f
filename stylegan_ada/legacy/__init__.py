"""Safe loading of reference StyleGAN2-ADA network files (PyTorch snapshot pickles and TF-era pickles).

Nothing in a file is ever imported or executed: a restricted unpickler builds plain records, and our own classes are
rebuilt from the recorded constructor kwargs.
"""
from stylegan_ada.checkpoint import NetworkLoadError
from stylegan_ada.legacy.loader import load_network_pkl
from stylegan_ada.legacy.unpickler import NETWORK_GLOBALS, UnsafePickleError, restricted_load

__all__ = ["NETWORK_GLOBALS", "NetworkLoadError", "UnsafePickleError", "load_network_pkl", "restricted_load"]
