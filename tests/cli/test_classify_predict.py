"""`classify predict`: a saved classifier scores images and audio as `classify eval` scored the workspace's test
items (the run's predictions.csv is the truth), audio rendered to the very bytes `augment prepare` wrote, and a
broken, truncated or hostile model file gives one `error:` line."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load, save

from augment.workspace import Workspace
from classify.cli import cli
from classify.predict import render
from classify.saved_model import load_saved
from tests.support.workspaces import make_image_workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = ["--arch", "small_cnn", "--seeds", "0", "--epochs", "1", "--input-size", "16", "--lr", "0.05", "--quiet"]


def _train(root: Path) -> Path:
    res = CliRunner().invoke(cli, ["eval", "--workspace", str(root), *FAST])
    assert res.exit_code == 0, res.output
    (run,) = [p for p in (root / "results").iterdir() if p.name[:5].isdigit()]
    return run


def _predict(*args: str | Path):
    return CliRunner().invoke(cli, ["predict", *[str(a) for a in args]])


def _eval_test_probs(run: Path) -> dict[str, list[float]]:
    with open(run / "predictions.csv") as f:
        return {r["image"]: [float(v) for k, v in r.items() if k.startswith("p_")]
                for r in csv.DictReader(f) if r["split"] == "test"}


def _printed(output: str) -> list[list[float]]:
    return [[float(v) for v in r[2:]] for r in list(csv.reader(io.StringIO(output)))[1:]]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory) -> tuple[Workspace, Path]:
    ws = make_image_workspace(tmp_path_factory.mktemp("pred") / "ws", resolution=16,
                              counts={"train": 4, "val": 2, "test": 2})
    return ws, _train(ws.root)


def test_predict_images_as_eval_scored_them(image_run):
    ws, run = image_run
    expected = _eval_test_probs(run)
    images = sorted(expected)
    res = _predict("--model", run, *[ws.root / i for i in images])
    assert res.exit_code == 0, res.output
    header = res.stdout.splitlines()[0]
    assert header == "file,pred,p_a,p_b,p_c"
    assert res.stderr.splitlines()[-1] == f"{len(images)} file(s) scored by small_cnn {run} (classes a, b, c)"
    for got, image in zip(_printed(res.stdout), images):
        assert got == pytest.approx(expected[image], abs=2e-5), image
    res = _predict("--model", run / "model.json", "--json", ws.root / images[0])
    (row,) = json.loads(res.stdout)
    assert list(row["probabilities"].values()) == pytest.approx(expected[images[0]], abs=1e-5)
    assert row["pred"] == max(row["probabilities"], key=row["probabilities"].get)


@pytest.mark.parametrize("segments", [1, 2])
def test_predict_audio_through_the_recorded_mel_mapping(tmp_path, audio_folder, augment_cli, segments):
    """Each clip (1 s) gives exactly the PNG(s) prepare wrote for it; with 2 segments of 0.5 s the answer is the mean
    of the segments' probabilities, as eval scores a clip."""
    audio = audio_folder({"a": 6, "b": 6}, seconds=1.0)
    root = tmp_path / "ws"
    r = augment_cli("prepare", "--dataset", "folder", "--audio-dir", audio, "--test-size", "2", "--duration", "0.5",
                    "--segments", segments, "--resolution", "16", "-j", "1", "-w", root)
    assert r.exit_code == 0, r.output
    ws = Workspace.load(root)
    run = _train(root)
    saved = load_saved(run)
    tests: dict[str, list] = {}
    for row in sorted((r for r in ws.rows() if r.split == "test"), key=lambda r: r.image):
        tests.setdefault(row.source, []).append(row)
    assert {len(rows) for rows in tests.values()} == {segments}
    clips = [audio / source for source in tests]
    for clip, rows in zip(clips, tests.values()):
        assert [hashlib.sha256(png).hexdigest() for png in render(clip, saved)] == [t.image_sha256 for t in rows]
    res = _predict("--model", run, *clips)
    assert res.exit_code == 0, res.output
    expected = _eval_test_probs(run)
    for got, rows in zip(_printed(res.stdout), tests.values()):
        mean = [sum(col) / len(rows) for col in zip(*(expected[t.image] for t in rows))]
        assert got == pytest.approx(mean, abs=2e-5)


def test_audio_for_an_images_model_is_refused(image_run, tmp_path, write_wav):
    _, run = image_run
    res = _predict("--model", run, write_wav(tmp_path / "x.wav"))
    assert res.exit_code == 2 and res.output.startswith("error:") and "images workspace" in res.output


