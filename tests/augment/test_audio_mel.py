"""Mel presets, overrides, the dB transform and the pixel mapping."""
from __future__ import annotations

import librosa
import numpy as np
import pytest
from PIL import Image

from augment.audio.decode import load_clip
from augment.audio.image_mapping import db_to_gray, gray_to_rgb_png, image_to_db, mapping_dict
from augment.audio.mel import MelConfig, empty_band_warning, empty_mel_bands, mel_db, resolve_mel
from augment.errors import UserError
from tests.support.audio import tone


def test_thesis_preset_has_27_empty_bands_and_clean_none():
    thesis, clean = resolve_mel("thesis"), resolve_mel("clean")
    assert (thesis.sr, thesis.duration, thesis.n_fft, thesis.hop, thesis.n_mels, thesis.fmax_hz) == \
        (8000, 10.0, 2048, 512, 128, 8000.0)
    assert (thesis.n_mels, thesis.n_frames) == (128, 157)
    assert empty_mel_bands(thesis) == 27
    assert "27 of 128 mel bands are empty" in empty_band_warning(thesis)
    assert clean.fmax_hz == 4000.0 and empty_mel_bands(clean) == 0 and empty_band_warning(clean) is None


def test_every_parameter_overridable_and_validated():
    cfg = resolve_mel("thesis", sr=16000, duration=3, offset=1.5, n_mels=64, fmax=6000, n_fft=1024, hop=256,
                      top_db=60)
    assert (cfg.sr, cfg.duration, cfg.offset, cfg.n_mels, cfg.fmax_hz, cfg.n_fft, cfg.hop, cfg.top_db) == \
        (16000, 3, 1.5, 64, 6000, 1024, 256, 60)
    assert MelConfig.from_dict(cfg.to_dict()) == cfg
    for bad in ({"sr": 0}, {"duration": -1}, {"hop": 0}, {"n_mels": 0}, {"top_db": 0}, {"offset": -2}):
        with pytest.raises(UserError):
            resolve_mel("clean", **bad)
    with pytest.raises(UserError, match="unknown mel preset"):
        resolve_mel("fancy")


@pytest.mark.filterwarnings("ignore:Empty filters detected")
def test_mel_db_matches_librosa_reference_and_range():
    cfg = resolve_mel("thesis", duration=2.0)
    y = tone(2.0, 8000, freq=330, seed=1)
    ref = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=8000, n_fft=2048, hop_length=512, n_mels=128,
                                                             fmax=8000), ref=np.max)
    ours = mel_db(y, cfg)
    assert ours.shape == (128, cfg.n_frames) == ref.shape
    assert np.max(np.abs(ours - ref)) < 1e-3
    assert ours.max() == pytest.approx(0.0) and ours.min() >= -80.0
    # the 27 empty thesis bands are constant -80 dB rows
    assert int(np.sum(np.all(ours == -80.0, axis=1))) >= 27


def test_silent_clip_is_black_not_white():
    cfg = resolve_mel("clean", duration=1.0)
    assert np.all(mel_db(np.zeros(cfg.n_samples, np.float32), cfg) == -cfg.top_db)
    assert db_to_gray(mel_db(np.zeros(cfg.n_samples, np.float32), cfg), cfg.top_db, 16).max() == 0


def test_pixel_mapping_round_trip_and_orientation():
    cfg = resolve_mel("clean", duration=2.0)
    y = tone(2.0, 8000, freq=200, noise=0.0)  # energy in low mel bands only
    db = mel_db(y, cfg)
    mapping = mapping_dict(cfg.top_db, (cfg.n_mels, cfg.n_frames))
    png = gray_to_rgb_png(db_to_gray(db, cfg.top_db, 256))
    import io

    img = Image.open(io.BytesIO(png))
    arr = np.asarray(img)
    assert img.mode == "RGB" and img.size == (256, 256)
    assert np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2])
    # low frequencies at the bottom: the 200 Hz tone makes the bottom rows brighter than the top rows
    assert arr[-40:, :, 0].mean() > arr[:40, :, 0].mean() + 30
    back = image_to_db(img, mapping)
    assert back.shape == db.shape
    # quantisation (80/255 dB) plus two bicubic resizes: small on average, bounded everywhere
    assert np.mean(np.abs(back - db)) < 1.5
    assert np.corrcoef(back.ravel(), db.ravel())[0, 1] > 0.97


def test_decode_pads_downmixes_and_resamples(tmp_path, write_wav):
    cfg = resolve_mel("clean", duration=1.0)
    stereo = write_wav(tmp_path / "st.wav", 2.0, 44100, channels=2, seed=3)
    clip = load_clip(stereo, cfg)
    assert clip.samples.shape == (8000,) and clip.channels == 2 and clip.orig_sr == 44100 and not clip.padded
    short = write_wav(tmp_path / "short.wav", 0.4, 11025, seed=4)
    clip = load_clip(short, cfg)
    assert clip.padded and clip.samples.shape == (8000,)
    assert np.all(clip.samples[3300:] == 0) and np.abs(clip.samples[:3000]).max() > 0.1
    # --offset skips the start: a file that is silent for 1 s then loud
    sig = np.concatenate([np.zeros(8000), 0.5 * np.ones(8000)]).astype(np.float32)
    import soundfile as sf

    sf.write(tmp_path / "late.wav", sig, 8000)
    assert np.abs(load_clip(tmp_path / "late.wav", resolve_mel("clean", duration=0.5, offset=1.0)).samples).min() > 0.4
