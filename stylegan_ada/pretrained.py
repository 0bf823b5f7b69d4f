"""Registry of the reference's pretrained networks and fetching them into a cache.

The registry ships inside the package (``stylegan_ada/pretrained_registry.json``, package data, so any install
has it); the repository's ``pretrained/registry.json`` is a symlink to it for users. Files are looked up in the cache
(``$AUGMENT_CACHE``, default ``~/.cache/augment/pretrained``) and in the repository's ``pretrained/`` folder (where
users of a checkout may drop files). A download is streamed to a temp file, verified (sha256 when the registry knows it, else size
and format), and only then renamed into place. Offline, :class:`PretrainedMissing` says the URL and the exact path
to put the file at.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from stylegan_ada.fileio import atomic_copy_stream, sha256_file

REPO_PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
REGISTRY_PATH = Path(__file__).resolve().parent / "pretrained_registry.json"
CACHE_ENV = "AUGMENT_CACHE"
DEFAULT_CACHE = Path("~/.cache/augment/pretrained")


class PretrainedError(Exception):
    """A pretrained network cannot be resolved, fetched or verified; the message is one line."""


class PretrainedMissing(PretrainedError):
    """The file is not on disk and could not be downloaded; the message says the URL and where to put it."""


class PretrainedChecksumError(PretrainedError):
    """A downloaded or found file does not match the registry (checksum, size or format)."""


@dataclasses.dataclass(frozen=True)
class PretrainedEntry:
    name: str
    url: str
    filename: str
    sha256: str | None
    format: str
    resolution: int
    config: str
    min_bytes: int = 0
    description: str = ""


def load_registry(path: str | os.PathLike = REGISTRY_PATH) -> dict[str, PretrainedEntry]:
    """Name -> entry, from a registry JSON file."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {name: PretrainedEntry(name=name, **fields) for name, fields in raw["networks"].items()}


REGISTRY: dict[str, PretrainedEntry] = load_registry()


