"""Check our CUDA ops: build them, compare them with the reference path, time the generator.

    .venv/bin/python tools/check_cuda_ops.py --compile-only   # any machine with nvcc (no GPU needed)
    .venv/bin/python tools/check_cuda_ops.py                  # on a GPU: everything below
    .venv/bin/python tools/check_cuda_ops.py --quick          # on a GPU: fewer combinations, no timings

On a GPU it compares impl='cuda' with impl='ref' for every activation x bias x gain x clamp x layout x dtype of
bias_act and every filter x up x down x padding x flip x gain x layout x dtype of upfirdn2d: values, first-order
gradients (x, bias, ...) and second-order gradients (x, bias, upstream gradient); runs gradcheck/gradgradcheck in
float64, large shapes that hit the kernels' grid/tile limits, the ops_io.npz fixture, and times G forward (and
forward+backward) at 256 px, batch 16, ref vs cuda, fp32 vs fp16. Prints max abs diffs, appends one JSON line to
docs/bench.jsonl (unless --no-record) and exits 1 on any mismatch or build failure.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

import bench_common  # first: puts the repository on sys.path (tools/ is on sys.path when run as a script)

from stylegan_ada import presets
from stylegan_ada.networks import Generator
from stylegan_ada.ops import bias_act as ba
from stylegan_ada.ops import cuda_backend
from stylegan_ada.ops import upfirdn2d as uf

DEFAULT_FIXTURE = bench_common.ROOT.parent / "shared" / "fixtures" / "stylegan2_ada" / "ops_io.npz"
LEVELS = ("forward", "grad", "grad2")
# Allowed max abs diff, relative to max(1, max |reference|); float16 is compared with a float32 reference.
TOLERANCE = {torch.float64: 1e-10, torch.float32: 2e-5, torch.float16: 2e-2}
OpFn = Callable[..., torch.Tensor]  # fn(impl, *inputs) -> output
# Inputs smaller than the filter or the crop (x shape, filter shape, up, down, padding): the reference path handles them
EDGE_CASES = [([1, 1, 5, 1], [4, 1], [2, 2], [2, 3], [-2, 1, 0, 1]), ([1, 2, 1, 1], [3, 3], 3, 1, [-1, -1, 0, 0]),
              ([2, 1, 2, 3], [1, 4], 1, [3, 1], [1, 2, -1, 1]), ([1, 1, 1, 1], [2, 2], 2, 2, [-1, 0, -1, 0])]


# ---------------------------------------------------------------------------------------------------- build
@contextlib.contextmanager
def captured_output(lines: list[str]) -> Iterator[None]:
    """Append what is written to fds 1/2 meanwhile (ninja runs the compilers as subprocesses) to `lines`."""
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+") as tmp:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            tmp.seek(0)
            lines.extend(tmp.read().splitlines())


def compile_extension(arch: str, fresh: bool) -> dict:
    """Build (or load) the extension; returns timing, compiler warnings and where it lives. Raises BuildError."""
    if fresh:
        os.environ[cuda_backend.CACHE_ENV] = tempfile.mkdtemp(prefix="stylegan_ada_ext_")
    if not torch.cuda.is_available() and not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        os.environ["TORCH_CUDA_ARCH_LIST"] = arch  # no GPU to ask: build for the given architecture
    archs = cuda_backend.target_archs()
    name, build_dir = cuda_backend.extension_location(archs)
    cached = (build_dir / f"{name}.so").exists()
    log: list[str] = []
    error: cuda_backend.BuildError | None = None
    start = time.perf_counter()
    try:
        with captured_output(log):
            cuda_backend.build(verbose=True)
    except cuda_backend.BuildError as exc:
        error = exc
    seconds = time.perf_counter() - start
    compiler_warnings = [line for line in log if "warning" in line.lower() and "No CUDA runtime" not in line]
    if error is not None:
        print("\n".join(log[-40:]))
        raise error
    print(f"build: {'loaded from cache' if cached else 'compiled'} in {seconds:.1f} s for arch {archs} "
          f"({len(compiler_warnings)} compiler warnings) at {build_dir}")
    for line in compiler_warnings:
        print(f"  {line}")
    return dict(compile_s=round(seconds, 1), cached=cached, archs=archs, compiler_warnings=compiler_warnings,
                build_dir=str(build_dir))


# ---------------------------------------------------------------------------------------------------- compare
def _all_levels(fn: OpFn, impl: str, inputs: list[torch.Tensor], dy: torch.Tensor,
                weights: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
    """Output, gradients w.r.t. inputs, and gradients of sum(grad * weight) w.r.t. inputs and dy."""
    xs = [t.detach().clone().requires_grad_(True) for t in inputs]
    dy = dy.detach().clone().requires_grad_(True)
    y = fn(impl, *xs)
    grads = torch.autograd.grad(y, xs, dy, create_graph=True, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, xs)]
    terms = [(g * w).sum() for g, w in zip(grads, weights) if g.requires_grad]
    second: list = [None] * (len(xs) + 1)
    if terms:
        second = list(torch.autograd.grad(sum(terms), xs + [dy], allow_unused=True))
    second = [torch.zeros_like(t) if g is None else g for g, t in zip(second, xs + [dy])]
    return {"forward": [y.detach()], "grad": [g.detach() for g in grads], "grad2": [g.detach() for g in second]}


class Checker:
    """Runs cases, keeps the worst diff per (op, level, dtype) and the failures."""

    def __init__(self) -> None:
        self.worst: dict[tuple[str, str, str], float] = {}
        self.failures: list[str] = []
        self.cases = 0

    def _record(self, op: str, level: str, dtype: torch.dtype, diff: float) -> None:
        key = (op, level, str(dtype).replace("torch.", ""))
        self.worst[key] = max(self.worst.get(key, 0.0), diff)

    def compare(self, op: str, name: str, fn: OpFn, inputs: list[torch.Tensor], levels=LEVELS) -> None:
        """impl='cuda' in the inputs' dtype vs impl='ref' (in float32 for float16 inputs)."""
        dtype = inputs[0].dtype
        ref_dtype = torch.float32 if dtype == torch.float16 else dtype
        gen = torch.Generator(device=inputs[0].device).manual_seed(self.cases)
        with torch.no_grad():
            probe = fn("ref", *[t.to(ref_dtype) for t in inputs])
        dy = torch.randn(probe.shape, generator=gen, device=probe.device, dtype=dtype)
        weights = [torch.randn(t.shape, generator=gen, device=t.device, dtype=dtype) for t in inputs]
        self.cases += 1
        ref = _all_levels(fn, "ref", [t.to(ref_dtype) for t in inputs], dy.to(ref_dtype),
                          [w.to(ref_dtype) for w in weights]) if "grad" in levels else {"forward": [probe]}
        got = _all_levels(fn, "cuda", inputs, dy, weights) if "grad" in levels else {
            "forward": [fn("cuda", *inputs).detach()]}
        for level in levels:
            for i, (a, b) in enumerate(zip(got[level], ref[level])):
                a = a.to(ref_dtype)
                diff = (a - b).abs().max().item() if a.numel() else 0.0
                scale = max(1.0, b.abs().max().item() if b.numel() else 0.0)
                self._record(op, level, dtype, diff)
                if not diff <= TOLERANCE[dtype] * scale or a.shape != b.shape:
                    self.failures.append(f"{op} {name} {level}[{i}]: max abs diff {diff:.3g} (scale {scale:.3g})")

    def fail(self, message: str) -> None:
        self.failures.append(message)

    def summary(self) -> dict[str, float]:
        return {" ".join(k): float(f"{v:.3g}") for k, v in sorted(self.worst.items())}


