"""`augment verify`: every snapshot file of a run checked (checksums, metadata fields, state <-> network link)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from augment.cli import cli
from tests.support.networks import tiny_networks
from stylegan_ada.checkpoint import save_snapshot
from stylegan_ada.training import run_dir as rd
from stylegan_ada.training.snapshots import save_state
from tests.stylegan_ada.test_resume_state import full_state


@pytest.fixture(scope="module")
def nets():
    return tiny_networks()


def _pair(run, tag, nets, **extra):
    net = rd.network_path(run, tag)
    save_snapshot(net, **nets, extra={"cur_nimg": rd.tag_nimg(tag), **extra})
    save_state(run, tag, net, full_state(rd.tag_nimg(tag)))


def _verify(target, ok=True):
    res = CliRunner().invoke(cli, ["verify", "-q", str(target)])
    assert res.exit_code == (0 if ok else 2), (res.output, res.exception)
    return res.output.strip().splitlines()


def test_a_good_run_lists_every_file_and_a_summary(tmp_path, nets):
    run = tmp_path / "runs" / "a" / "00000-tiny"
    run.mkdir(parents=True)
    for tag in ("000000", "000004"):
        _pair(run, tag, nets)
    lines = _verify(run)
    assert [line.split()[:2] for line in lines[:4]] == [
        ["ok", "network-snapshot-000000.safetensors:"], ["ok", "network-snapshot-000004.safetensors:"],
        ["ok", "training-state-000000.pt:"], ["ok", "training-state-000004.pt:"]]
    assert "G, D, G_ema; 4.000 kimg" in lines[1] and "pairs with network-snapshot-000004.safetensors" in lines[3]
    assert lines[4] == "verified 4 file(s) in 1 run(s): 4 ok, 0 damaged"
    other = tmp_path / "runs" / "b" / "00003-tiny"
    other.mkdir(parents=True)
    _pair(other, "000008", nets)
    lines = _verify(tmp_path)  # a workspace: every run below it
    assert lines[-1] == "verified 6 file(s) in 2 run(s): 6 ok, 0 damaged"
    assert any(line.startswith("ok       runs/b/00003-tiny/training-state-000008.pt:") for line in lines)


def test_damage_is_named_per_file_and_fails_with_one_error_line(tmp_path, nets):
    _pair(tmp_path, "000000", nets)
    _pair(tmp_path, "000004", nets)
    net = rd.network_path(tmp_path, "000004")
    data = bytearray(net.read_bytes())
    data[-10] ^= 0x01  # one bit of one weight
    net.write_bytes(bytes(data))
    lines = _verify(tmp_path, ok=False)
    by_name = {line.split()[1].rstrip(":"): line for line in lines[:4]}
    assert by_name["network-snapshot-000004.safetensors"].startswith("DAMAGED")
    assert "payload checksum" in by_name["network-snapshot-000004.safetensors"]
    assert by_name["training-state-000004.pt"].startswith("DAMAGED") and "sha256 differs" in \
        by_name["training-state-000004.pt"]
    assert by_name["network-snapshot-000000.safetensors"].startswith("ok")
    assert by_name["training-state-000000.pt"].startswith("ok")
    assert lines[4] == "verified 4 file(s) in 1 run(s): 2 ok, 2 damaged"
    assert lines[5].startswith("error: damaged snapshot file network-snapshot-000004.safetensors") and len(lines) == 6


def test_metadata_of_the_wrong_type_is_damage_even_with_good_checksums(tmp_path, nets):
    path = tmp_path / "network-snapshot-000004.safetensors"
    save_snapshot(path, **nets, extra=[4000])  # checksums written over a malformed field
    lines = _verify(path, ok=False)
    assert lines[0].startswith("DAMAGED  network-snapshot-000004.safetensors:") and "'extra' must be" in lines[0]


def test_a_state_alone_is_damaged_and_a_folder_without_snapshots_is_refused(tmp_path, nets):
    _pair(tmp_path, "000004", nets)
    rd.network_path(tmp_path, "000004").unlink()
    lines = _verify(rd.state_path(tmp_path, "000004"), ok=False)
    assert lines[0].startswith("DAMAGED") and "network-snapshot-000004.safetensors is missing" in lines[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    lines = _verify(empty, ok=False)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "holds no network-snapshot" in lines[0]
    (empty / "G.pkl").write_bytes(b"\x80\x04N.")
    lines = _verify(empty / "G.pkl", ok=False)
    assert len(lines) == 1 and lines[0].startswith("error: G.pkl is not one of our snapshot files")
