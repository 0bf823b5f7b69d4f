"""`augment listen`: prepared or generated mel images back to audio."""
from __future__ import annotations

import numpy as np
import soundfile as sf
from PIL import Image

from augment.audio.mel import MelConfig, mel_db
from augment.demo_data import STYLES, synthesize_clip
from augment.workspace import Workspace
from tests.support.workspaces import make_image_workspace

SECONDS = 2.0


def _music_folder(root, n=3):
    for ci, (cls, style) in enumerate(list(STYLES.items())[:2]):
        for k in range(n):
            y = synthesize_clip(style, np.random.default_rng([7, ci, k]), seconds=SECONDS)
            (root / cls).mkdir(parents=True, exist_ok=True)
            sf.write(root / cls / f"{cls}{k}.wav", y, 8000, subtype="FLOAT")


def test_listen_restores_duration_and_mel(tmp_path, augment_cli):
    _music_folder(tmp_path / "audio")
    ws_dir = tmp_path / "ws"
    r = augment_cli("prepare", "--dataset", "folder", "--audio-dir", tmp_path / "audio", "--test-size", "1",
                    "--duration", SECONDS, "--resolution", 128, "--jobs", 1, "-w", ws_dir)
    assert r.exit_code == 0, r.output
    ws = Workspace.load(ws_dir)
    row = next(r for r in ws.rows() if r.split == "test")
    out = tmp_path / "wav"
    r = augment_cli("listen", ws.root / row.image, "--out", out)  # workspace found from the image's location
    assert r.exit_code == 0, r.output
    wav = out / (ws.root / row.image).with_suffix(".wav").name
    y, sr = sf.read(wav, dtype="float32")
    cfg = MelConfig.from_dict(ws.config["mel"])
    assert sr == 8000 and y.shape == (cfg.n_samples,) and y.size / sr == SECONDS
    original, _ = sf.read(tmp_path / "audio" / row.source, dtype="float32")
    a, b = mel_db(original, cfg), mel_db(y, cfg)
    corr = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert corr > 0.85, corr


def test_listen_generated_image_any_size_and_channels(tmp_path, augment_cli, demo_workspace):
    # a "generated" image: 64 px, channels not exactly equal, outside the workspace → needs --workspace
    src = demo_workspace.images("train", "happy")[0]
    arr = np.asarray(Image.open(src).resize((64, 64))).astype(np.int16)
    arr[..., 0] = np.clip(arr[..., 0] + 3, 0, 255)
    fake = tmp_path / "gen" / "seed000001.png"
    fake.parent.mkdir()
    Image.fromarray(arr.astype(np.uint8), "RGB").save(fake)
    r = augment_cli("listen", fake, "--out", tmp_path / "wav", "-w", demo_workspace.root, "--n-iter", 4)
    assert r.exit_code == 0, r.output
    info = sf.info(tmp_path / "wav" / "seed000001.wav")
    assert info.frames == MelConfig.from_dict(demo_workspace.config["mel"]).n_samples


def test_listen_errors(tmp_path, augment_cli, demo_workspace):
    img_ws = make_image_workspace(tmp_path / "imgws", counts={"train": 1, "val": 1, "test": 1})
    r = augment_cli("listen", img_ws.images("train")[0], "--out", tmp_path / "o")
    assert r.exit_code == 2 and "error:" in r.stderr and "no mel settings" in r.stderr
    bogus = tmp_path / "notes.png"
    bogus.write_text("not an image")
    r = augment_cli("listen", bogus, "--out", tmp_path / "o", "-w", demo_workspace.root)
    assert r.exit_code == 2 and "cannot turn" in r.stderr and "notes.png" in r.stderr
    r = augment_cli("listen", tmp_path / "missing.png", "-w", demo_workspace.root)
    assert r.exit_code == 2 and "not found" in r.stderr


def test_interp_inversion_keeps_quiet_parts_better_than_nnls():
    from augment.audio.inverse import mel_to_stft_magnitude
    from augment.audio.mel import mel_basis, resolve_mel

    cfg = resolve_mel("clean", duration=1.0)
    y = synthesize_clip(STYLES["sad"], np.random.default_rng(3), seconds=1.0)
    db = mel_db(y, cfg)
    power = 10.0 ** (db / 10.0)
    scores = {}
    for method in ("interp", "nnls"):
        mag = mel_to_stft_magnitude(power, cfg, method)
        assert mag.shape == (1 + cfg.n_fft // 2, cfg.n_frames) and mag.min() >= 0
        back = 10 * np.log10(np.maximum(mel_basis(cfg) @ mag ** 2, 1e-10))
        back = np.maximum(back - back.max(), -cfg.top_db)
        scores[method] = np.corrcoef(db.ravel(), back.ravel())[0, 1]
    assert scores["interp"] > 0.9 and scores["interp"] > scores["nnls"] + 0.05, scores


def test_listen_never_writes_into_data_nor_overwrites_a_file_it_did_not_write(tmp_path, augment_cli,
                                                                             demo_workspace):
    image = demo_workspace.images("test", "happy")[0]
    r = augment_cli("listen", image, "--out", image.parent)
    assert r.exit_code == 2 and "lies inside" in r.stderr and "data" in r.stderr
    assert not image.with_suffix(".wav").exists()
    out = tmp_path / "music"
    out.mkdir()
    (out / image.with_suffix(".wav").name).write_bytes(b"my own recording")
    r = augment_cli("listen", image, "--out", out, "--n-iter", 1)
    assert r.exit_code == 2 and "was not written by `augment listen`" in r.stderr
    assert (out / image.with_suffix(".wav").name).read_bytes() == b"my own recording"
    (out / image.with_suffix(".wav").name).unlink()
    for _ in range(2):  # its own WAV it may write again
        assert augment_cli("listen", image, "--out", out, "--n-iter", 1).exit_code == 0
