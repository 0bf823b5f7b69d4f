"""MusiCNN's input in float32: from audio (against the fixture), from `--preset musicnn` images (by hand)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.support.musicnn import FIXTURE_NPZ
from tests.support.paths import SHARED

from augment.audio.mel import mel_db, resolve_mel
from classify.musicnn import audio_to_input, clip_to_input, images_to_input


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE_NPZ, allow_pickle=False) as d:
        return {k: d[k] for k in d.files if k.startswith(("clips/", "meta/")) or k.endswith("/input")}


def test_audio_front_end_reproduces_the_reference_input(fixture):
    for stem in fixture["meta/clip_stems"]:
        ref = fixture[f"MTT_musicnn/{stem}/input"]
        np.testing.assert_array_equal(ref, fixture[f"MSD_musicnn/{stem}/input"])
        x = audio_to_input(fixture[f"clips/{stem}/y16k"])          # 3.02 s: exactly one patch
        assert x.shape == (1, 187, 96) and x.dtype == np.float32
        assert np.abs(x[0] - ref[0]).max() <= 5e-4


def test_audio_file_to_input_reproduces_all_three_patches(fixture):
    stem, rel = fixture["meta/clip_stems"][0], fixture["meta/clip_relpaths"][0]
    # the fixture's paths are relative to a folder beside shared/ ("../shared/data/..."), e.g. the checkout
    x = clip_to_input(SHARED / rel)                                  # decoded, resampled to 16 kHz here
    assert x.shape == (3, 187, 96)
    assert np.abs(x - fixture[f"MTT_musicnn/{stem}/input"]).max() <= 5e-4


def test_loud_music_stays_finite_where_float16_overflows(fixture):
    stem = fixture["meta/clip_stems"][0]
    mel = fixture[f"clips/{stem}/mel_f32"]
    assert mel.max() > 6.56                                           # 10000·mel > 65504: inf in float16
    with np.errstate(over="ignore"):
        assert np.isinf(np.log10(10000 * mel.astype(np.float16) + 1)).any()
    assert np.isfinite(audio_to_input(fixture[f"clips/{stem}/y16k"])).all()


def test_musicnn_preset_images_map_back_to_the_network_input():
    cfg = resolve_mel("musicnn")
    assert (cfg.sr, cfg.n_fft, cfg.hop, cfg.n_mels, cfg.n_frames) == (16000, 512, 256, 96, 561)
    # a constant image: pixel 204 is -20 dB below the reference power 1000, i.e. mel power 10
    img = torch.full((1, 3, 64, 64), 204, dtype=torch.uint8)
    x = images_to_input(img)
    assert x.shape == (1, 3, 187, 96)
    np.testing.assert_allclose(x.numpy(), np.log10(1 + 10000 * 10.0), rtol=1e-5)
    # the top row of an image is the highest mel band, the left edge the first frames
    img = torch.zeros((1, 1, 96, 561), dtype=torch.uint8)
    img[:, :, 0, :] = 255
    img[:, :, :, :187] = 255
    x = images_to_input(img)[0]
    np.testing.assert_allclose(x[0].numpy(), np.log10(1 + 10000 * 1000.0), rtol=1e-5)
    np.testing.assert_allclose(x[1:, :, 95].numpy(), np.log10(1 + 10000 * 1000.0), rtol=1e-5)
    np.testing.assert_allclose(x[1:, :, :95].numpy(), np.log10(1 + 10000 * 1e-7), rtol=1e-4)


def test_musicnn_preset_db_is_relative_to_a_fixed_power():
    import librosa

    cfg = resolve_mel("musicnn")
    y = (0.3 * np.sin(2 * np.pi * 440 * np.arange(cfg.n_samples) / cfg.sr)).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96)
    expected = np.clip(10 * np.log10(np.maximum(mel, 1e-30) / 1000.0), -100, 0)
    np.testing.assert_allclose(mel_db(y, cfg), expected, atol=1e-3)
    assert "ref_power" not in resolve_mel("clean").to_dict()          # older workspaces keep their identity
