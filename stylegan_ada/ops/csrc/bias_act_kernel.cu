// Fused bias + activation + gain + clamp, and its first and second derivatives, as one elementwise pass.
#include "ops_device.cuh"

namespace {

// Activation value f(v) and its first two derivatives. Selected branches avoid overflow producing NaN.
template <typename A>
__device__ __forceinline__ void act_eval(int act, A v, A alpha, A& f, A& d1, A& d2)
{
    const A zero = A(0), one = A(1), two = A(2);
    const A selu_scale = A(1.0507009873554804934193349852946);
    const A selu_alpha = A(1.6732632423543772848170429916717);
    const A softplus_threshold = A(20);  // same linear regime as torch.nn.functional.softplus
    const bool pos = v > zero;
    switch (act) {
        case kActRelu:
            f = pos ? v : zero; d1 = pos ? one : zero; d2 = zero;
            break;
        case kActLrelu:
            f = pos ? v : v * alpha; d1 = pos ? one : alpha; d2 = zero;
            break;
        case kActTanh: {
            const A t = m_tanh(v);
            f = t; d1 = one - t * t; d2 = -two * t * d1;
            break;
        }
        case kActSigmoid: {
            const A s = one / (one + m_exp(-v));
            f = s; d1 = s * (one - s); d2 = d1 * (one - two * s);
            break;
        }
        case kActElu: {
            const A e = m_exp(v);
            f = pos ? v : m_expm1(v); d1 = pos ? one : e; d2 = pos ? zero : e;
            break;
        }
        case kActSelu: {
            const A e = selu_scale * selu_alpha * m_exp(v);
            f = pos ? selu_scale * v : selu_scale * selu_alpha * m_expm1(v);
            d1 = pos ? selu_scale : e; d2 = pos ? zero : e;
            break;
        }
        case kActSoftplus: {
            const bool linear = v > softplus_threshold;
            const A s = one / (one + m_exp(-v));
            f = linear ? v : m_log1p(m_exp(v)); d1 = linear ? one : s; d2 = linear ? zero : s * (one - s);
            break;
        }
        case kActSwish: {
            const A s = one / (one + m_exp(-v));
            f = v * s; d1 = s * (one + v * (one - s)); d2 = s * (one - s) * (two + v * (one - two * s));
            break;
        }
        default:  // kActLinear
            f = v; d1 = one; d2 = zero;
            break;
    }
}

template <typename T, int MODE>
__global__ void bias_act_kernel(BiasActParams p)
{
    typedef typename AccType<T>::type A;
    const T* x = static_cast<const T*>(p.x);
    const T* b = static_cast<const T*>(p.b);
    const T* g1 = static_cast<const T*>(p.g1);
    const T* g2 = static_cast<const T*>(p.g2);
    T* out = static_cast<T*>(p.out);
    const A alpha = A(p.alpha), gain = A(p.gain), clamp = A(p.clamp);
    const bool clamped = p.clamp >= 0;

    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.n; i += step) {
        A v = load_acc(x + i);
        if (b != nullptr)
            v += load_acc(b + (i / p.bias_stride) % p.bias_size);
        A f, d1, d2;
        act_eval<A>(p.act, v, alpha, f, d1, d2);
        const A u = f * gain;
        A r;
        if (MODE == 0) {
            // Written with comparisons (not fmin/fmax) so that NaN propagates like torch.clamp.
            r = (clamped && u < -clamp) ? -clamp : ((clamped && u > clamp) ? clamp : u);
        } else {
            const bool inside = !clamped || (u >= -clamp && u <= clamp);
            r = load_acc(g1 + i) * gain * ((MODE == 1) ? d1 : d2);
            if (MODE == 2)
                r *= load_acc(g2 + i);
            if (!inside)
                r = A(0);
        }
        store_acc(out + i, r);
    }
}

struct BiasActLaunch {
    const BiasActParams& p;
    cudaStream_t stream;

    template <typename T>
    cudaError_t run() const
    {
        const int threads = 256;
        const int64_t wanted = (p.n + threads - 1) / threads;
        const int blocks = (int)(wanted < 65536 * 8 ? wanted : 65536 * 8);  // grid-stride loop covers the rest
        if (p.mode == 0)
            bias_act_kernel<T, 0><<<blocks, threads, 0, stream>>>(p);
        else if (p.mode == 1)
            bias_act_kernel<T, 1><<<blocks, threads, 0, stream>>>(p);
        else
            bias_act_kernel<T, 2><<<blocks, threads, 0, stream>>>(p);
        return cudaGetLastError();
    }
};

}  // namespace

cudaError_t launch_bias_act(const BiasActParams& p, OpsDtype dtype, cudaStream_t stream)
{
    if (p.n == 0)
        return cudaSuccess;
    return dispatch_dtype(dtype, BiasActLaunch{p, stream});
}
