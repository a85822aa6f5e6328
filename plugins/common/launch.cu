#include "launch.h"

#include <vector>

namespace litevit
{

cudaError_t launchKernel(const KernelPair& kernels, DataKind kind, const Launch& launch,
    const void* const* inputs, int numInputs, void* output, cudaStream_t stream)
{
    const void* kernel = kind == DataKind::kFloat16 ? kernels.f16 : kernels.f32;
    if (kernel == nullptr || numInputs < 0 || (numInputs > 0 && inputs == nullptr))
    {
        return cudaErrorInvalidValue;
    }
    for (int axis = 0; axis < 3; ++axis)
    {
        if (launch.grid[axis] == 0 || launch.block[axis] == 0)
        {
            return cudaSuccess;
        }
    }
    // cudaLaunchKernel takes the address of each argument's value: keep the values alive here.
    std::vector<const void*> pointers(inputs, inputs + numInputs);
    pointers.push_back(output);
    std::vector<int32_t> scalars(launch.scalars);
    std::vector<void*> args;
    args.reserve(pointers.size() + scalars.size());
    for (const void*& pointer : pointers)
    {
        args.push_back(&pointer);
    }
    for (int32_t& scalar : scalars)
    {
        args.push_back(&scalar);
    }
    const dim3 grid(launch.grid[0], launch.grid[1], launch.grid[2]);
    const dim3 block(launch.block[0], launch.block[1], launch.block[2]);
    return cudaLaunchKernel(kernel, grid, block, args.data(), launch.shared_bytes, stream);
}

} // namespace litevit
