"""`augment generate`: files, manifest, grids, record, determinism, conditional models, keeping other classes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from augment.cli import cli
from augment.io_utils import sha256_file
from augment.synthetic import read_manifest, workspace_identity
from augment.workspace import Workspace
from tests.support.networks import save_tiny_snapshot, tiny_generator
from tests.support.workspaces import RESOLUTION, snapshot_path
from tests.support.memory import mmapped_bytes_holding


def generate(ws, *args, ok=True):
    result = CliRunner().invoke(cli, ["generate", "-w", str(ws.root), "-q", *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def hashes(ws):
    return {r.file: r.sha256 for r in read_manifest(ws.synthetic_dir)}


def test_writes_images_manifest_grids_and_record(ws):
    result = generate(ws, "--n", "5")
    assert "generated 10 images for 2 class(es) (a, b)" in result.output and "images/s" in result.output
    assert "no trained model for class(es) c; skipped" in result.output
    syn = ws.synthetic_dir
    rows = read_manifest(syn)
    assert [(r.cls, r.seed) for r in rows] == [("a", s) for s in range(5)] + [("b", 100000 + s) for s in range(5)]
    for r in rows:
        path = syn / r.file
        assert sha256_file(path) == r.sha256
        assert r.snapshot == f"runs/{r.cls}/00000-tiny/network-snapshot-000004.safetensors" and r.truncation == 1.0
        with Image.open(path) as im:
            assert im.mode == "RGB" and im.size == (RESOLUTION, RESOLUTION)  # the workspace image format
            a = np.asarray(im)
        assert (a[..., 0] == a[..., 1]).all() and (a[..., 0] == a[..., 2]).all() and a.std() > 0
    assert not (syn / "c").exists()
    with Image.open(syn / "grid-a.png") as im:
        assert im.size == (5 * RESOLUTION, RESOLUTION)
    rec = json.loads((syn / "generate.json").read_text())
    assert rec["workspace"]["fingerprint"] == workspace_identity(ws)["fingerprint"]
    entry = rec["classes"]["a"]
    assert entry["snapshot_sha256"] == sha256_file(snapshot_path(ws, "a")) and entry["seeds"] == "0-4"
    assert rec["last_run"]["code_version"] and rec["last_run"]["seeds"] == {"a": "0-4", "b": "100000-100004"}
    assert rec["last_run"]["data_hashes"]["splits_sha256"] == ws.config["splits"]["sha256"]
    assert not [p for p in ws.root.iterdir() if p.name.startswith(".synthetic")]  # temp dir renamed away


def test_same_command_twice_is_identical_and_trunc_changes_it(ws):
    generate(ws, "--n", "4", "--classes", "a")
    first = hashes(ws)
    generate(ws, "--n", "4", "--classes", "a")
    assert hashes(ws) == first
    generate(ws, "--n", "4", "--classes", "a", "--trunc", "0.5")
    second = hashes(ws)
    assert second.keys() == first.keys() and all(second[k] != first[k] for k in first)
    assert {r.truncation for r in read_manifest(ws.synthetic_dir)} == {0.5}


def test_image_depends_only_on_seed_and_noise_mode():
    from augment.generate import synthesize

    G = tiny_generator()
    for name, param in G.named_parameters():
        if name.endswith("noise_strength"):
            param.data.fill_(0.5)  # zero at initialisation; a trained G uses its noise inputs
    run = lambda seeds, batch, noise="const": np.concatenate(  # noqa: E731
        [g for _, g in synthesize(G, seeds, label=None, truncation_psi=1.0, noise_mode=noise, batch=batch,
                                  device="cpu")]).astype(int)
    one_by_one, batched = run([3, 7, 11], 1), run([3, 7, 11], 3)
    assert np.abs(one_by_one - batched).max() <= 1  # same z per seed; only float summation order may differ
    state = torch.get_rng_state()
    noisy = run([3, 7], 2, "random")
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random stream is left as it was
    assert (noisy == run([3, 7], 2, "random")).all() and (noisy != batched[:2]).any()
    # the noise is seeded by the batch's first seed (README): same first seed, same noise for the first image
    assert (run([3, 9], 2, "random")[0] == noisy[0]).all() and (run([7, 3], 2, "random")[1] != noisy[0]).any()


def test_regenerating_one_class_keeps_the_others(ws):
    generate(ws, "--n", "3", "--classes", "a")
    a_files = hashes(ws)
    generate(ws, "--n", "2", "--classes", "b", "--seeds", "10-11")
    rows = read_manifest(ws.synthetic_dir)
    assert [(r.cls, r.seed) for r in rows] == [("a", 0), ("a", 1), ("a", 2), ("b", 10), ("b", 11)]
    assert {k: v for k, v in hashes(ws).items() if k.startswith("a/")} == a_files
    assert all(sha256_file(ws.synthetic_dir / r.file) == r.sha256 for r in rows)
    rec = json.loads((ws.synthetic_dir / "generate.json").read_text())
    assert list(rec["classes"]) == ["a", "b"] and rec["classes"]["b"]["seeds"] == "10-11"
    assert (ws.synthetic_dir / "grid-a.png").is_file()


def test_conditional_model_generates_every_class(ws):
    cond = save_tiny_snapshot(snapshot_path(ws, None, "00000-cond"), c_dim=3, seed=5,
                              training_set_kwargs={"cond": True, "class_names": ["c", "a", "b"]})
    generate(ws, "--cond", "--seeds", "0-1")
    rows = read_manifest(ws.synthetic_dir)
    assert sorted({r.cls for r in rows}) == ["a", "b", "c"] and len(rows) == 6
    assert {r.snapshot for r in rows} == {cond.relative_to(ws.root).as_posix()}
    by_class = {c: {r.seed: r.sha256 for r in rows if r.cls == c} for c in "abc"}
    assert by_class["a"][0] != by_class["b"][0] != by_class["c"][0]  # same z, different label
    rec = json.loads((ws.synthetic_dir / "generate.json").read_text())
    assert [rec["classes"][c]["label"] for c in "abc"] == [1, 2, 0]  # the label order recorded by training
    # without --cond: per-class models for a and b, the conditional one fills in for untrained c
    generate(ws, "--n", "1")
    rec = json.loads((ws.synthetic_dir / "generate.json").read_text())
    assert [rec["classes"][c]["conditional"] for c in "abc"] == [False, False, True]


def test_pick_best_and_corrupt_newest_snapshot(ws):
    run_dir = snapshot_path(ws, "a").parent
    save_tiny_snapshot(run_dir / "network-snapshot-000008.safetensors", seed=9)
    (run_dir / "stats.jsonl").write_text(
        json.dumps({"snapshot": "network-snapshot-000004.safetensors", "kimg": 4, "metrics": {"fid": 50.0}}) + "\n"
        + json.dumps({"snapshot": "network-snapshot-000008.safetensors", "kimg": 8, "metrics": {"fid": 70.0}}) + "\n"
        + '{"torn line')
    generate(ws, "--n", "1", "--classes", "a", "--pick", "best")
    assert read_manifest(ws.synthetic_dir)[0].snapshot.endswith("000004.safetensors")
    generate(ws, "--n", "1", "--classes", "a")
    assert read_manifest(ws.synthetic_dir)[0].snapshot.endswith("000008.safetensors")
    data = (run_dir / "network-snapshot-000008.safetensors").read_bytes()
    (run_dir / "network-snapshot-000008.safetensors").write_bytes(data[: len(data) // 2])  # truncated by a crash
    result = generate(ws, "--n", "1", "--classes", "a")
    assert "skipping snapshot network-snapshot-000008.safetensors" in result.output
    assert read_manifest(ws.synthetic_dir)[0].snapshot.endswith("000004.safetensors")
    bad = generate(ws, "--n", "1", "--snapshot", str(run_dir / "network-snapshot-000008.safetensors"), ok=False)
    assert bad.exit_code == 2 and "cannot be loaded" in bad.output and "truncated" in bad.output


def test_audio_writes_wavs_next_to_pngs(ws):
    import soundfile as sf

    from augment.audio.image_mapping import mapping_dict
    from augment.audio.mel import resolve_mel

    mel = resolve_mel("clean", duration=1.0)
    cfg = json.loads((ws.root / "augment.json").read_text())
    cfg["kind"], cfg["mel"] = "audio", mel.to_dict()
    cfg["image"]["mapping"] = mapping_dict(mel.top_db, (mel.n_mels, mel.n_frames))
    (ws.root / "augment.json").write_text(json.dumps(cfg))
    ws = Workspace.load(ws.root)
    result = generate(ws, "--n", "2", "--classes", "a", "--audio", "--audio-n", "1")  # Griffin-Lim: ~1 s/WAV (CPU)
    assert "1 WAVs in" in result.output
    wavs = sorted(p.name for p in (ws.synthetic_dir / "a").glob("*.wav"))
    assert wavs == ["seed000000.wav"]
    info = sf.info(str(ws.synthetic_dir / "a" / wavs[0]))
    assert info.samplerate == mel.sr and abs(info.duration - 1.0) < 1e-3
    rec = json.loads((ws.synthetic_dir / "generate.json").read_text())
    assert rec["classes"]["a"]["audio"] == wavs


def test_newest_snapshot_counts_the_images_past_the_kimg(ws):
    from augment.trained_models import choose_models

    for tag in ("000000.264", "000000", "000000.504"):  # several snapshots within one kimg (short ticks)
        save_tiny_snapshot(snapshot_path(ws, "a", "00001-tiny", tag), seed=3)
    (choice,) = choose_models(ws, classes=["a"])
    assert [s.path.name for s in choice.candidates] == [
        f"network-snapshot-{t}.safetensors" for t in ("000000.504", "000000.264", "000000", "000004")]
    assert [s.nimg for s in choice.candidates[:3]] == [504, 264, 0]
    generate(ws, "--n", "1", "--classes", "a")
    assert read_manifest(ws.synthetic_dir)[0].snapshot == "runs/a/00001-tiny/network-snapshot-000000.504.safetensors"


@pytest.mark.parametrize("native", [16, 64])
def test_snapshot_of_another_resolution_is_resized_to_the_workspace(ws, tmp_path, native):
    from augment.generate import synthesize

    snap = save_tiny_snapshot(tmp_path / "network-snapshot-000001.safetensors", resolution=native, seed=2)
    result = generate(ws, "--snapshot", str(snap), "--classes", "a", "--seeds", "0-2")
    notes = [line for line in result.output.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and f"makes {native}px images; resizing them to this workspace's 32px" in notes[0]
    rec = json.loads((ws.synthetic_dir / "generate.json").read_text())["classes"]["a"]
    assert (rec["native_resolution"], rec["resolution"], rec["resized"]) == (native, RESOLUTION, "bicubic-antialias")
    with Image.open(ws.synthetic_dir / "a" / "seed000001.png") as im:
        assert im.size == (RESOLUTION, RESOLUTION)
        fake = np.asarray(im)[..., 0].astype(float)
    (_, own), = synthesize(tiny_generator(seed=2, resolution=native), [1], label=None, truncation_psi=1.0,
                           noise_mode="const", batch=1, device="cpu")
    # block-average both to the smaller size: the resized fake shows the generator's own image
    small = min(native, RESOLUTION)
    pool = lambda a: a.reshape(small, a.shape[0] // small, small, -1).mean(axis=(1, 3))  # noqa: E731
    assert np.abs(pool(fake) - pool(own[0].astype(float))).mean() < 4


def test_same_resolution_is_not_resized_and_cpu_keeps_freed_memory(ws, glibc_default_malloc):  # noqa: F811
    result = generate(ws, "--n", "1", "--classes", "a", "--device", "cpu")
    assert mmapped_bytes_holding() == 0  # the command left glibc serving large blocks from its heap
    assert "note: " not in result.output
    rec = json.loads((ws.synthetic_dir / "generate.json").read_text())["classes"]["a"]
    assert (rec["native_resolution"], rec["resized"]) == (RESOLUTION, None)
