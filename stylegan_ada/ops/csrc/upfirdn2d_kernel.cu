// upfirdn2d: zero-insertion upsampling, padding/cropping, 2D FIR filtering and downsampling in one pass.
//
// Output pixel o (per axis) sees the upsampled+padded signal at positions j = o*down - pad0 + t for filter taps
// t = 0..taps-1; only positions that are multiples of `up` carry an input sample, x[j / up]. We therefore walk
// the taps in steps of `up`, starting at the first one that lands on a sample, and never touch inserted zeros.
#include "ops_device.cuh"

namespace {

const int kMaxThreads = 256;
const int kMaxSharedBytes = 48 * 1024;

// Tap index of the filter in correlation order (what multiplies position j + t).
__device__ __forceinline__ int filter_index(const Upfirdn2dParams& p, int ty, int tx)
{
    return p.flip ? ty * p.fw + tx : (p.fh - 1 - ty) * p.fw + (p.fw - 1 - tx);
}

struct TileShape {
    int out_w, out_h;  // outputs per block
    int in_w, in_h;    // input samples a block needs (upper bound)
    int threads;
    size_t shared_bytes;
};

// Tiled kernel: a block stages the input window of an output tile (and the filter) in shared memory, then loops
// over all channel planes with that tile.
template <typename T>
__global__ void upfirdn2d_tiled_kernel(Upfirdn2dParams p, TileShape s)
{
    typedef typename AccType<T>::type A;
    extern __shared__ __align__(16) unsigned char shared_raw[];
    A* s_f = reinterpret_cast<A*>(shared_raw);
    A* s_x = s_f + p.fh * p.fw;
    const T* x = static_cast<const T*>(p.x);
    const A* f = static_cast<const A*>(p.f);
    T* y = static_cast<T*>(p.y);
    const int tid = threadIdx.x;

    for (int k = tid; k < p.fh * p.fw; k += blockDim.x)
        s_f[k] = f[filter_index(p, k / p.fw, k % p.fw)] * A(p.gain);

    const int ox0 = blockIdx.x * s.out_w;
    const int oy0 = blockIdx.y * s.out_h;
    const int ix0 = ceil_div(ox0 * p.down_x - p.pad_x0, p.up_x);  // first input column the tile can touch
    const int iy0 = ceil_div(oy0 * p.down_y - p.pad_y0, p.up_y);

    for (int plane = blockIdx.z; plane < p.n * p.c; plane += gridDim.z) {
        const int pn = plane / p.c, pc = plane % p.c;
        const T* xp = x + pn * p.sx_n + pc * p.sx_c;
        T* yp = y + pn * p.sy_n + pc * p.sy_c;

        __syncthreads();  // the previous plane is done with s_x
        for (int k = tid; k < s.in_w * s.in_h; k += blockDim.x) {
            const int ix = ix0 + k % s.in_w, iy = iy0 + k / s.in_w;
            const bool valid = ix >= 0 && ix < p.in_w && iy >= 0 && iy < p.in_h;
            s_x[k] = valid ? load_acc(xp + iy * p.sx_h + ix * p.sx_w) : A(0);
        }
        __syncthreads();

        for (int k = tid; k < s.out_w * s.out_h; k += blockDim.x) {
            const int ox = ox0 + k % s.out_w, oy = oy0 + k / s.out_w;
            if (ox >= p.out_w || oy >= p.out_h)
                continue;
            const int jx = ox * p.down_x - p.pad_x0, jy = oy * p.down_y - p.pad_y0;
            const int tx0 = pos_mod(-jx, p.up_x), ty0 = pos_mod(-jy, p.up_y);
            const int qx0 = (jx + tx0) / p.up_x - ix0, qy0 = (jy + ty0) / p.up_y - iy0;
            A acc = A(0);
            for (int ty = ty0, qy = qy0; ty < p.fh; ty += p.up_y, ++qy)
                for (int tx = tx0, qx = qx0; tx < p.fw; tx += p.up_x, ++qx)
                    acc += s_x[qy * s.in_w + qx] * s_f[ty * p.fw + tx];
            store_acc(yp + oy * p.sy_h + ox * p.sy_w, acc);
        }
    }
}

// Fallback for filters too large to stage in shared memory: one thread per output, reading global memory.
template <typename T>
__global__ void upfirdn2d_direct_kernel(Upfirdn2dParams p)
{
    typedef typename AccType<T>::type A;
    const T* x = static_cast<const T*>(p.x);
    const A* f = static_cast<const A*>(p.f);
    T* y = static_cast<T*>(p.y);
    const A gain = A(p.gain);
    const int64_t total = (int64_t)p.n * p.c * p.out_h * p.out_w;
    const int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        const int ox = (int)(i % p.out_w), oy = (int)((i / p.out_w) % p.out_h);
        const int64_t plane = i / ((int64_t)p.out_w * p.out_h);
        const int pn = (int)(plane / p.c), pc = (int)(plane % p.c);
        const int jx = ox * p.down_x - p.pad_x0, jy = oy * p.down_y - p.pad_y0;
        const int tx0 = pos_mod(-jx, p.up_x), ty0 = pos_mod(-jy, p.up_y);
        A acc = A(0);
        for (int ty = ty0, iy = (jy + ty0) / p.up_y; ty < p.fh; ty += p.up_y, ++iy) {
            if (iy < 0 || iy >= p.in_h)
                continue;
            for (int tx = tx0, ix = (jx + tx0) / p.up_x; tx < p.fw; tx += p.up_x, ++ix)
                if (ix >= 0 && ix < p.in_w)
                    acc += load_acc(x + pn * p.sx_n + pc * p.sx_c + iy * p.sx_h + ix * p.sx_w) *
                           (f[filter_index(p, ty, tx)] * gain);
        }
        store_acc(y + pn * p.sy_n + pc * p.sy_c + oy * p.sy_h + ox * p.sy_w, acc);
    }
}

