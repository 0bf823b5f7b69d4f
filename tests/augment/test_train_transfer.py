"""`--from`: copy every parameter/buffer whose name and shape match, from reference and TF-era pickles."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from tests.support.paths import FIXTURES
from tests.support.training import TINY, make_ws, only_run, run_child

SOURCES = ["tiny_reference_format.pkl", "tiny_tf_format.pkl"]


def _nets(G_kwargs, D_kwargs):
    from stylegan_ada.networks import Discriminator, Generator

    G = Generator(**G_kwargs)
    return {"G": G, "D": Discriminator(**D_kwargs), "G_ema": copy.deepcopy(G)}


def _tensors(module):
    return {**dict(module.named_parameters()), **dict(module.named_buffers())}


@pytest.mark.parametrize("name", SOURCES)
def test_same_architecture_copies_everything(name):
    from stylegan_ada.training.transfer import load_source, transfer

    kw = json.loads((FIXTURES / "tiny_kwargs.json").read_text())
    source = load_source(FIXTURES / name)
    nets = _nets(kw["G"], kw["D"])
    counts = transfer(source, nets, name)
    for key, count in counts.items():
        assert count.shape_mismatch == [] and count.not_in_source == [], (key, count.describe())
        src = _tensors(source[key] if source.get(key) is not None else source["G"])
        for tname, t in _tensors(nets[key]).items():
            assert torch.equal(t, src[tname]), (key, tname)


def test_other_widths_copy_only_matching_shapes_and_count_the_rest():
    from stylegan_ada.training.transfer import load_source, transfer

    source = load_source(FIXTURES / "tiny_reference_format.pkl")
    kw = json.loads((FIXTURES / "tiny_kwargs.json").read_text())
    kw["G"]["synthesis_kwargs"]["channel_max"] = kw["D"]["channel_max"] = 16  # the fixture's is 32
    nets = _nets(kw["G"], kw["D"])
    before = {k: {n: t.clone() for n, t in _tensors(m).items()} for k, m in nets.items()}
    counts = transfer(source, nets, "fixture")
    for key, module in nets.items():
        src = _tensors(source[key])
        same = [n for n, t in _tensors(module).items() if n in src and src[n].shape == t.shape]
        differ = [n for n, t in _tensors(module).items() if n in src and src[n].shape != t.shape]
        assert counts[key].copied == len(same) and sorted(counts[key].shape_mismatch) == sorted(differ)
        assert counts[key].copied > 0 and differ  # some of each, so both paths are exercised
        for n, t in _tensors(module).items():
            assert torch.equal(t, src[n] if n in same else before[key][n]), n


def test_train_from_a_reference_pickle_logs_the_transfer(tmp_path):
    ws = make_ws(tmp_path / "ws", resolution=32)
    code, out = run_child(["train", "-w", str(ws.root), "--class", "a", *TINY, "--kimg", "0.004",
                           "--from", str(FIXTURES / "tiny_reference_format.pkl")], tmp_path / "out.txt")
    assert code == 0, out
    log = (only_run(ws.root) / "log.txt").read_text()
    assert "Transfer G from tiny_reference_format.pkl:" in log and "shape differs" in log
    cfg = json.loads((only_run(ws.root) / "config.json").read_text())
    assert cfg["config"]["training"]["ada_kimg"] == 100 and cfg["config"]["training"]["ema_rampup"] is None
