"""``classify predict``: class probabilities of images or audio files from a saved classifier.

Each file becomes the picture the model was trained on: audio through the mel settings and pixel mapping recorded
with the model (augment's own audio → image functions, the ones `augment prepare` uses: same bytes), an image of an
``images`` workspace through prepare's image conversion, a spectrogram image as it is. Then the same resize and
normalisation as in training (classify.data.ImageStore / ImageDataset) and a softmax.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from augment.errors import UserError
from classify.saved_model import SavedModel

CHUNK = 64          # files rendered and scored together (bounds the memory of many inputs)


def _audio_pngs(path: Path, saved: SavedModel) -> list[bytes]:
    from augment.audio.decode import AudioError, load_clip
    from augment.audio.image_mapping import MAPPING_KIND, db_to_gray, gray_to_rgb_png
    from augment.audio.mel import MelConfig, mel_db, validate
    from augment.segments import load_window

    ws = saved.workspace
    mapping = ws["image"].get("mapping") or {}
    if mapping.get("kind", MAPPING_KIND) != MAPPING_KIND:
        raise UserError(f"the model's image mapping {str(mapping.get('kind'))[:40]!r} is not one this version "
                        f"renders ({MAPPING_KIND}); give the images instead of the audio")
    try:
        mel = MelConfig.from_dict(ws["mel"])
        validate(mel)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{saved.config_path}: its mel settings are malformed ({exc}); re-run `classify eval`") \
            from None
    windows = _windows(path, mel, ws.get("segments"))
    try:
        clips = [load_clip(path, mel)] if windows is None else [load_window(path, mel, a, b) for a, b in windows]
    except AudioError as exc:
        raise UserError(f"{path}: {exc}") from None
    return [gray_to_rgb_png(db_to_gray(mel_db(c.samples, mel), mel.top_db, int(ws["resolution"]))) for c in clips]


def _windows(path: Path, mel: Any, record: Any) -> list[tuple[float, float]] | None:
    """The windows `augment prepare --segments/--hop-seconds` would cut from ``path`` (None: one image per clip)."""
    from augment.segments import MAX_SEGMENTS, Segmenting, audio_seconds, plan_windows

    if record is None:
        return None
    record = record if isinstance(record, dict) else {"count": "?"}
    count, hop = record.get("count"), record.get("hop_seconds")
    if not (count is None or _number(count, int) and 1 <= count <= MAX_SEGMENTS) \
            or not (hop is None or _number(hop, (int, float)) and hop > 0):
        raise UserError("the model's workspace record 'segments' is malformed; re-run `classify eval`")
    # at most MAX_SEGMENTS windows, whatever the hop: bounds the work one file can cost
    return plan_windows(audio_seconds(path), mel.duration, Segmenting(count or MAX_SEGMENTS, hop), offset=mel.offset)


def _number(value: Any, types: Any) -> bool:
    return isinstance(value, types) and not isinstance(value, bool)


def _image_png(path: Path, saved: SavedModel) -> bytes:
    from PIL import Image

    from augment.audio.image_mapping import gray_to_rgb_png
    from augment.datasets.images import ImageError, image_to_gray
    from augment.leak_guard import read_bounded

    ws = saved.workspace
    if ws["kind"] == "images":             # as `augment prepare` turned the workspace's images into its PNGs
        try:
            return gray_to_rgb_png(image_to_gray(path, int(ws["resolution"])))
        except ImageError as exc:
            raise UserError(f"{path}: {exc}") from None
    data = read_bounded(path)
    try:
        with Image.open(io.BytesIO(data)) as im:
            rgb = np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
        raise UserError(f"{path}: unreadable or corrupt image ({str(exc)[:120]})") from None
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def render(path: Path, saved: SavedModel) -> list[bytes]:
    """PNG bytes of the pictures ``saved`` would have been trained on for ``path``: one for an image, one per
    segment for audio (one when the workspace was not segmented)."""
    return _audio_pngs(path, saved) if check_input(path, saved) else [_image_png(path, saved)]


def check_input(path: Path, saved: SavedModel) -> bool:
    """Whether ``path`` is audio (else an image); UserError for a missing file or audio for an images model."""
    from augment.audio.decode import AUDIO_EXTENSIONS

    if not path.is_file():
        raise UserError(f"{path}: no such file")
    audio = path.suffix.lower() in AUDIO_EXTENSIONS
    if audio and (saved.workspace["kind"] != "audio" or not saved.workspace.get("mel")):
        raise UserError(f"{path} is audio, but the model was trained on an images workspace; give image files")
    return audio


def predict_files(paths: Sequence[Path], saved: SavedModel, built: Any, *, device: str = "cpu",
                  batch_size: int = 16, progress: bool = False) -> list[list[float]]:
    """Softmax probabilities (one list per file, in ``saved.classes`` order); for a clip cut into segments the
    mean over its segments, as `classify eval` scores a clip."""
    import sys

    from tqdm.auto import tqdm

    from classify.data import ImageDataset, ImageStore
    from classify.trainer import make_loader, predict

    for p in paths:                     # the usual mistakes before any work
        check_input(Path(p), saved)
    norm = saved.config["normalisation"]
    out: list[list[float]] = []
    with tqdm(total=len(paths), desc="predict", unit="file", file=sys.stderr, leave=False,
              disable=not progress) as bar:
        for start in range(0, len(paths), CHUNK):
            pictures = []
            for p in paths[start:start + CHUNK]:
                pictures.append(render(Path(p), saved))
                bar.update()
            # file-like keys: ImageStore decodes exactly as it decodes a workspace image
            samples = [(io.BytesIO(png), 0) for pngs in pictures for png in pngs]
            ds = ImageDataset(samples, ImageStore(saved.input_size), norm["mean"], norm["std"])
            probs, _, _ = predict(built, make_loader(ds, batch_size, shuffle=False), device)
            ends = np.cumsum([len(pngs) for pngs in pictures])
            out += [[float(v) for v in probs[e - len(pngs):e].mean(axis=0)] for e, pngs in zip(ends, pictures)]
    return out


def format_csv(paths: Sequence[Path], probs: Sequence[Sequence[float]], classes: Sequence[str]) -> str:
    """``file,pred,p_<class>...`` lines (probabilities to 5 decimals), with a header."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "pred"] + [f"p_{c}" for c in classes])
    for p, row in zip(paths, probs):
        w.writerow([str(p), classes[max(range(len(row)), key=row.__getitem__)]] + [f"{v:.5f}" for v in row])
    return buf.getvalue()


def format_json(paths: Sequence[Path], probs: Sequence[Sequence[float]], classes: Sequence[str]) -> str:
    return json.dumps([{"file": str(p), "pred": classes[max(range(len(row)), key=row.__getitem__)],
                        "probabilities": dict(zip(classes, row))} for p, row in zip(paths, probs)], indent=2)
