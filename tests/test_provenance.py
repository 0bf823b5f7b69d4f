"""Provenance: one run-record format for every command; torch is reported only when the run imported it."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from augment.provenance import environment, run_record

PREPARE_WITHOUT_TORCH = """
import sys
from augment.cli import cli
cli.main(args=sys.argv[1:], standalone_mode=False)
print("torch imported:", "torch" in sys.modules)
"""


def test_environment_reports_torch_when_the_process_uses_it():
    import torch

    env = environment()
    assert env["torch"] == torch.__version__ and env["cuda_available"] == torch.cuda.is_available()
    assert env["python"] and env["numpy"]


def test_prepare_records_provenance_without_importing_torch(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for k in range(6):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "img" / cls / f"{k}.png")
    ws = tmp_path / "ws"
    args = ["prepare", "--dataset", "images", "--image-dir", str(tmp_path / "img"), "--test-size", "2",
            "--resolution", "8", "-j", "1", "-w", str(ws)]
    out = subprocess.run([sys.executable, "-c", PREPARE_WITHOUT_TORCH, *args], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "torch imported: False" in out.stdout  # provenance must not pull torch (~2 s) into `augment prepare`
    cfg = json.loads((ws / "augment.json").read_text())
    block = cfg["prepare"]
    expected = run_record({}, command=args)
    assert set(expected) <= set(block)  # the standard record: code version, command, seeds, environment, ...
    assert block["code_version"] == cfg["code_version"] == expected["code_version"]
    assert block["command"][-len(args):] == args and block["seeds"] == {"test": 0, "pool": 0, "val": 42}
    assert block["data_hashes"]["identity_sha256"] == block["identity_sha256"]
    assert "torch" not in block["environment"] and block["environment"]["python"]
    assert block["config"]["dataset"] == "images" and block["skipped"] == []