def cache_dir() -> Path:
    """Where downloads go: ``$AUGMENT_CACHE`` or ``~/.cache/augment/pretrained``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def search_dirs() -> list[Path]:
    return [cache_dir(), REPO_PRETRAINED_DIR]


def get_entry(name_or_entry: str | PretrainedEntry,
              registry: Mapping[str, PretrainedEntry] | None = None) -> PretrainedEntry:
    """The registry entry called ``name_or_entry`` (an entry passes through); PretrainedError if unknown."""
    if isinstance(name_or_entry, PretrainedEntry):
        return name_or_entry
    registry = REGISTRY if registry is None else registry
    try:
        return registry[name_or_entry]
    except KeyError:
        raise PretrainedError(f"unknown pretrained network {name_or_entry!r}; known: {', '.join(sorted(registry))} "
                              "(or give the path of a network file)") from None


def local_path(name_or_entry: str | PretrainedEntry, registry: Mapping[str, PretrainedEntry] | None = None
               ) -> Path | None:
    """The file of a registry entry if it is already on disk (cache first, then the repo's pretrained/)."""
    entry = get_entry(name_or_entry, registry)
    for folder in search_dirs():
        candidate = folder / entry.filename
        if candidate.is_file():
            return candidate
    return None


def _missing_message(entry: PretrainedEntry, reason: str) -> str:
    return (f"pretrained network {entry.name!r} is not on disk and {reason}; download {entry.url} yourself and put "
            f"it at {cache_dir() / entry.filename} (or set {CACHE_ENV} to the folder that holds {entry.filename})")


def resolve(name_or_path: str | os.PathLike, registry: Mapping[str, PretrainedEntry] | None = None) -> Path:
    """A path to an existing network file: ``name_or_path`` itself if it is a file, else the registry entry's file.

    Never downloads; raises :class:`PretrainedMissing` (URL + exact destination) when the file is absent.
    """
    as_path = Path(name_or_path).expanduser()
    if as_path.is_file():
        return as_path
    entry = get_entry(str(name_or_path), registry)
    found = local_path(entry)
    if found is None:
        raise PretrainedMissing(_missing_message(entry, "was not fetched yet (run `augment pretrained fetch "
                                                         f"{entry.name}`)"))
    return found


def verification_method(entry: PretrainedEntry) -> str:
    return "sha256" if entry.sha256 else "size+format"


def verify_file(entry: PretrainedEntry, path: str | os.PathLike, digest: str | None = None,
                shown: str | None = None) -> str:
    """Check a file against its entry; returns how it was verified ('sha256' or 'size+format').

    ``digest`` is the file's sha256 if the caller already computed it while streaming; ``shown`` names the file in
    messages (e.g. the URL of a download whose temp file is about to be removed).
    """
    shown = shown or str(path)
    size = os.path.getsize(path)
    if size < entry.min_bytes:
        raise PretrainedChecksumError(f"{entry.name}: {shown} is {size} bytes, expected at least {entry.min_bytes} "
                                      "(truncated download?)")
    if entry.sha256:
        digest = digest or sha256_file(path)
        if digest != entry.sha256.lower():
            raise PretrainedChecksumError(f"{entry.name}: sha256 of {shown} is {digest}, the registry says "
                                          f"{entry.sha256}; the file is corrupt or not the published one")
    else:
        _check_reference_pickle(entry, path, shown)
    return verification_method(entry)


def _check_reference_pickle(entry: PretrainedEntry, path: str | os.PathLike, shown: str) -> None:
    """No published checksum: prove the file is a reference snapshot of the right resolution (no code runs)."""
    from stylegan_ada.checkpoint import NetworkLoadError
    from stylegan_ada.legacy.unpickler import PersistentRecord, restricted_load

    try:
        with open(path, "rb") as f:
            data = restricted_load(f)
    except NetworkLoadError as exc:
        raise PretrainedChecksumError(f"{entry.name}: {shown} is not a readable reference network pickle ({exc})")
    g_ema = data.get("G_ema") if isinstance(data, dict) else None
    kwargs = g_ema.state.get("_init_kwargs") if isinstance(g_ema, PersistentRecord) else None
    res = kwargs.get("img_resolution") if isinstance(kwargs, dict) else None
    if res != entry.resolution:
        raise PretrainedChecksumError(f"{entry.name}: {shown} holds no {entry.resolution}px G_ema (found {res!r})")


def _open_url(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "augment-mer"})
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - registry URLs (https) or file:// in tests


def fetch(name_or_entry: str | PretrainedEntry, *, force: bool = False, progress: bool = True,
          registry: Mapping[str, PretrainedEntry] | None = None, timeout: float = 60.0) -> Path:
    """Download a registry entry into the cache (verified, atomic) and return its path.

    A file already on disk is verified and reused (``force`` downloads again); a bad one raises
    :class:`PretrainedChecksumError`.
    """
    from tqdm import tqdm

    entry = get_entry(name_or_entry, registry)
    existing = local_path(entry)
    if existing is not None and not force:
        try:
            verify_file(entry, existing)
        except PretrainedChecksumError as exc:
            raise PretrainedChecksumError(f"{exc}; delete it or run the fetch again with --force") from None
        return existing
    dest = cache_dir() / entry.filename
    try:
        response = _open_url(entry.url, timeout)
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise PretrainedMissing(_missing_message(entry, f"cannot be downloaded ({reason})")) from None
    hasher = hashlib.sha256()
    total = int(response.headers.get("Content-Length") or 0) or None
    bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"fetch {entry.name}",
               file=sys.stderr, disable=not progress)

    def on_chunk(block: bytes) -> None:
        hasher.update(block)
        bar.update(len(block))

    try:
        with response:
            atomic_copy_stream(response, dest, on_chunk=on_chunk,
                               check=lambda tmp: verify_file(entry, tmp, hasher.hexdigest(), entry.url))
    except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
        raise PretrainedMissing(_missing_message(entry, f"the download broke off ({exc})")) from None
    finally:
        bar.close()
    return dest