def _layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    return t.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else t


def check_bias_act(chk: Checker, dev: torch.device, quick: bool) -> None:
    shapes = {"nchw": ([3, 5, 6, 7], 1), "channels_last": ([3, 5, 6, 7], 1), "fc": ([12, 9], 1),
              "nchw_dim2": ([3, 5, 6, 7], 2)}
    dtypes = [torch.float32] if quick else [torch.float32, torch.float64, torch.float16]
    for act, with_b, gain, clamp, layout, dtype in itertools.product(
            ba.ACTIVATIONS, (False, True), (None, 0.5), (None, 0.7), shapes, dtypes):
        shape, dim = shapes[layout]
        alpha = 0.3 if act == "lrelu" and gain is not None else None
        x = _layout(torch.randn(shape, device=dev, dtype=torch.float64).mul(2).to(dtype), layout)
        inputs = [x] + ([torch.randn([shape[dim]], device=dev, dtype=dtype)] if with_b else [])

        def fn(impl, x, b=None, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp):
            return ba.bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp, impl=impl)

        chk.compare("bias_act", f"{act} b={with_b} alpha={alpha} gain={gain} clamp={clamp} {layout} {dtype}", fn,
                    inputs)


def check_upfirdn2d(chk: Checker, dev: torch.device, quick: bool) -> None:
    filters = {"none": None, "1331": uf.setup_filter([1, 3, 3, 1], device=dev),
               "sep8": uf.setup_filter([1, 2, 3, 4, 4, 3, 2, 1], device=dev),
               "rand3x2": torch.randn([3, 2], device=dev)}
    dtypes = [torch.float32] if quick else [torch.float32, torch.float64, torch.float16]
    for (fname, f), up, down, pad, flip, gain, layout, dtype in itertools.product(
            filters.items(), (1, 2, [1, 3]), (1, 2), (0, [1, 2, 0, 3], [-1, 2, 1, -2]), (False, True), (1, 3),
            ("nchw", "channels_last"), dtypes):
        x = _layout(torch.randn([2, 3, 9, 11], device=dev, dtype=dtype), layout)

        def fn(impl, x, f=f, up=up, down=down, pad=pad, flip=flip, gain=gain):
            return uf.upfirdn2d(x, f, up=up, down=down, padding=pad, flip_filter=flip, gain=gain, impl=impl)

        chk.compare("upfirdn2d", f"f={fname} up={up} down={down} pad={pad} flip={flip} gain={gain} {layout} "
                    f"{dtype}", fn, [x])
    for shape, taps, up, down, pad in EDGE_CASES:
        x = torch.randn(shape, device=dev, dtype=torch.float64)
        g = torch.ones(taps, device=dev, dtype=torch.float64)
        chk.compare("upfirdn2d_edge", f"x={shape} f={taps} up={up} down={down} pad={pad}",
                    lambda impl, x, g=g, up=up, down=down, pad=pad: uf.upfirdn2d(x, g, up=up, down=down, padding=pad,
                                                                               impl=impl), [x])
    f = filters["1331"]
    for name, helper in (("upsample2d", uf.upsample2d), ("downsample2d", uf.downsample2d),
                         ("filter2d", uf.filter2d)):
        x = torch.randn([2, 4, 16, 12], device=dev)
        chk.compare(name, "1331", lambda impl, x, helper=helper: helper(x, f, impl=impl), [x])