def _an_image(run: Path) -> Path:
    return run.parents[1] / sorted(_eval_test_probs(run))[0]


def _weights_with_header(header: bytes, payload: bytes = b"") -> bytes:
    return len(header).to_bytes(8, "little") + header + payload


def _bad_weights(kind: str, weights: bytes) -> bytes:
    if kind == "truncated":
        return weights[: len(weights) // 2]
    if kind == "flipped":
        return weights[:-1] + bytes([weights[-1] ^ 1])
    if kind == "garbage-header":
        return _weights_with_header(b"{" + b"x" * 40)
    if kind == "huge-header-length":
        return (1 << 62).to_bytes(8, "little") + b"{}"
    if kind == "wrong-shapes":
        return save({"classifier.1.weight": torch.zeros(7, 7)})
    if kind == "offsets-beyond-the-file":     # a 4 GB tensor claimed by an 8-byte payload
        spec = {"classifier.1.weight": {"dtype": "F32", "shape": [10 ** 9], "data_offsets": [0, 4 * 10 ** 9]}}
        return _weights_with_header(json.dumps(spec).encode(), b"\0" * 8)
    if kind == "wrong-dtype":
        return save({k: v.double() if v.is_floating_point() else v for k, v in load(weights).items()})
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, reason", [
    ("truncated", "truncated"), ("flipped", "does not match the sha256"),
    ("garbage-header", "not readable safetensors"), ("huge-header-length", "not readable safetensors"),
    ("offsets-beyond-the-file", "not readable safetensors"), ("wrong-shapes", "tensor(s) missing"),
    ("wrong-dtype", "the network expects torch.float32"),
])
def test_bad_weights_give_one_error_line(image_run, tmp_path, kind, reason):
    _, run = image_run
    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    data = _bad_weights(kind, (run / "model.safetensors").read_bytes())
    (bad / "model.safetensors").write_bytes(data)
    if kind not in ("truncated", "flipped"):      # a consistent forgery: the recorded size and hash fit the file
        cfg = json.loads((bad / "model.json").read_text())
        cfg.update(weights_bytes=len(data), weights_sha256=hashlib.sha256(data).hexdigest())
        (bad / "model.json").write_text(json.dumps(cfg))
    res = _predict("--model", bad, _an_image(run))            # a good input: only the model can be at fault
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert reason in lines[0], lines[0]


@pytest.mark.parametrize("edit, reason", [
    (lambda cfg: "{not json", "not valid JSON"),
    (lambda cfg: "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    (lambda cfg: json.dumps({**cfg, "arch": "__import__('os').system"}), "unknown architecture"),
    (lambda cfg: json.dumps({**cfg, "classes": "abc"}), "'classes'"),
    (lambda cfg: json.dumps({**cfg, "input_size": 10 ** 9}), "'input_size'"),
    (lambda cfg: json.dumps({**cfg, "weights_bytes": 1 << 40}), "'weights_bytes'"),
    (lambda cfg: json.dumps({**cfg, "workspace": {"kind": "audio"}}), "'workspace'"),
    (lambda cfg: json.dumps({**cfg, "normalisation": {"mean": [0, 0, 0], "std": [0, 1, 1]}}), "'normalisation'"),
    (lambda cfg: json.dumps({k: v for k, v in cfg.items() if k != "training_sha256"}), "'training_sha256'"),
], ids=["not-json", "deep", "arch", "classes", "input-size", "weights-bytes", "workspace", "std", "no-hashes"])
def test_bad_config_gives_one_error_line(image_run, tmp_path, edit, reason):
    _, run = image_run
    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    (bad / "model.json").write_text(edit(json.loads((run / "model.json").read_text())))
    res = _predict("--model", bad, _an_image(run))            # a good input: only the model can be at fault
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert reason in lines[0], lines[0]


def test_missing_model_or_input_file(image_run, tmp_path):
    _, run = image_run
    res = _predict("--model", tmp_path, run / "predictions.csv")
    assert res.exit_code == 2 and "no saved classifier" in res.output
    res = _predict("--model", run, tmp_path / "nothing.png")
    assert res.exit_code == 2 and "no such file" in res.output
    res = _predict("--model", run, "--quiet", run / "predictions.csv")     # not an image
    assert res.exit_code == 2 and res.output.startswith("error:") and "unreadable or corrupt image" in res.output
