"""Pretrained registry and fetch: no network needed (file:// sources, a simulated offline machine)."""
from __future__ import annotations

import hashlib
import shutil
import urllib.error

import pytest
from click.testing import CliRunner

from augment.cli import cli
from tests.support.paths import FIXTURES
from stylegan_ada import pretrained
from stylegan_ada.pretrained import (PretrainedChecksumError, PretrainedEntry, PretrainedMissing, fetch, load_registry,
                                     resolve)

REFERENCE_NETS = {"ffhq256": 256, "ffhq512": 512, "ffhq1024": 1024, "celebahq256": 256, "lsundog256": 256,
                  "ffhq": 1024}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("AUGMENT_CACHE", str(folder))
    monkeypatch.setattr(pretrained, "REPO_PRETRAINED_DIR", tmp_path / "repo-pretrained")
    return folder


@pytest.fixture
def offline(monkeypatch):
    def no_network(url, timeout):
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(pretrained, "_open_url", no_network)


def _entry(tmp_path, content: bytes, **overrides) -> PretrainedEntry:
    source = tmp_path / "source" / "net.pkl"
    source.parent.mkdir(exist_ok=True)
    source.write_bytes(content)
    fields = dict(name="toy", url=source.as_uri(), filename="toy-net.pkl", sha256=hashlib.sha256(content).hexdigest(),
                  format="stylegan2-ada-pytorch-pkl", resolution=32, config="tiny", min_bytes=0)
    return PretrainedEntry(**{**fields, **overrides})


def test_registry_lists_the_reference_networks():
    registry = load_registry()
    assert set(REFERENCE_NETS) <= set(registry)
    for name, resolution in REFERENCE_NETS.items():
        entry = registry[name]
        assert entry.url.startswith("https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/")
        assert entry.url.endswith("/" + entry.filename)
        assert entry.resolution == resolution and entry.config in ("paper256", "stylegan2")
        assert entry.sha256 is None or len(entry.sha256) == 64
        assert entry.sha256 or entry.min_bytes > 100_000_000  # unknown checksum -> a real size floor
    assert registry["ffhq256"].config == "paper256"


def test_registry_ships_with_the_package_and_the_repo_copy_is_the_same_file():
    import tomllib
    from pathlib import Path

    package_dir = Path(pretrained.__file__).resolve().parent
    assert pretrained.REGISTRY_PATH.parent == package_dir  # inside the package, so a wheel install sees it
    assert set(pretrained.REGISTRY) == set(load_registry(pretrained.REGISTRY_PATH)) >= set(REFERENCE_NETS)
    root = package_dir.parent
    package_data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert pretrained.REGISTRY_PATH.name in package_data["stylegan_ada"]
    user_copy = root / "pretrained" / "registry.json"
    assert user_copy.resolve() == pretrained.REGISTRY_PATH  # a symlink: one file to edit


def test_offline_resolve_and_fetch_say_url_and_exact_path(cache, offline):
    entry = pretrained.REGISTRY["ffhq256"]
    expected = str(cache / entry.filename)
    for call in (lambda: resolve("ffhq256"), lambda: fetch("ffhq256", progress=False)):
        with pytest.raises(PretrainedMissing) as info:
            call()
        message = str(info.value)
        assert entry.url in message and expected in message and "\n" not in message
    assert not cache.exists() or not any(cache.iterdir())


def test_cli_path_offline_is_one_error_line(cache, offline):
    result = CliRunner().invoke(cli, ["pretrained", "path", "ffhq256"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert pretrained.REGISTRY["ffhq256"].url in lines[0] and str(cache) in lines[0]


def test_cli_list_and_unknown_name(cache):
    result = CliRunner().invoke(cli, ["pretrained", "list"])
    assert result.exit_code == 0
    for name in REFERENCE_NETS:
        assert name in result.output
    assert "0 on disk" in result.output
    bad = CliRunner().invoke(cli, ["pretrained", "fetch", "ffhq9999"])
    assert bad.exit_code == 2 and "unknown pretrained network 'ffhq9999'" in bad.output


def test_fetch_verifies_checksum_and_places_file_atomically(tmp_path, cache):
    content = b"\x80\x04" + bytes(range(256)) * 4000
    entry = _entry(tmp_path, content)
    path = fetch(entry, progress=False)
    assert path == cache / entry.filename and path.read_bytes() == content
    assert sorted(p.name for p in cache.iterdir()) == [entry.filename]
    assert resolve(str(path)) == path  # a path is returned as is
    assert fetch(entry, progress=False) == path  # reused (and re-verified), not downloaded again


def test_checksum_mismatch_keeps_previous_file_and_leaves_no_partial(tmp_path, cache):
    good = _entry(tmp_path, b"\x80\x04good-bytes")
    path = fetch(good, progress=False)
    bad = _entry(tmp_path, b"\x80\x04tampered!!", sha256=good.sha256)  # same name, other bytes at the source
    with pytest.raises(PretrainedChecksumError, match="sha256"):
        fetch(bad, force=True, progress=False)
    assert path.read_bytes() == b"\x80\x04good-bytes"
    assert sorted(p.name for p in cache.iterdir()) == [good.filename]
    path.write_bytes(b"\x80\x04bit-rot!!")  # a corrupt cached file is reported, not silently reused
    with pytest.raises(PretrainedChecksumError, match="--force"):
        fetch(good, progress=False)


def test_unknown_checksum_is_verified_by_size_and_format(tmp_path, cache):
    data = (FIXTURES / "tiny_reference_format.pkl").read_bytes()
    ok = _entry(tmp_path, data, sha256=None, min_bytes=len(data) // 2)
    assert fetch(ok, progress=False).read_bytes() == data
    shutil.rmtree(cache)
    with pytest.raises(PretrainedChecksumError, match="no 256px G_ema"):
        fetch(_entry(tmp_path, data, sha256=None, resolution=256), progress=False)
    with pytest.raises(PretrainedChecksumError, match="truncated download"):
        fetch(_entry(tmp_path, data[:1000], sha256=None, min_bytes=len(data)), progress=False)
    with pytest.raises(PretrainedChecksumError, match="not a readable reference network pickle"):
        fetch(_entry(tmp_path, b"<html>404 not found</html>", sha256=None), progress=False)
    assert not cache.exists() or not any(cache.iterdir())


def test_repo_pretrained_dir_is_searched(tmp_path, cache):
    entry = _entry(tmp_path, b"\x80\x04x")
    repo_dir = pretrained.REPO_PRETRAINED_DIR
    repo_dir.mkdir()
    (repo_dir / entry.filename).write_bytes(b"\x80\x04x")
    assert resolve(entry.name, registry={entry.name: entry}) == repo_dir / entry.filename


def test_cli_fetch_prints_summary(tmp_path, cache, monkeypatch):
    entry = _entry(tmp_path, b"\x80\x04" + b"w" * 5000, name="toy")
    monkeypatch.setitem(pretrained.REGISTRY, "toy", entry)
    result = CliRunner().invoke(cli, ["pretrained", "fetch", "toy"])
    assert result.exit_code == 0, result.output
    assert f"toy: {cache / entry.filename}" in result.output and "verified by sha256" in result.output
