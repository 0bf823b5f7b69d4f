"""The option path's library side: TrainingOptions checks, the presets' builder, Job, ETA, run summary, TensorBoard."""
from __future__ import annotations

import json

import pytest
import torch

from stylegan_ada import presets
from stylegan_ada.training import launch, reporting
from stylegan_ada.training import tensorboard as tb
from stylegan_ada.training.options import OptionError, TrainingOptions, d_freezable_layers


@pytest.mark.parametrize("arch", ["resnet", "skip", "orig"])
@pytest.mark.parametrize("res", [8, 32])
def test_freezable_layer_count_is_what_the_discriminator_builds(arch, res):
    from stylegan_ada.networks import Discriminator

    kwargs = dict(presets.resolve("tiny", res)["D_kwargs"], architecture=arch)
    with torch.device("meta"):
        D = Discriminator(**kwargs)
    assert d_freezable_layers(kwargs) == sum(getattr(D, f"b{r}").num_layers for r in D.block_resolutions)


def test_options_are_checked_when_made_and_name_the_field():
    ok = presets.training_options("tiny", 16, batch=4, freeze_layers=7)
    assert ok.D_kwargs["block_kwargs"]["freeze_layers"] == 7
    with pytest.raises(OptionError, match="freeze_layers must be between 0 and 7, got 8") as exc:
        presets.training_options("tiny", 16, batch=4, freeze_layers=8)
    assert exc.value.name == "freeze_layers"
    for name, value, message in [("ada_target", 1.5, "between 0 and 1"), ("total_kimg", 0.0, "> 0"),
                                 ("snap", 0, ">= 1"), ("seed", -1, "between 0 and 4294967295"),
                                 ("aug", "sometimes", "one of ada, fixed, noaug"), ("keep", 2.5, "an integer")]:
        with pytest.raises(OptionError, match=message) as exc:
            ok.replace(**{name: value})
        assert exc.value.name == name
    with pytest.raises(OptionError, match="batch_gpu 3 must divide the batch 4"):
        ok.replace(batch_gpu=3)
    with pytest.raises(OptionError, match="is not a training option"):
        TrainingOptions.from_dict(dict(ok.to_dict(), colour="red"))


def test_presets_build_options_with_each_default_from_one_layer():
    p = presets.resolve("tiny", 16, batch=4)
    opts = presets.training_options("tiny", 16, batch=4)
    assert (opts.gamma, opts.ema_kimg, opts.ema_rampup, opts.total_kimg) == (p["gamma"], p["ema_kimg"], 0.05, 200)
    assert (opts.ada_target, opts.ada_kimg, opts.kimg_per_tick, opts.snap) == (0.6, 500, 4, 50)  # library defaults
    moved = presets.training_options("tiny", 16, batch=4, transfer=True, gamma=3.0, snap=2)
    assert (moved.ema_rampup, moved.ada_kimg, moved.gamma, moved.snap) == (None, 100, 3.0, 2)
    with pytest.raises(presets.PresetError, match="unknown training option"):
        presets.training_options("tiny", 16, colour="red")


def test_a_job_carries_its_options_through_json():
    opts = presets.training_options("tiny", 16, batch=4, total_kimg=0.004)
    job = launch.Job(options=opts, run_dir="/x", image_paths=["/x/1.png"], labels=[], class_names=["a"],
                     resolution=16, training_set_kwargs={"class": "a"}, share=2)
    back = launch.job_from_dict(json.loads(json.dumps(launch.job_to_dict(job))))
    assert back == job and isinstance(back.options, TrainingOptions)


def test_tick_line_shows_the_eta_to_the_total():
    rec = reporting.tick_record(tick=3, cur_nimg=1000, tick_nimg=1000, tick_seconds=10.0, maintenance=2.0,
                             total_seconds=60.0, stats={}, augment_p=0.1, rt=0.5, device=torch.device("cpu"),
                             total_nimg=4000)
    assert rec["eta_sec"] == pytest.approx(36.0)  # 3000 images left at (10 + 2) s per 1000
    assert " eta 0m36s " in reporting.status_line(rec)


def test_run_summary_reads_stats(tmp_path):
    records = [{"kimg": 4, "sec_per_kimg": 99.0}, {"kimg": 8, "sec_per_kimg": 2.0, "snapshot": "n8",
                                                    "metrics": {"fid": 40.0}},
               {"kimg": 12, "sec_per_kimg": 4.0, "snapshot": "n12", "metrics": {"fid": 50.0}}]
    (tmp_path / "stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    s = reporting.run_summary(tmp_path)
    assert (s["kimg"], s["sec_per_kimg"], s["best_fid"], s["best_kid"], s["newest_snapshot"]) == (
        12, 3.0, 40.0, None, "n12")  # the first tick (start-up) is not a speed


def test_tensorboard_events_when_installed_and_one_note_when_not(tmp_path, monkeypatch):
    calls = []

    class FakeWriter:
        def __init__(self, log_dir, purge_step):
            calls.append(("init", log_dir, purge_step))

        def add_scalar(self, name, value, step):
            calls.append((name, value, step))

        def add_image(self, name, pixels, step, dataformats):
            calls.append((name, pixels.shape, step, dataformats))

        def flush(self):
            pass

        def close(self):
            calls.append(("close",))

    monkeypatch.setattr(tb, "summary_writer_class", lambda: FakeWriter)
    w = tb.TickWriter(tmp_path, log=print, resume_nimg=8000)
    w.tick({"kimg": 12.5, "cur_nimg": 12500, "augment_p": 0.2, "ada_rt": None, "sec_per_kimg": 3.0,
            "stats": {"Loss/G/loss": {"mean": 1.5}}, "metrics": {"fid": 40.0}})
    from PIL import Image

    Image.new("RGB", (8, 4)).save(tmp_path / "fakes.png")
    w.image(tmp_path / "fakes.png", 12500)
    w.close()
    n = 12500
    assert calls == [("init", str(tmp_path), 8000), ("Progress/augment_p", 0.2, n), ("Timing/sec_per_kimg", 3.0, n),
                     ("Loss/G/loss", 1.5, n), ("Metrics/fid", 40.0, n), ("fakes", (4, 8, 3), n, "HWC"), ("close",)]
    monkeypatch.setattr(tb, "summary_writer_class", lambda: None)
    monkeypatch.setattr(tb, "_noted", [])
    lines = []
    for _ in range(2):
        quiet = tb.TickWriter(tmp_path, log=lines.append)
        quiet.tick({"kimg": 1, "cur_nimg": 1000})
    assert len(lines) == 1 and "tensorboard package is not installed" in lines[0] and "[tensorboard]" in lines[0]