def check_large_shapes(chk: Checker, dev: torch.device) -> None:
    """Shapes that exercise the grid-stride loops, plane loop, tiling and the large-filter fallback."""
    f = uf.setup_filter([1, 3, 3, 1], device=dev)
    fwd_grad = ("forward", "grad")
    chk.compare("upfirdn2d_large", "upsample2d [4,64,128,128]",
                lambda impl, x: uf.upsample2d(x, f, impl=impl), [torch.randn([4, 64, 128, 128], device=dev)],
                fwd_grad)
    chk.compare("upfirdn2d_large", "downsample2d [4,64,256,256]",
                lambda impl, x: uf.downsample2d(x, f, impl=impl), [torch.randn([4, 64, 256, 256], device=dev)],
                fwd_grad)
    chk.compare("upfirdn2d_large", "70000 planes", lambda impl, x: uf.filter2d(x, f, impl=impl),
                [torch.randn([1, 70000, 4, 4], device=dev)], fwd_grad)
    for taps, what in ((40, "smaller tiles"), (120, "direct kernel: taps alone overflow shared memory")):
        g = torch.randn([taps, taps], device=dev) / taps
        chk.compare("upfirdn2d_large", f"{taps}x{taps} filter, down 2 ({what})",
                    lambda impl, x, g=g: uf.upfirdn2d(x, g, down=2, padding=3, impl=impl),
                    [torch.randn([1, 2, 150, 141], device=dev)], fwd_grad)
    n = 65536 * 8 * 256 + 12345  # one more than the bias_act grid covers in one sweep
    chk.compare("bias_act_large", f"{n} elements", lambda impl, x, b: ba.bias_act(x, b, act="lrelu", impl=impl),
                [torch.randn([n // 7, 7], device=dev), torch.randn([7], device=dev)], ("forward",))


def check_gradcheck(chk: Checker, dev: torch.device) -> None:
    """Numerical vs analytical first and second derivatives of the CUDA path in float64."""
    opts = dict(device=dev, dtype=torch.float64, requires_grad=True)
    f = uf.setup_filter([1, 3, 3, 1], device=dev)
    cases: list[tuple[str, Callable, tuple]] = [
        (f"bias_act {act} clamp={clamp}",
         lambda x, b, act=act, clamp=clamp: ba.bias_act(x, b, act=act, clamp=clamp, impl="cuda"),
         (torch.randn([2, 3, 4, 5], **opts), torch.randn([3], **opts)))
        for act, clamp in itertools.product(ba.ACTIVATIONS, (None, 0.8))]
    cases += [(f"upfirdn2d up={up} down={down}",
               lambda x, up=up, down=down: uf.upfirdn2d(x, f, up=up, down=down, padding=[1, 2, 0, 1], impl="cuda"),
               (torch.randn([1, 2, 6, 7], **opts),)) for up, down in ((1, 1), (2, 1), (1, 2), (2, 2))]
    for name, fn, inputs in cases:
        for check in (torch.autograd.gradcheck, torch.autograd.gradgradcheck):
            try:
                check(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)
            except Exception as exc:  # gradcheck raises GradcheckError with the offending Jacobians
                chk.fail(f"{check.__name__} {name}: {str(exc).splitlines()[0]}")
    print(f"gradcheck + gradgradcheck (float64, CUDA path): {len(cases)} cases")


def check_fixture(chk: Checker, dev: torch.device, path: Path) -> dict:
    """CUDA path against the reference implementation's own outputs (ops_io.npz), max abs diff <= 1e-5."""
    if not path.exists():
        print(f"fixture {path} not found: skipped (pass --fixture)")
        return {}
    d = {k: torch.as_tensor(v, device=dev) for k, v in np.load(path).items()}
    x, f, b = d["x"], d["filter_1331"], d["bias"]
    outputs = {
        "upfirdn2d_up2": uf.upsample2d(x, f, impl="cuda"),
        "upfirdn2d_down2": uf.downsample2d(x, f, impl="cuda"),
        "upfirdn2d_filter_pad1": uf.filter2d(x, f, padding=1, impl="cuda"),
        "upfirdn2d_general": uf.upfirdn2d(x, f, up=2, padding=[1, 2, 0, 3], flip_filter=True, gain=3, impl="cuda"),
        "bias_act_lrelu_gain_clamp": ba.bias_act(x, b, act="lrelu", gain=2, clamp=0.5, impl="cuda"),
    }
    outputs.update({f"bias_act_{act}": ba.bias_act(x, b, act=act, impl="cuda") for act in ba.ACTIVATIONS})
    diffs = {k: (v - d[k]).abs().max().item() for k, v in outputs.items()}
    for k, diff in diffs.items():
        if not diff <= 1e-5:
            chk.fail(f"fixture {k}: max abs diff {diff:.3g} > 1e-5")
    print(f"fixture ops_io.npz: {len(diffs)} arrays, worst max abs diff {max(diffs.values()):.3g}")
    return diffs


# ---------------------------------------------------------------------------------------------------- timing
def _time_ms(fn: Callable[[], object], iters: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters * 1000


@contextlib.contextmanager
def ops_impl(impl: str) -> Iterator[None]:
    old = os.environ.get("STYLEGAN_ADA_OPS")
    os.environ["STYLEGAN_ADA_OPS"] = impl
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("STYLEGAN_ADA_OPS", None)
        else:
            os.environ["STYLEGAN_ADA_OPS"] = old


def build_generator(dev: torch.device, resolution: int, batch: int) -> tuple[Generator, torch.Tensor, torch.Tensor]:
    """The thesis generator (`auto` preset: fp16 on the 4 highest resolutions, conv_clamp 256) and inputs."""
    p = presets.resolve("auto", resolution)
    torch.manual_seed(0)
    G = Generator(**p["G_kwargs"]).to(dev)
    z = torch.randn([batch, G.z_dim], device=dev)
    return G, z, torch.zeros([batch, G.c_dim], device=dev)


def compare_generator_images(chk: Checker, G: Generator, z: torch.Tensor, c: torch.Tensor) -> dict:
    """Max abs diff of G images, cuda ops vs ref ops (noise_mode='const'), in fp32 and in mixed fp16."""
    out = {}
    for precision in ("fp32", "fp16"):
        images = []
        for impl in ("ref", "cuda"):
            with ops_impl(impl), torch.no_grad():
                images.append(G(z, c, noise_mode="const", force_fp32=precision == "fp32").float())
        diff = (images[1] - images[0]).abs().max().item()
        out[precision] = float(f"{diff:.3g}")
        print(f"G image cuda vs ref ops, {precision}: max abs diff {diff:.3g}")
        if precision == "fp32" and not diff <= 1e-3:  # op differences of ~1e-6 grow through ~14 conv layers
            chk.fail(f"G image cuda vs ref fp32: max abs diff {diff:.3g} > 1e-3")
    return out


def time_generator(G: Generator, z: torch.Tensor, c: torch.Tensor, iters: int) -> dict:
    """G forward (no grad) and forward+backward ms per batch: ref vs cuda ops, fp32 vs fp16."""
    dev = z.device
    out = {}
    for impl, precision in itertools.product(("ref", "cuda"), ("fp32", "fp16")):
        force_fp32 = precision == "fp32"

        def forward() -> None:
            with torch.no_grad():
                G(z, c, noise_mode="const", force_fp32=force_fp32)

        def forward_backward() -> None:
            G.zero_grad(set_to_none=True)
            G(z, c, force_fp32=force_fp32).square().mean().backward()

        with ops_impl(impl):
            fwd = _time_ms(forward, iters, 3)
            torch.cuda.reset_peak_memory_stats(dev)
            fwd_bwd = _time_ms(forward_backward, iters, 3)
        peak = torch.cuda.max_memory_allocated(dev) / 2**30
        out[f"{impl}_{precision}"] = dict(forward_ms=round(fwd, 2), fwd_bwd_ms=round(fwd_bwd, 2),
                                          peak_gib=round(peak, 2))
        print(f"G {G.img_resolution}px batch {z.shape[0]} {impl:4s} {precision}: forward {fwd:7.2f} ms, "
              f"forward+backward {fwd_bwd:7.2f} ms, peak {peak:.2f} GiB")
    return out


# ---------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compile-only", action="store_true", help="only build the extension (no GPU needed)")
    ap.add_argument("--arch", default="9.0", help="TORCH_CUDA_ARCH_LIST when no GPU is visible (default 9.0)")
    ap.add_argument("--fresh", action="store_true", help="build in a new empty cache dir (true compile time)")
    ap.add_argument("--quick", action="store_true", help="float32 combinations only, no timings")
    ap.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--no-record", action="store_true", help="do not append to docs/bench.jsonl")
    args = ap.parse_args(argv)

    record: dict = dict(torch=torch.__version__, cuda=torch.version.cuda,
                        device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
    try:
        record.update(compile_extension(args.arch, args.fresh))
    except cuda_backend.BuildError as exc:
        print(f"build FAILED: {exc}")
        record.update(ok=False, error=str(exc))
        return _finish(record, args, 1)
    if args.compile_only:
        record.update(ok=True, mode="compile-only")
        return _finish(record, args, 0)
    if not torch.cuda.is_available():
        print("no CUDA device: only the build was checked (use --compile-only to say so)")
        record.update(ok=False, error="no CUDA device")
        return _finish(record, args, 1)

    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # the reference path's convolutions must be exact fp32
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    chk = Checker()
    start = time.perf_counter()
    check_bias_act(chk, dev, args.quick)
    check_upfirdn2d(chk, dev, args.quick)
    check_large_shapes(chk, dev)
    print(f"compared {chk.cases} cases (values, 1st and 2nd order gradients) in {time.perf_counter() - start:.1f} s")
    for key, diff in chk.summary().items():
        print(f"  max abs diff {key:32s} {diff:.3g}")
    check_gradcheck(chk, dev)
    record["fixture_diffs"] = check_fixture(chk, dev, args.fixture)
    G, z, c = build_generator(dev, args.resolution, args.batch)
    record["generator_image_diff"] = compare_generator_images(chk, G, z, c)
    if not args.quick:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = True  # torch's default for convolutions, as training runs them
        record["generator_ms"] = time_generator(G, z, c, args.iters)
        record.update(resolution=args.resolution, batch=args.batch, iters=args.iters, cudnn_benchmark=True)
    record.update(mode="quick" if args.quick else "full", cases=chk.cases, max_abs_diff=chk.summary(),
                  failures=chk.failures[:50], ok=not chk.failures)
    for line in chk.failures[:30]:
        print(f"MISMATCH {line}")
    return _finish(record, args, 1 if chk.failures else 0)


def _finish(record: dict, args: argparse.Namespace, code: int) -> int:
    verdict = "OK" if code == 0 else "FAILED"
    extra = f", {len(record.get('failures', []))} mismatches" if "failures" in record else ""
    bench_common.report("check_cuda_ops", record, f"check_cuda_ops {record.get('mode', 'build')}: {verdict} (build "
                                                  f"{record.get('compile_s', '-')} s{extra})", record=not args.no_record)
    return code


if __name__ == "__main__":
    sys.exit(main())
