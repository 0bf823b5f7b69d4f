// Torch bindings: argument checks, output allocation and kernel launch on the current stream.
// Only c10/cuda headers (not ATen/cuda/CUDAContext.h): that one pulls in cuBLAS/cuSPARSE headers, which
// minimal CUDA toolkits (nvcc + cudart only) do not ship.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

#include <climits>
#include <cstdlib>
#include <optional>

#include "ops_kernels.h"

namespace {

void check_launch(cudaError_t err, const char* op)
{
    TORCH_CHECK(err == cudaSuccess, op, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

OpsDtype ops_dtype(const at::Tensor& t)
{
    switch (t.scalar_type()) {
        case at::kHalf: return kOpsHalf;
        case at::kBFloat16: return kOpsBFloat16;
        case at::kFloat: return kOpsFloat;
        case at::kDouble: return kOpsDouble;
        default: break;
    }
    TORCH_CHECK(false, "unsupported dtype ", t.scalar_type(), "; expected float16, bfloat16, float32 or float64");
}

// Same sizes and, in every dimension longer than 1, the same stride (so a flat index means the same element).
bool same_layout(const at::Tensor& a, const at::Tensor& b)
{
    if (a.sizes() != b.sizes())
        return false;
    for (int64_t d = 0; d < a.dim(); ++d)
        if (a.size(d) > 1 && a.stride(d) != b.stride(d))
            return false;
    return true;
}

void check_like_x(const std::optional<at::Tensor>& t, const at::Tensor& x, const char* name)
{
    if (!t.has_value())
        return;
    TORCH_CHECK(t->device() == x.device() && t->scalar_type() == x.scalar_type(),
                "bias_act: ", name, " must have the dtype and device of x");
    TORCH_CHECK(same_layout(*t, x), "bias_act: ", name, " must have the shape and memory layout of x");
}

at::Tensor bias_act(const at::Tensor& x, const std::optional<at::Tensor>& b, const std::optional<at::Tensor>& g1,
                    const std::optional<at::Tensor>& g2, int64_t mode, int64_t dim, int64_t act, double alpha,
                    double gain, double clamp)
{
    TORCH_CHECK(x.is_cuda(), "bias_act: x must be a CUDA tensor");
    TORCH_CHECK(x.is_non_overlapping_and_dense(), "bias_act: x must be dense");
    TORCH_CHECK(mode >= 0 && mode <= 2, "bias_act: mode must be 0, 1 or 2");
    TORCH_CHECK(act >= kActLinear && act <= kActSwish, "bias_act: unknown activation code ", act);
    TORCH_CHECK(mode == 0 || g1.has_value(), "bias_act: mode ", mode, " needs g1");
    TORCH_CHECK(mode != 2 || g2.has_value(), "bias_act: mode 2 needs g2");
    check_like_x(g1, x, "g1");
    check_like_x(g2, x, "g2");
    if (b.has_value()) {
        TORCH_CHECK(b->device() == x.device() && b->scalar_type() == x.scalar_type(),
                    "bias_act: b must have the dtype and device of x");
        TORCH_CHECK(b->dim() == 1 && b->is_contiguous(), "bias_act: b must be a contiguous vector");
        TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim out of range");
        TORCH_CHECK(b->numel() == x.size(dim), "bias_act: b has ", b->numel(), " elements, x has ", x.size(dim),
                    " along dim ", dim);
    }

    const c10::cuda::OptionalCUDAGuard device_guard(device_of(x));
    at::Tensor out = at::empty_like(x);  // keeps the strides of a dense x
    TORCH_CHECK(same_layout(out, x), "bias_act: could not allocate the output in the layout of x");

    BiasActParams p;
    p.x = x.data_ptr();
    p.b = b.has_value() ? b->data_ptr() : nullptr;
    p.g1 = g1.has_value() ? g1->data_ptr() : nullptr;
    p.g2 = g2.has_value() ? g2->data_ptr() : nullptr;
    p.out = out.data_ptr();
    p.n = x.numel();
    p.bias_stride = b.has_value() && x.stride(dim) > 0 ? x.stride(dim) : 1;
    p.bias_size = b.has_value() && b->numel() > 0 ? b->numel() : 1;
    p.mode = (int)mode;
    p.act = (int)act;
    p.alpha = alpha;
    p.gain = gain;
    p.clamp = clamp;
    check_launch(launch_bias_act(p, ops_dtype(x), c10::cuda::getCurrentCUDAStream()), "bias_act");
    return out;
}

at::Tensor upfirdn2d(const at::Tensor& x, const at::Tensor& f, int64_t up_x, int64_t up_y, int64_t down_x,
                     int64_t down_y, int64_t pad_x0, int64_t pad_x1, int64_t pad_y0, int64_t pad_y1, bool flip,
                     double gain)
{
    TORCH_CHECK(x.is_cuda(), "upfirdn2d: x must be a CUDA tensor");
    TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must have shape [N, C, H, W]");
    TORCH_CHECK(f.device() == x.device(), "upfirdn2d: f must be on the device of x");
    TORCH_CHECK(f.scalar_type() == (x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat),
                "upfirdn2d: f must be float64 for float64 x, else float32");
    TORCH_CHECK(f.dim() == 2 && f.is_contiguous() && f.size(0) >= 1 && f.size(1) >= 1,
                "upfirdn2d: f must be a contiguous [fh, fw] filter");
    TORCH_CHECK(up_x >= 1 && up_y >= 1 && down_x >= 1 && down_y >= 1, "upfirdn2d: up and down must be >= 1");
    (void)ops_dtype(x);
    // Kernels index a plane with int: the upsampled, padded extent must fit comfortably.
    TORCH_CHECK(x.size(0) * x.size(1) < INT_MAX &&
                    x.size(2) * up_y + std::abs(pad_y0) + std::abs(pad_y1) < INT_MAX / 2 &&
                    x.size(3) * up_x + std::abs(pad_x0) + std::abs(pad_x1) < INT_MAX / 2,
                "upfirdn2d: x is too large");

    const int64_t fh = f.size(0), fw = f.size(1);
    const int64_t out_w = (x.size(3) * up_x + pad_x0 + pad_x1 - fw + down_x) / down_x;
    const int64_t out_h = (x.size(2) * up_y + pad_y0 + pad_y1 - fh + down_y) / down_y;
    TORCH_CHECK(out_w >= 1 && out_h >= 1, "upfirdn2d: padding/filter leave an empty output");

    const c10::cuda::OptionalCUDAGuard device_guard(device_of(x));
    at::Tensor y = at::empty({x.size(0), x.size(1), out_h, out_w}, x.options(), x.suggest_memory_format());

    Upfirdn2dParams p;
    p.x = x.data_ptr();
    p.f = f.data_ptr();
    p.y = y.data_ptr();
    p.n = (int)x.size(0);
    p.c = (int)x.size(1);
    p.in_h = (int)x.size(2);
    p.in_w = (int)x.size(3);
    p.sx_n = x.stride(0);
    p.sx_c = x.stride(1);
    p.sx_h = x.stride(2);
    p.sx_w = x.stride(3);
    p.out_h = (int)out_h;
    p.out_w = (int)out_w;
    p.sy_n = y.stride(0);
    p.sy_c = y.stride(1);
    p.sy_h = y.stride(2);
    p.sy_w = y.stride(3);
    p.fh = (int)fh;
    p.fw = (int)fw;
    p.up_x = (int)up_x;
    p.up_y = (int)up_y;
    p.down_x = (int)down_x;
    p.down_y = (int)down_y;
    p.pad_x0 = (int)pad_x0;
    p.pad_y0 = (int)pad_y0;
    p.flip = flip ? 1 : 0;
    p.gain = gain;
    check_launch(launch_upfirdn2d(p, ops_dtype(x), c10::cuda::getCurrentCUDAStream()), "upfirdn2d");
    return y;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("bias_act", &bias_act, "bias + activation + gain + clamp (mode 0) and its derivatives (modes 1, 2)",
          py::arg("x"), py::arg("b"), py::arg("g1"), py::arg("g2"), py::arg("mode"), py::arg("dim"),
          py::arg("act"), py::arg("alpha"), py::arg("gain"), py::arg("clamp"));
    m.def("upfirdn2d", &upfirdn2d, "upsample, pad, FIR filter (times gain), downsample", py::arg("x"), py::arg("f"),
          py::arg("up_x"), py::arg("up_y"), py::arg("down_x"), py::arg("down_y"), py::arg("pad_x0"),
          py::arg("pad_x1"), py::arg("pad_y0"), py::arg("pad_y1"), py::arg("flip"), py::arg("gain"));
}
