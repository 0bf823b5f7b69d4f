"""Near-copies of a test image (re-saved with an extra PNG chunk, JPEG q100, mirrored, one pixel changed) are refused
with the file named — via --extra-images, synthetic/<class>/ and data/train; a file swapped after the check is not
used by the loaders."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, PngImagePlugin

from augment.errors import UserError
from augment.workspace import Workspace
from tests.support.workspaces import make_image_workspace


def _chunk(im: Image.Image, out: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "re-saved with a metadata chunk")
    im.save(out, "PNG", pnginfo=info)


def _jpeg(im: Image.Image, out: Path) -> None:
    im.save(out, "JPEG", quality=100)


def _mirror(im: Image.Image, out: Path) -> None:
    im.transpose(Image.FLIP_LEFT_RIGHT).save(out, "PNG")


def _pixel(im: Image.Image, out: Path) -> None:
    a = np.asarray(im).copy()
    a[7, 11] = (a[7, 11].astype(int) + 60) % 256
    Image.fromarray(a, "RGB").save(out, "PNG")


VARIANTS = {"png-chunk": _chunk, "jpeg-q100": _jpeg, "mirrored": _mirror, "one-pixel": _pixel}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return make_image_workspace(tmp_path_factory.mktemp("near") / "ws", ("a", "b"), resolution=32,
                                counts={"train": 3, "val": 1, "test": 2}).root


@pytest.fixture()
def ws(base, tmp_path) -> Workspace:
    shutil.copytree(base, tmp_path / "ws")
    return Workspace.load(tmp_path / "ws")


def _test_image(ws: Workspace) -> Image.Image:
    with Image.open(ws.images("test", "a")[1]) as im:
        return im.convert("RGB")


def _train(ws: Workspace, *extra: str | Path):
    from augment.cli import cli

    return CliRunner().invoke(cli, ["train", "-w", str(ws.root), "--class", "a", "--cfg", "tiny", "--from", "scratch",
                                    "--device", "cpu", "--metrics", "none", "--dry-run", *map(str, extra)])


def _refused(res, name: str) -> None:
    assert res.exit_code == 2, res.output
    assert "is a near-copy of test image data/test/a/" in res.output and name in res.output, res.output


@pytest.mark.parametrize("variant", VARIANTS)
def test_near_copy_via_extra_images_is_refused(ws, tmp_path, variant):
    folder = tmp_path / "extra"
    folder.mkdir()
    out = folder / f"copy.{'jpg' if variant == 'jpeg-q100' else 'png'}"
    VARIANTS[variant](_test_image(ws), out)
    _refused(_train(ws, "--extra-images", folder), out.name)


@pytest.mark.parametrize("variant", VARIANTS)
def test_near_copy_in_data_train_is_refused(ws, variant):
    target = ws.images("train", "a")[-1]     # a manifest file, replaced; splits.csv still lists the old hash
    VARIANTS[variant](_test_image(ws), target)
    _refused(_train(ws), target.name)


@pytest.mark.parametrize("variant", VARIANTS)
def test_near_copy_among_the_fakes_is_refused(ws, variant):
    from classify.cli import cli

    rng = np.random.default_rng(5)
    for cls in ("a", "b"):
        for k in range(3):
            g = rng.integers(0, 256, (32, 32), dtype=np.uint8)
            (ws.synthetic_dir / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.stack([g] * 3, -1), "RGB").save(ws.synthetic_dir / cls / f"seed{k:06d}.png")
    fake = ws.synthetic_dir / "b" / "seed000099.png"     # any class: a copy of a test image is never a fake
    VARIANTS[variant](_test_image(ws), fake)
    res = CliRunner().invoke(cli, ["eval", "-w", str(ws.root), "--train", "synthetic", "--seeds", "0", "--arch",
                                   "small_cnn", "--epochs", "1", "--input-size", "32", "--quiet"])
    _refused(res, fake.name)
    assert not (ws.root / "results").exists()


def test_an_unrelated_image_passes(ws, tmp_path):
    """The control: a new picture (and the workspace's own train images) are not near-copies."""
    folder = tmp_path / "extra"
    folder.mkdir()
    g = np.random.default_rng(9).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(np.stack([g] * 3, -1), "RGB").save(folder / "new.png")
    res = _train(ws, "--extra-images", folder)
    assert res.exit_code == 0, res.output


def _swap_after_check(ws: Workspace) -> tuple[Path, str]:
    paths = ws.images(["train", "val"], "a")
    checked = ws.guard_training_inputs(paths)
    target = paths[0]
    digest = checked.digests()[target]
    buf = io.BytesIO()
    _test_image(ws).save(buf, "PNG")
    target.write_bytes(buf.getvalue())          # the test image, after the guard said yes
    return target, digest


def test_gan_loader_refuses_a_file_swapped_after_the_check(ws):
    from stylegan_ada.training.data import DataError, load_images

    target, digest = _swap_after_check(ws)
    with pytest.raises(DataError, match="changed after it was checked"):
        load_images([target], 32, sha256=[digest])


def test_classifier_loader_refuses_a_file_swapped_after_the_check(ws):
    from classify.data import ImageStore

    target, digest = _swap_after_check(ws)
    with pytest.raises(UserError, match="changed after the leak guard checked it"):
        ImageStore(32, {target: digest}).get(target)


def test_an_undecodable_or_oversized_input_is_one_clear_error(ws, tmp_path):
    from PIL import Image as PILImage

    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    res = _train(ws, "--extra-images", folder)
    assert res.exit_code == 2 and "broken.png cannot be decoded as an image" in res.output, res.output
    (folder / "broken.png").unlink()
    limit = PILImage.MAX_IMAGE_PIXELS
    try:
        PILImage.MAX_IMAGE_PIXELS = 600          # 32x32 still decodes (a warning); 64x64 is a decompression bomb
        Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / "bomb.png")
        res = _train(ws, "--extra-images", folder)
    finally:
        PILImage.MAX_IMAGE_PIXELS = limit
    assert res.exit_code == 2 and "bomb.png cannot be decoded" in res.output and "Traceback" not in res.output
