// Kernel parameters and launchers shared by the torch bindings (ops_bindings.cpp) and the kernels (*.cu).
// Plain C++ on purpose: the .cu files never include torch headers, which keeps nvcc fast.
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

// Element type of the tensors a kernel reads and writes. Arithmetic is float for the 16-bit types.
enum OpsDtype : int { kOpsHalf = 0, kOpsBFloat16 = 1, kOpsFloat = 2, kOpsDouble = 3 };

// Activation codes: `cuda_idx` of the activation table in stylegan_ada/ops/bias_act.py.
enum ActCode : int {
    kActLinear = 1, kActRelu = 2, kActLrelu = 3, kActTanh = 4, kActSigmoid = 5,
    kActElu = 6, kActSelu = 7, kActSoftplus = 8, kActSwish = 9,
};

// mode 0: out = clamp(gain * act(x + b))
// mode 1: out = g1 * gain * act'(x + b) * inside        (first derivative, g1 = incoming gradient)
// mode 2: out = g1 * g2 * gain * act''(x + b) * inside  (second derivative)
// `inside` is 1 where gain * act(x + b) lies within [-clamp, clamp] (always 1 when clamp < 0).
struct BiasActParams {
    const void* x;      // [n] pre-activation input, any dense layout
    const void* b;      // [bias_size] or nullptr
    const void* g1;     // [n] same layout as x, or nullptr (mode 0)
    const void* g2;     // [n] same layout as x, or nullptr (modes 0, 1)
    void* out;          // [n] same layout as x
    int64_t n;
    int64_t bias_stride;  // memory stride of the bias dimension in x
    int64_t bias_size;
    int mode;
    int act;
    double alpha;
    double gain;
    double clamp;       // < 0: no clamping
};

// One channel plane at a time: zero-insertion upsampling, zero padding (negative = crop), correlation with a
// 2D FIR filter given in "convolution" order (flip == 0) or "correlation" order (flip == 1), downsampling.
struct Upfirdn2dParams {
    const void* x;
    const void* f;      // [fh, fw] contiguous, float (double when x is double)
    void* y;
    int n, c, in_h, in_w;
    int64_t sx_n, sx_c, sx_h, sx_w;
    int out_h, out_w;
    int64_t sy_n, sy_c, sy_h, sy_w;
    int fh, fw;
    int up_x, up_y, down_x, down_y;
    int pad_x0, pad_y0;
    int flip;
    double gain;        // multiplies every filter tap
};

cudaError_t launch_bias_act(const BiasActParams& p, OpsDtype dtype, cudaStream_t stream);
cudaError_t launch_upfirdn2d(const Upfirdn2dParams& p, OpsDtype dtype, cudaStream_t stream);
