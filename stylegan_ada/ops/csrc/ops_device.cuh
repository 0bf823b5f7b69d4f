// Device helpers shared by the kernels: storage type <-> arithmetic type, math overloads, index helpers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "ops_kernels.h"

// Arithmetic type of a storage type: 16-bit types compute in float.
template <typename T> struct AccType { typedef float type; };
template <> struct AccType<double> { typedef double type; };

__device__ __forceinline__ float load_acc(const __half* p) { return __half2float(*p); }
__device__ __forceinline__ float load_acc(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ float load_acc(const float* p) { return *p; }
__device__ __forceinline__ double load_acc(const double* p) { return *p; }

__device__ __forceinline__ void store_acc(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store_acc(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void store_acc(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_acc(double* p, double v) { *p = v; }

// Precise (non fast-math) single/double overloads, so templates pick the right precision.
__device__ __forceinline__ float m_exp(float v) { return expf(v); }
__device__ __forceinline__ double m_exp(double v) { return exp(v); }
__device__ __forceinline__ float m_expm1(float v) { return expm1f(v); }
__device__ __forceinline__ double m_expm1(double v) { return expm1(v); }
__device__ __forceinline__ float m_log1p(float v) { return log1pf(v); }
__device__ __forceinline__ double m_log1p(double v) { return log1p(v); }
__device__ __forceinline__ float m_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double m_tanh(double v) { return tanh(v); }

// Integer division rounding toward -inf / +inf (b > 0), and the non-negative remainder.
__host__ __device__ __forceinline__ int floor_div(int a, int b) { return (a >= 0) ? a / b : -((-a + b - 1) / b); }
__host__ __device__ __forceinline__ int ceil_div(int a, int b) { return -floor_div(-a, b); }
__host__ __device__ __forceinline__ int pos_mod(int a, int b) { int r = a % b; return (r < 0) ? r + b : r; }

// Calls body.run<StorageType>() for the runtime dtype.
template <typename Body>
cudaError_t dispatch_dtype(OpsDtype dtype, Body body)
{
    switch (dtype) {
        case kOpsHalf: return body.template run<__half>();
        case kOpsBFloat16: return body.template run<__nv_bfloat16>();
        case kOpsFloat: return body.template run<float>();
        case kOpsDouble: return body.template run<double>();
    }
    return cudaErrorInvalidValue;
}
