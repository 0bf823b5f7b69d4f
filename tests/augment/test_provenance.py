"""Provenance: one run-record format for every command; torch is reported only when the run imported it."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from augment.provenance import environment
from tests.support.paths import REPO

PREPARE_WITHOUT_TORCH = """
import sys
from augment.cli import cli
cli.main(args=sys.argv[1:], standalone_mode=False)
print("torch imported:", "torch" in sys.modules)
"""


def test_environment_reports_torch_when_the_process_uses_it():
    import platform

    import numpy
    import torch

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        env = environment()
    finally:
        torch.set_num_threads(threads)
    assert env["torch"] == torch.__version__ and env["cuda_available"] == torch.cuda.is_available()
    assert env["torch_threads"] == 1
    assert env["python"] == platform.python_version() and env["numpy"] == numpy.__version__


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_code_version_is_the_package_version_and_the_git_commit(tmp_path, monkeypatch):
    from importlib.metadata import version

    from augment import provenance

    repo = tmp_path / "checkout"
    repo.mkdir()
    monkeypatch.setattr(provenance, "_REPO_ROOT", repo)
    provenance.code_version.cache_clear()
    try:
        assert provenance.code_version() == version("augment-mer")  # not a git checkout: the version alone
        _git(repo, "init", "-q")
        (repo / "f.txt").write_text("one")
        _git(repo, "add", "f.txt")
        _git(repo, "commit", "-q", "-m", "x")
        head = _git(repo, "rev-parse", "HEAD")
        provenance.code_version.cache_clear()
        assert provenance.code_version() == f"{version('augment-mer')}+g{head[:12]}"
        (repo / "f.txt").write_text("two")  # uncommitted change: the record must say so
        provenance.code_version.cache_clear()
        assert provenance.code_version() == f"{version('augment-mer')}+g{head[:12]}-dirty"
    finally:
        provenance.code_version.cache_clear()


def _head() -> str:
    """The checkout's commit (12 hex digits), or the package version when the tests do not run from a checkout."""
    from importlib.metadata import version

    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip()[:12] if out.returncode == 0 else version("augment-mer")


def test_prepare_records_provenance_without_importing_torch(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for k in range(6):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "img" / cls / f"{k}.png")
    ws = tmp_path / "ws"
    args = ["prepare", "--dataset", "images", "--image-dir", str(tmp_path / "img"), "--test-size", "2",
            "--resolution", "8", "-j", "1", "-w", str(ws)]
    heads = {_head()}
    out = subprocess.run([sys.executable, "-c", PREPARE_WITHOUT_TORCH, *args], capture_output=True, text=True,
                         timeout=120)
    heads.add(_head())  # someone may commit meanwhile
    assert out.returncode == 0, out.stderr
    assert "torch imported: False" in out.stdout  # provenance must not pull torch (~2 s) into `augment prepare`
    cfg = json.loads((ws / "augment.json").read_text())
    block = cfg["prepare"]
    assert {"code_version", "command", "cwd", "seeds", "environment", "config", "data_hashes", "created"} <= set(block)
    assert block["code_version"] == cfg["code_version"]
    assert block["code_version"].split("+g")[-1].removesuffix("-dirty") in heads  # the checkout's commit
    assert block["command"][-len(args):] == args and block["seeds"] == {"test": 0, "pool": 0, "val": 42}
    assert block["data_hashes"]["identity_sha256"] == block["identity_sha256"]
    assert "torch" not in block["environment"] and block["environment"]["python"]
    assert block["config"]["dataset"] == "images" and block["skipped"] == []
