// The CUDA built-ins litevit's kernels use, defined for plain C++ so that emulate.cpp can compile a
// kernel's device code with g++ and run it on the CPU.
//
// Only what the contract lets a kernel use on the device side is here: the qualifiers, the thread
// coordinates, static __shared__ memory, __syncthreads, __half storage with its float conversions,
// __ldg, float2 and CUDA's global min/max/math functions. A kernel that needs more fails to
// compile, which is the point: the emulation must not guess at semantics.
//
// The thread coordinates are plain globals: emulate.cpp runs every CUDA thread as a fiber on one OS
// thread and sets them before it switches to a fiber.
#pragma once

// A kernel source compiled as device code sees __CUDACC__ (csa_gather.h picks its __half overloads
// with it) and, under NVRTC, __CUDACC_RTC__, which hides the host-only launcher part that needs the
// CUDA runtime and the op cores. The emulator wants exactly the device part.
#define __CUDACC__ 1
#define __CUDACC_RTC__ 1

#include <cmath>
#include <cstdint>
#include <math.h> // CUDA's math functions (expf, fmaf, ...) live in the global namespace

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One instance per variable for the whole program: blocks run one after another, so it serves as
// the running block's shared memory (starting with what the previous block left, zeros for the
// first, where the GPU gives garbage). g++ knows __restrict__ itself.
#define __shared__ static

struct uint3
{
    unsigned x, y, z;
};

struct dim3
{
    unsigned x, y, z;
};

inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

// Waits until every thread of the block has arrived (emulate.cpp's fiber scheduler).
void __syncthreads();

// __half storage: _Float16 has IEEE binary16's layout and round-to-nearest-even conversions. No
// arithmetic operators, so a kernel that computes in half instead of converting fails to compile.
struct __half
{
    _Float16 value;
};

inline float __half2float(__half h)
{
    return static_cast<float>(h.value);
}

inline __half __float2half_rn(float f)
{
    return __half{static_cast<_Float16>(f)};
}

// The read-only data cache load: on the CPU just a load.
template <typename T>
inline T __ldg(const T* address)
{
    return *address;
}

struct float2
{
    float x, y;
};

inline float2 make_float2(float x, float y)
{
    return float2{x, y};
}

inline int min(int a, int b)
{
    return a < b ? a : b;
}

inline unsigned min(unsigned a, unsigned b)
{
    return a < b ? a : b;
}

inline float min(float a, float b)
{
    return fminf(a, b);
}

inline int max(int a, int b)
{
    return a > b ? a : b;
}

inline unsigned max(unsigned a, unsigned b)
{
    return a > b ? a : b;
}

inline float max(float a, float b)
{
    return fmaxf(a, b);
}
