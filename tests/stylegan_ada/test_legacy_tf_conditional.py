"""Conditional networks in the TF-era format (fixture tiny_tf_format_cond.pkl, written in the TF layout and checked
with the reference converter): they load into our modules and reproduce the reference's conditional outputs.

This pins the label-embedding and D-mapping variable names and the conditional kwargs (label_size, mapping_layers,
mapping_fmaps -> cmap_dim, mapping_lrmul) against a file we did not write ourselves.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import stylegan_ada
from tests.support.paths import FIXTURES
from stylegan_ada.legacy import tf_convert
from stylegan_ada.legacy.unpickler import restricted_load

COND_PKL = FIXTURES / "tiny_tf_format_cond.pkl"


@pytest.fixture(scope="module")
def nets() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "tiny_nets.npz") as f:
        return dict(f)


def test_conditional_tf_variables_convert_to_the_reference_state_exactly(nets):
    tf_G, tf_D, tf_Gs = restricted_load(open(COND_PKL, "rb"))
    for net, ref, what in ((tf_G, "Gc", "generator"), (tf_Gs, "Gc", "generator"), (tf_D, "Dc", "discriminator")):
        expected = {k[len(ref) + 1:]: v for k, v in nets.items() if k.startswith(ref + ".")}
        state = tf_convert.convert_state(tf_convert.collect_tf_params(net), list(expected), what)
        wanted = {k for k in expected if not k.endswith("resample_filter")}  # fixed buffers, not stored by TF
        assert set(state) == wanted, what
        for k in wanted:
            assert np.array_equal(np.asarray(state[k]), expected[k]), (what, k)


def test_conditional_tf_pickle_reproduces_reference_outputs(nets):
    kwargs = json.loads((FIXTURES / "tiny_kwargs.json").read_text())
    with np.load(FIXTURES / "tiny_io.npz") as f:
        io_ref = dict(f)
    data = stylegan_ada.load_network_pkl(COND_PKL)
    G, D = data["G_ema"], data["D"]
    assert G.c_dim == kwargs["Gc"]["c_dim"] == 3 and D.c_dim == kwargs["Dc"]["c_dim"]
    assert D.init_kwargs["cmap_dim"] == nets["Dc.b4.out.weight"].shape[0]  # label-mapping width of the reference D
    z, c = torch.from_numpy(io_ref["z"]), torch.from_numpy(io_ref["c"])
    with torch.no_grad():
        ws = G.mapping(z, c)
        img = G.synthesis(ws, noise_mode="const")
        logits = D(torch.from_numpy(io_ref["imgc"]), c)
    for name, value in (("wsc", ws), ("imgc", img), ("logitsc", logits)):
        diff = float((value - torch.from_numpy(io_ref[name])).abs().max())
        assert diff <= 1e-4, (name, diff)

