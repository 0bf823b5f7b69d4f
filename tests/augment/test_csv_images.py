"""Image datasets as their users have them: a csv manifest of images (grey or RGB, any size) with an official
split column, kept exactly, at a size that is not a power of two (48x48 faces) for classifiers; GANs train at 64."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from augment.train_config import TrainArgs
from augment.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SPLITS = {"train": 5, "val": 2, "test": 2}


def _face(rng: np.random.Generator, ci: int, shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    stripes = np.sin((xx if ci == 0 else yy) * 0.5)
    return np.clip(80 + 60 * ci + 30 * stripes + rng.normal(0, 14, shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def face_set(tmp_path_factory):
    """48x48 grey PNGs plus, per class, one RGB JPEG of another size; manifest path,label,split (official split)."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    rows = []
    for ci, cls in enumerate(("happy", "sad")):
        for split, n in SPLITS.items():
            for k in range(n):
                name = f"img/{cls}_{split}_{k}.png"
                (root / name).parent.mkdir(exist_ok=True)
                if split == "train" and k == 0:   # an RGB JPEG of another size, as some sets mix in
                    name = name.replace(".png", ".jpg")
                    g = _face(rng, ci, (60, 40))
                    Image.fromarray(np.stack([g, g // 2, g], -1), "RGB").save(root / name, quality=95)
                else:
                    Image.fromarray(_face(rng, ci, (48, 48)), "L").save(root / name)
                rows.append((name, cls, split))
    with open(root / "faces.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "split"), *rows])
    return root, rows


@pytest.fixture(scope="module")
def face_ws(face_set, tmp_path_factory):
    from augment.cli import cli

    root, _ = face_set
    ws_root = tmp_path_factory.mktemp("ws") / "ws"
    r = CliRunner().invoke(cli, ["prepare", "--dataset", "csv", "--manifest", str(root / "faces.csv"),
                                 "--resolution", "48", "--jobs", "1", "-w", str(ws_root)])
    assert r.exit_code == 0, r.output
    return ws_root, r


def test_csv_of_images_keeps_the_given_split_exactly_at_48_px(face_set, face_ws):
    _, rows = face_set
    ws_root, result = face_ws
    assert "48 px is not a power of two" in result.stderr and "trains at 64 px" in result.stderr
    ws = Workspace.load(ws_root)
    assert ws.config["kind"] == "images" and ws.resolution == 48 and "audio_dir" not in ws.config["dataset"]["options"]
    assert {(r.source, r.cls, r.split) for r in ws.rows()} == set(rows)       # every row where the manifest put it
    assert ws.config["splits"]["test_sha256"]                                 # the test split hashed as always
    for r in ws.rows():
        with Image.open(ws.root / r.image) as im:
            assert im.size == (48, 48) and im.mode == "RGB"


def test_classifier_trains_on_the_48_px_workspace(face_ws):
    from classify.cli import cli

    ws_root, _ = face_ws
    r = CliRunner().invoke(cli, ["eval", "-w", str(ws_root), "--arch", "small_cnn", "--epochs", "1", "--seeds", "0",
                                 "--input-size", "48", "--lr", "0.05", "--quiet"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    run_dir = next(p for p in (ws_root / "results").iterdir() if p.name[:5].isdigit())
    m = json.loads((run_dir / "metrics.json").read_text())
    assert (m["n_train"], m["n_val"], m["n_test"]) == (10, 4, 4) and m["config"]["input_size"] == 48


def test_gan_training_on_it_resizes_to_the_next_power_of_two(face_ws):
    from augment.train_plan import plan_new
    from stylegan_ada.training.data import load_images

    ws = Workspace.load(face_ws[0])
    plan = plan_new(ws, TrainArgs(cls="happy", cfg="tiny", device="cpu", from_="scratch"))
    assert plan.options.G_kwargs["img_resolution"] == 64
    assert any("48 px, not a power of two" in n and "resized to 64 px" in n for n in plan.notes)
    assert tuple(load_images(plan.images[:2], 64).shape) == (2, 3, 64, 64)


def test_mixed_images_and_audio_manifest_is_one_line_error(tmp_path):
    from augment.cli import cli

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.wav").write_bytes(b"RIFF")
    (tmp_path / "m.csv").write_text("path,label\na.png,x\nb.wav,y\n")
    r = CliRunner().invoke(cli, ["prepare", "--dataset", "csv", "--manifest", str(tmp_path / "m.csv"),
                                 "-w", str(tmp_path / "ws")])
    assert r.exit_code == 2 and "lists both images (a.png) and other files (b.wav)" in r.stderr
    assert "Traceback" not in r.output
