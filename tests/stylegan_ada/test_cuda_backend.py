"""CUDA backend on CPU: implementation selection, env override, fallback warning, build cache key, failed builds.

Nothing here compiles or needs a GPU; `tools/check_cuda_ops.py` does that (`--compile-only` without a GPU).
"""
from __future__ import annotations

import ast
import fnmatch
import tomllib
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from stylegan_ada.ops import _dispatch, bias_act, bias_act_cuda, cuda_backend, upfirdn2d, upfirdn2d_cuda

ROOT = Path(__file__).resolve().parents[2]
FAKE_CUDA_TENSOR = SimpleNamespace(device=torch.device("cuda"))  # dispatch only looks at .device


@pytest.fixture()
def loader(monkeypatch: pytest.MonkeyPatch) -> cuda_backend._Loader:
    """A fresh process-wide loader (no build attempted yet), with STYLEGAN_ADA_OPS unset."""
    fresh = cuda_backend._Loader()
    monkeypatch.setattr(cuda_backend, "_loader", fresh)
    monkeypatch.delenv(_dispatch.ENV_VAR, raising=False)
    return fresh


def _failing_build(calls: list[int], exc: Exception):
    def build(verbose: bool = False):
        calls.append(1)
        raise exc
    return build


def test_no_cuda_device_gives_none_and_exactly_one_warning(loader, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    calls: list[int] = []
    monkeypatch.setattr(cuda_backend, "build", _failing_build(calls, AssertionError("must not build")))
    with pytest.warns(RuntimeWarning, match="CUDA ops unavailable.*no CUDA device.*STYLEGAN_ADA_OPS=ref"):
        assert cuda_backend.load() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise here
        assert cuda_backend.load() is None
        assert cuda_backend.load() is None
    assert calls == []
    assert "no CUDA device" in cuda_backend.last_error()


@pytest.mark.parametrize("exc", [cuda_backend.BuildError("build failed: foo.cu(3): error: boom (details: x.log)"),
                                 ImportError("undefined symbol: _ZN3c10"), OSError("disk full")])
def test_failed_build_falls_back_once_and_is_not_retried(loader, monkeypatch, exc):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    calls: list[int] = []
    monkeypatch.setattr(cuda_backend, "build", _failing_build(calls, exc))
    with pytest.warns(RuntimeWarning, match="using the slower reference path") as record:
        assert cuda_backend.load() is None
    assert len(record) == 1 and str(exc) in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cuda_backend.load() is None
    assert calls == [1]
    assert str(exc) in cuda_backend.last_error()


def test_successful_build_is_cached_and_serves_both_ops(loader, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    module = SimpleNamespace(bias_act=None, upfirdn2d=None)
    calls: list[int] = []

    def build(verbose: bool = False):
        calls.append(1)
        return module

    monkeypatch.setattr(cuda_backend, "build", build)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cuda_backend.load() is module
        assert cuda_backend.load() is module
    assert calls == [1] and cuda_backend.last_error() is None


def test_cuda_backend_only_builds_it_imports_none_of_the_ops():
    """The backend is a leaf: the ops reach it, never the other way round (that was an import circle)."""
    tree = ast.parse(Path(cuda_backend.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [name for name in imported if name.startswith("stylegan_ada")]
    assert "importlib" not in imported and not hasattr(cuda_backend, "__getattr__")


def test_dispatch_takes_the_cuda_path_only_when_the_build_works(loader, monkeypatch):
    monkeypatch.setattr(cuda_backend, "load", lambda: SimpleNamespace())
    assert _dispatch.use_cuda("bias_act", FAKE_CUDA_TENSOR, "auto") is True
    assert _dispatch.use_cuda("upfirdn2d", FAKE_CUDA_TENSOR, "cuda") is True
    assert _dispatch.use_cuda("upfirdn2d", FAKE_CUDA_TENSOR, "ref") is False
    monkeypatch.setenv(_dispatch.ENV_VAR, "ref")
    assert _dispatch.use_cuda("bias_act", FAKE_CUDA_TENSOR, "auto") is False

    monkeypatch.delenv(_dispatch.ENV_VAR)
    monkeypatch.setattr(cuda_backend, "load", lambda: None)
    assert _dispatch.use_cuda("bias_act", FAKE_CUDA_TENSOR, "auto") is False  # fallback to the reference
    with pytest.raises(RuntimeError, match="impl='cuda'.*not available"):
        _dispatch.use_cuda("bias_act", FAKE_CUDA_TENSOR, "cuda")


def test_each_op_calls_its_own_cuda_glue_when_dispatch_says_so(monkeypatch):
    x = torch.linspace(-1, 1, 12).reshape(2, 6, 1, 1)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    calls: list[tuple] = []
    monkeypatch.setattr(bias_act_cuda, "cuda_bias_act", lambda *a, **k: calls.append(("bias_act", k)) or "b")
    monkeypatch.setattr(upfirdn2d_cuda, "cuda_upfirdn2d", lambda *a, **k: calls.append(("upfirdn2d", k)) or "u")
    for module in (bias_act, upfirdn2d):
        monkeypatch.setattr(module, "use_cuda", lambda op, t, impl: impl == "cuda")
    assert bias_act.bias_act(x, act="lrelu", gain=2.0, impl="cuda") == "b"
    assert upfirdn2d.upfirdn2d(x, f, up=2, impl="cuda") == "u"
    assert [name for name, _ in calls] == ["bias_act", "upfirdn2d"]
    assert calls[0][1]["act"] == "lrelu" and calls[0][1]["gain"] == 2.0 and calls[1][1]["up"] == 2
    assert torch.equal(bias_act.bias_act(x, act="lrelu", impl="ref"), bias_act.bias_act_ref(x, act="lrelu"))
    assert len(calls) == 2


def _ops_on_cpu(impl: str) -> list[torch.Tensor]:
    x = torch.linspace(-2, 2, 2 * 3 * 5 * 4).reshape(2, 3, 5, 4)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    return [bias_act.bias_act(x, torch.ones(3), act="lrelu", clamp=1.0, impl=impl),
            upfirdn2d.upsample2d(x, f, impl=impl)]


def test_cpu_tensors_never_touch_the_cuda_backend(loader, monkeypatch):
    monkeypatch.setattr(cuda_backend, "load", lambda: pytest.fail("load() called for a CPU tensor"))
    expected = _ops_on_cpu("ref")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for got, want in zip(_ops_on_cpu("auto"), expected):
            assert torch.equal(got, want)
        monkeypatch.setenv(_dispatch.ENV_VAR, "ref")
        for got, want in zip(_ops_on_cpu("auto"), expected):
            assert torch.equal(got, want)


@pytest.mark.parametrize("how", ["argument", "env"])
def test_impl_cuda_on_a_cpu_tensor_is_a_clear_error(loader, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv(_dispatch.ENV_VAR, "cuda")
    with pytest.raises(RuntimeError, match="impl='cuda' needs a tensor on a CUDA device, got cpu"):
        _ops_on_cpu("cuda" if how == "argument" else "auto")


def test_invalid_env_value_is_rejected(loader, monkeypatch):
    monkeypatch.setenv(_dispatch.ENV_VAR, "fast")
    with pytest.raises(ValueError, match="STYLEGAN_ADA_OPS must be one of"):
        _ops_on_cpu("auto")


def test_cache_location_follows_env_and_key_tracks_sources_and_arch(monkeypatch, tmp_path):
    monkeypatch.setenv(cuda_backend.CACHE_ENV, str(tmp_path / "ext"))
    name, build_dir = cuda_backend.extension_location("9.0")
    assert build_dir == tmp_path / "ext" / name and name.startswith("stylegan_ada_ops_")
    assert cuda_backend.extension_location("9.0") == (name, build_dir)  # stable
    assert cuda_backend.extension_location("8.6")[0] != name
    monkeypatch.delenv(cuda_backend.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cuda_backend.cache_root() == tmp_path / "xdg" / "stylegan_ada" / "torch_extensions"

    edited = tmp_path / "csrc"
    edited.mkdir()
    for src in cuda_backend.SOURCES + cuda_backend.HEADERS:
        (edited / src).write_bytes((cuda_backend.CSRC_DIR / src).read_bytes())
    monkeypatch.setattr(cuda_backend, "CSRC_DIR", edited)
    assert cuda_backend.build_key("9.0") == cuda_backend.build_key("9.0")
    key = cuda_backend.build_key("9.0")
    (edited / "bias_act_kernel.cu").write_text("// edited\n", encoding="utf-8")
    assert cuda_backend.build_key("9.0") != key
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    assert cuda_backend.build_key("9.0") != key


def test_build_without_gpu_or_arch_list_says_what_to_set(monkeypatch):
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    with pytest.raises(cuda_backend.BuildError, match="TORCH_CUDA_ARCH_LIST"):
        cuda_backend.build()
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(cuda_backend.BuildError, match="has no CUDA support"):
        cuda_backend.build()


def test_compiler_failure_becomes_one_line_build_error_with_log(monkeypatch, tmp_path):
    from torch.utils import cpp_extension

    monkeypatch.setenv(cuda_backend.CACHE_ENV, str(tmp_path))
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0")
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(cuda_backend, "_find_cuda_home", lambda cpp: "/opt/cuda")
    monkeypatch.setattr(cuda_backend, "_ensure_ninja", lambda: None)
    dump = ("Error building extension 'stylegan_ada_ops_x':\n[1/4] nvcc -c bias_act_kernel.cu\n"
            "bias_act_kernel.cu(12): error: identifier \"foo\" is undefined\nninja: build stopped\n")

    def load(**kwargs):
        assert kwargs["build_directory"].startswith(str(tmp_path))
        assert all(Path(s).is_file() for s in kwargs["sources"])  # staged copies of our sources
        raise RuntimeError(dump)

    monkeypatch.setattr(cpp_extension, "load", load)
    with pytest.raises(cuda_backend.BuildError) as info:
        cuda_backend.build()
    message = str(info.value)
    assert "\n" not in message and 'identifier "foo" is undefined' in message
    log = Path(message.rsplit("details: ", 1)[1].rstrip(")"))
    assert log.is_file() and "ninja: build stopped" in log.read_text()


def test_cuda_home_skips_roots_without_headers(monkeypatch, tmp_path):
    def toolkit(root: Path, headers: bool) -> Path:
        (root / "bin").mkdir(parents=True)
        (root / "bin" / "nvcc").write_text("#!/bin/sh\n")
        if headers:
            (root / "include").mkdir()
            (root / "include" / "cuda_runtime.h").write_text("")
        return root

    wrapper_only, full = toolkit(tmp_path / "usr_local", False), toolkit(tmp_path / "cuda", True)
    monkeypatch.setenv("CUDA_HOME", str(wrapper_only))
    fake_cpp = SimpleNamespace(CUDA_HOME=str(full))
    assert cuda_backend._find_cuda_home(fake_cpp) == str(full)
    assert fake_cpp.CUDA_HOME == str(full)


def test_every_source_is_shipped_in_the_wheel():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = patterns["stylegan_ada"]
    for name in cuda_backend.SOURCES + cuda_backend.HEADERS:
        assert (cuda_backend.CSRC_DIR / name).is_file()
        assert any(fnmatch.fnmatch(f"ops/csrc/{name}", p) for p in shipped), name
