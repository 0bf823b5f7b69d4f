"""Short real runs: metrics at a snapshot, a class-conditional model, an unlabeled --extra-images run."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.support.memory import mmapped_bytes_holding
from tests.support.threads import one_torch_thread
from tests.support.training import TINY, make_ws, only_run, run_child


def test_metrics_are_evaluated_at_snapshots_logged_and_kept_in_the_state(tmp_path, monkeypatch):
    import stylegan_ada.metrics.evaluate as evaluate
    from stylegan_ada import presets
    from stylegan_ada.training import training_loop as tl
    from stylegan_ada.training.data import ImageSet
    from stylegan_ada.training.options import TrainingOptions
    from stylegan_ada.training.stats import read_jsonl

    p = presets.resolve("tiny", 16, batch=4)
    opts = TrainingOptions(G_kwargs=p["G_kwargs"], D_kwargs=p["D_kwargs"], G_opt_kwargs=p["G_opt_kwargs"],
                           D_opt_kwargs=p["D_opt_kwargs"], batch=4, batch_gpu=4, total_kimg=0.004,
                           kimg_per_tick=0.004, snap=1, image_snap=1, metrics="kid", metrics_num_gen=8, keep=1)
    from stylegan_ada.checkpoint import load_snapshot
    from stylegan_ada.metrics import get_feature_extractor, kernel_distance

    images = torch.randint(0, 256, [6, 3, 16, 16], dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    ext = get_feature_extractor("auto")  # the offline EfficientNet-Lite0, as training uses it
    monkeypatch.setattr(type(ext), "input_resolution", 64)  # the same network on smaller inputs: faster
    lines = []
    with one_torch_thread():
        result = tl.run(opts, tmp_path, tl.RunInputs(ImageSet(images, torch.zeros([6, 0])), {}),
                        show_progress=False, log=lines.append)
    assert result.status == "done" and result.cur_nimg == 4
    (record,) = read_jsonl(tmp_path / "stats.jsonl")
    m = record["metrics"]
    assert (m["num_gen"], m["tag"], m["extractor"]) == (8, "000000", ext.name)
    assert record["snapshot"] == "network-snapshot-000000.safetensors"
    # the KID is that of the saved snapshot's G_ema (8 fakes from the run's seed) against the 6 training images,
    # recomputed from the file (the FID, from the same features, costs a 1280-d matrix square root: not repeated)
    G_ema = load_snapshot(tmp_path / record["snapshot"])["G_ema"].eval()
    fakes = evaluate.generated_features(G_ema, ext, num_gen=8, batch=16, device="cpu", seed=opts.seed)
    reals = evaluate.real_features(ext, images)
    assert reals.shape[0] == 6 and m["kid"] == pytest.approx(kernel_distance(reals, fakes), rel=1e-6)
    assert m["fid"] > 0
    assert any(line.startswith("Metrics: ") for line in lines)
    from stylegan_ada.training.state import load_training_state

    assert load_training_state(tmp_path / "training-state-000000.pt")["metric_history"] == [m]


def test_conditional_model_learns_every_class_and_records_their_names(tmp_path):
    from stylegan_ada.checkpoint import load_snapshot
    from stylegan_ada.training.run_dir import network_path, network_tags

    ws = make_ws(tmp_path / "ws")
    code, out = run_child(["train", "-w", str(ws.root), "--cond", *TINY, "--kimg", "0.004"], tmp_path / "out.txt")
    assert code == 0, out
    run_dir = only_run(ws.root, "_conditional")
    snap = load_snapshot(network_path(run_dir, network_tags(run_dir)[-1]))
    assert snap["G"].c_dim == 2 and snap["D"].c_dim == 2
    assert snap["training_set_kwargs"]["class_names"] == ["a", "b"] and snap["training_set_kwargs"]["cond"]
    record = json.loads((run_dir / "config.json").read_text())
    assert record["seeds"] == {"seed": 0} and record["code_version"] and record["environment"]["torch"]
    assert record["data_hashes"]["num_images"] == 10 and len(record["data_hashes"]["training_images_sha256"]) == 64


def test_extra_images_alone_train_an_unlabeled_model(tmp_path):
    ws = make_ws(tmp_path / "ws")
    pool = tmp_path / "pool"
    pool.mkdir()
    for i, path in enumerate(ws.images(["train"], "b")):
        shutil.copy(path, pool / f"{i}.png")
    code, out = run_child(["train", "-w", str(ws.root), "--extra-images", str(pool), *TINY, "--kimg", "0.004"],
                          tmp_path / "out.txt")
    assert code == 0, out
    run_dir = only_run(ws.root, "_extra")
    cfg = json.loads((run_dir / "config.json").read_text())["config"]
    assert cfg["num_images"] == 4 and cfg["training_set"]["class"] is None
    assert "Training to 0.004 kimg: 8 images" in (run_dir / "log.txt").read_text()  # 4 + mirrored copies


@pytest.mark.parametrize("flag", ["--cond", "--class"])
def test_resume_finds_the_right_runs_folder(tmp_path, flag):
    from augment.train_config import TrainArgs
    from augment.train_inputs import EXTRA_RUNS, runs_root
    from augment.workspace import Workspace

    ws = Workspace.load(make_ws(tmp_path / "ws").root)
    args = TrainArgs(cond=flag == "--cond", cls="a" if flag == "--class" else None)
    assert runs_root(ws, args) == ws.root / "runs" / ("_conditional" if flag == "--cond" else "a")
    assert runs_root(ws, TrainArgs(extra_images="x")).name == EXTRA_RUNS


def test_cpu_jobs_keep_freed_memory_for_reuse(tmp_path, monkeypatch, glibc_default_malloc):  # noqa: F811
    from stylegan_ada import presets
    from stylegan_ada.training import launch
    from stylegan_ada.training.options import TrainingOptions

    def stop_before_loading(job, show_progress):
        raise RuntimeError("stop here")

    monkeypatch.setattr(launch, "load_data", stop_before_loading)
    p = presets.resolve("tiny", 16, batch=4)
    opts = TrainingOptions(G_kwargs=p["G_kwargs"], D_kwargs=p["D_kwargs"], G_opt_kwargs=p["G_opt_kwargs"],
                           D_opt_kwargs=p["D_opt_kwargs"], batch=4, batch_gpu=4, total_kimg=0.004)
    job = launch.Job(options=opts, run_dir=str(tmp_path), image_paths=[], labels=[], class_names=[], resolution=16,
                     training_set_kwargs={}, device="cpu", show_progress=False)
    with one_torch_thread(), pytest.raises(RuntimeError, match="stop here"):
        launch.run_job(job, log=lambda line: None)
    assert mmapped_bytes_holding() == 0  # glibc now serves large blocks from its heap (no mmap per step)