int next_pow2(int v)
{
    int r = 1;
    while (r < v)
        r <<= 1;
    return r;
}

// Tile of at most 64x16 outputs, shrunk to the image and until the staged input fits in shared memory.
// Returns false when even a 1x1 tile does not fit (huge filter).
bool choose_tile(const Upfirdn2dParams& p, size_t elem_bytes, TileShape* s)
{
    s->out_w = next_pow2(p.out_w < 64 ? p.out_w : 64);
    s->out_h = next_pow2(p.out_h < 16 ? p.out_h : 16);
    for (;;) {
        s->in_w = ((s->out_w - 1) * p.down_x + p.fw - 1) / p.up_x + 1;
        s->in_h = ((s->out_h - 1) * p.down_y + p.fh - 1) / p.up_y + 1;
        s->shared_bytes = (size_t)(p.fh * p.fw + s->in_w * s->in_h) * elem_bytes;
        if (s->shared_bytes <= (size_t)kMaxSharedBytes)
            break;
        if (s->out_h == 1 && s->out_w == 1)
            return false;
        if (s->out_h >= s->out_w)
            s->out_h = (s->out_h + 1) / 2;
        else
            s->out_w = (s->out_w + 1) / 2;
    }
    const int outputs = s->out_w * s->out_h;
    s->threads = outputs >= kMaxThreads ? kMaxThreads : ((outputs + 31) / 32) * 32;
    return true;
}

struct Upfirdn2dLaunch {
    const Upfirdn2dParams& p;
    cudaStream_t stream;

    template <typename T>
    cudaError_t run() const
    {
        typedef typename AccType<T>::type A;
        TileShape s;
        if (choose_tile(p, sizeof(A), &s)) {
            const int planes = p.n * p.c;
            dim3 grid((p.out_w + s.out_w - 1) / s.out_w, (p.out_h + s.out_h - 1) / s.out_h,
                      planes < 65535 ? planes : 65535);
            upfirdn2d_tiled_kernel<T><<<grid, s.threads, s.shared_bytes, stream>>>(p, s);
        } else {
            const int64_t total = (int64_t)p.n * p.c * p.out_h * p.out_w;
            const int64_t wanted = (total + kMaxThreads - 1) / kMaxThreads;
            upfirdn2d_direct_kernel<T><<<(int)(wanted < 65536 * 8 ? wanted : 65536 * 8), kMaxThreads, 0, stream>>>(p);
        }
        return cudaGetLastError();
    }
};

}  // namespace

cudaError_t launch_upfirdn2d(const Upfirdn2dParams& p, OpsDtype dtype, cudaStream_t stream)
{
    if ((int64_t)p.n * p.c * p.out_h * p.out_w == 0)
        return cudaSuccess;
    return dispatch_dtype(dtype, Upfirdn2dLaunch{p, stream});
}
