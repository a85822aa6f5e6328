// Runs one of litevit's CUDA kernels on the CPU, to test its index math and arithmetic where no GPU
// is available (tests/plugins/test_kernels_emulated.py builds and drives it).
//
// Build (one program per kernel source; cuda_host_shim.h stands in for the CUDA built-ins, so the
// <cuda_fp16.h> the kernels include must be an empty stand-in in some include directory):
//   g++ -std=c++20 -O2 -Wno-unknown-pragmas -I<stand-in dir> -I<this dir>
//       -DLITEVIT_KERNEL_SOURCE='"path/op_kernel.cu"' -DLITEVIT_KERNEL_F32=litevit_op_f32
//       -DLITEVIT_KERNEL_F16=litevit_op_f16 emulate.cpp
//
// Usage: emulate f32|f16 GRID BLOCK SCALARS OUTPUT_ELEMENTS OUTPUT WRITES INPUT...
//   GRID, BLOCK  "x,y,z", as Launch.grid and Launch.block
//   SCALARS      the int32 kernel arguments after the pointers, comma-separated (Launch.scalars)
//   INPUT        the kernel's inputs in ONNX input order, raw arrays of the dtype
// It writes OUTPUT (OUTPUT_ELEMENTS raw values of the dtype) and WRITES (one int32 per output
// element: how many CUDA threads stored to it; the contract wants exactly one owner each). Errors
// (a launch CUDA would refuse, stores outside the output, a divergent __syncthreads) are one line on
// stderr and exit status 1; bad usage exits 2.
//
// How the GPU's behaviour is reproduced:
// * Threads: the threads of a block are fibers (ucontext) on this one OS thread, run in threadIdx
//   order until they exit or reach __syncthreads; once all of them wait at the barrier, all go on.
//   Blocks run one after another. That is deterministic and needs no OS thread per CUDA thread;
//   a barrier that some threads of the block never reach because they exited is an error, as it is
//   undefined behaviour on the GPU.
// * Ownership: the output starts filled with a NaN sentinel no kernel computes. Whenever a fiber
//   stops, the elements that differ from the sentinel are exactly those it stored since it last
//   ran: they are counted, moved to the result and reset to the sentinel, so a second thread storing
//   to the same element is seen even when it stores the same value. Guard zones around the output
//   catch stores past either end. The scan is O(output) per stop: meant for small tensors.
// * Inputs lie between NaN guard zones, so a read just past a tensor's ends poisons the output
//   instead of reading valid data of a neighbouring allocation.
#include "cuda_host_shim.h"

#include LITEVIT_KERNEL_SOURCE

#include <ucontext.h>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace emulator
{

// Elements of guard zone on each side of every input and of the output.
constexpr size_t kGuardElements = 256;
// Kernels keep a few dozen registers' worth of locals; this is far more than -O2 code needs.
constexpr size_t kFiberStackBytes = 64 * 1024;

// Bit patterns per storage type: compared as integers, since the sentinel is a NaN.
template <typename T>
struct Bits;

template <>
struct Bits<float>
{
    using Word = uint32_t;
    static constexpr Word kSentinel = 0x7fbadbad; // a signalling NaN: arithmetic never yields it
    static constexpr Word kNaN = 0x7fc00000;
};

template <>
struct Bits<__half>
{
    using Word = uint16_t;
    static constexpr Word kSentinel = 0x7dad; // a signalling NaN
    static constexpr Word kNaN = 0x7e00;
};

template <typename T>
T fromBits(typename Bits<T>::Word word)
{
    return std::bit_cast<T>(word);
}

template <typename T>
bool isSentinel(T value)
{
    return std::bit_cast<typename Bits<T>::Word>(value) == Bits<T>::kSentinel;
}

// The threads of one block as fibers on the calling OS thread (see the file comment).
class BlockScheduler
{
public:
    explicit BlockScheduler(dim3 block)
        : block_(block)
        , threads_(block.x * block.y * block.z)
        , fibers_(threads_)
        , states_(threads_)
        , stacks_(new std::byte[threads_ * kFiberStackBytes])
    {
    }

    // Runs `thread` as every thread of block blockIdx; afterStop() runs whenever a fiber stops.
    void run(const std::function<void()>& thread, const std::function<void()>& afterStop)
    {
        running_ = this;
        thread_ = &thread;
        for (unsigned t = 0; t < threads_; ++t)
        {
            getcontext(&fibers_[t]);
            fibers_[t].uc_stack.ss_sp = stacks_.get() + t * kFiberStackBytes;
            fibers_[t].uc_stack.ss_size = kFiberStackBytes;
            fibers_[t].uc_link = &scheduler_;
            makecontext(&fibers_[t], fiberMain, 0);
            states_[t] = State::kRunnable;
        }
        for (;;)
        {
            for (current_ = 0; current_ < threads_; ++current_)
            {
                if (states_[current_] == State::kRunnable)
                {
                    threadIdx = uint3{current_ % block_.x, current_ / block_.x % block_.y,
                        current_ / (block_.x * block_.y)};
                    swapcontext(&scheduler_, &fibers_[current_]);
                    afterStop();
                }
            }
            unsigned waiting = 0;
            for (State state : states_)
            {
                waiting += state == State::kAtBarrier;
            }
            if (waiting == 0)
            {
                break;
            }
            if (waiting != threads_)
            {
                throw std::runtime_error("block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y)
                    + "," + std::to_string(blockIdx.z) + "): " + std::to_string(waiting) + " of "
                    + std::to_string(threads_) + " threads wait at __syncthreads() while the others have"
                    + " exited (a barrier in divergent code)");
            }
            for (State& state : states_)
            {
                state = State::kRunnable;
            }
        }
        running_ = nullptr;
    }

    // __syncthreads() of the running fiber: park it until the whole block has arrived.
    static void syncthreads()
    {
        BlockScheduler& self = *running_;
        self.states_[self.current_] = State::kAtBarrier;
        swapcontext(&self.fibers_[self.current_], &self.scheduler_);
    }

private:
    enum class State
    {
        kRunnable,
        kAtBarrier,
        kExited,
    };

    // A fiber's body; returning resumes the scheduler through uc_link.
    static void fiberMain()
    {
        BlockScheduler& self = *running_;
        (*self.thread_)();
        self.states_[self.current_] = State::kExited;
    }

    // makecontext passes no pointer portably: the fibers find their scheduler here.
    static inline BlockScheduler* running_ = nullptr;

    dim3 block_;
    unsigned threads_;
    std::vector<ucontext_t> fibers_;
    std::vector<State> states_;
    std::unique_ptr<std::byte[]> stacks_; // uninitialised: only the pages a fiber touches are mapped
    ucontext_t scheduler_{};
    unsigned current_ = 0;
    const std::function<void()>* thread_ = nullptr;
};

// The kernel's output with its guard zones, and who stored to it (see the file comment).
template <typename T>
class TrackedOutput
{
public:
    explicit TrackedOutput(size_t elements)
        : buffer_(kGuardElements + elements + kGuardElements, fromBits<T>(Bits<T>::kSentinel))
        , result_(elements, fromBits<T>(Bits<T>::kSentinel))
        , writes_(elements, 0)
    {
    }

    T* data()
    {
        return buffer_.data() + kGuardElements;
    }

    // Moves what the fiber that just stopped stored into the result, counting each element once.
    void collect()
    {
        for (size_t i = 0; i < buffer_.size(); ++i)
        {
            if (isSentinel(buffer_[i]))
            {
                continue;
            }
            if (i < kGuardElements || i >= kGuardElements + result_.size())
            {
                outside_.push_back(static_cast<std::ptrdiff_t>(i) - static_cast<std::ptrdiff_t>(kGuardElements));
            }
            else
            {
                result_[i - kGuardElements] = buffer_[i];
                ++writes_[i - kGuardElements];
            }
            buffer_[i] = fromBits<T>(Bits<T>::kSentinel);
        }
    }

    void checkInside() const
    {
        if (!outside_.empty())
        {
            throw std::runtime_error(std::to_string(outside_.size()) + " stores outside the "
                + std::to_string(result_.size()) + "-element output, the first at element offset "
                + std::to_string(outside_.front()));
        }
    }

    const std::vector<T>& result() const
    {
        return result_;
    }

    const std::vector<int32_t>& writes() const
    {
        return writes_;
    }

private:
    std::vector<T> buffer_;
    std::vector<T> result_;
    std::vector<int32_t> writes_;
    std::vector<std::ptrdiff_t> outside_; // offsets from the output's first element
};

// An input file's values between NaN guard zones.
template <typename T>
std::vector<T> readGuarded(const std::string& path)
{
    std::ifstream file(path, std::ios::binary | std::ios::ate);
    if (!file)
    {
        throw std::runtime_error("cannot read " + path);
    }
    const auto bytes = static_cast<size_t>(file.tellg());
    if (bytes % sizeof(T) != 0)
    {
        throw std::runtime_error(path + " holds " + std::to_string(bytes) + " bytes, not whole "
            + std::to_string(sizeof(T)) + "-byte values");
    }
    std::vector<T> values(kGuardElements + bytes / sizeof(T) + kGuardElements, fromBits<T>(Bits<T>::kNaN));
    file.seekg(0);
    file.read(reinterpret_cast<char*>(values.data() + kGuardElements), static_cast<std::streamsize>(bytes));
    return values;
}

template <typename V>
void writeFile(const std::string& path, const std::vector<V>& values)
{
    std::ofstream file(path, std::ios::binary);
    file.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(V)));
    if (!file)
    {
        throw std::runtime_error("cannot write " + path);
    }
}

// What a kernel parameter is in the contract: inputs (const T*), then the output (T*), then int32s.
enum class Role
{
    kInput,
    kOutput,
    kScalar,
    kOther,
};

template <typename T, typename Param>
constexpr Role roleOf()
{
    if constexpr (std::is_same_v<Param, const T*>)
    {
        return Role::kInput;
    }
    else if constexpr (std::is_same_v<Param, T*>)
    {
        return Role::kOutput;
    }
    else if constexpr (std::is_same_v<Param, int>)
    {
        return Role::kScalar;
    }
    else
    {
        return Role::kOther;
    }
}

template <typename T, typename... Params>
constexpr bool followsContract()
{
    constexpr std::array<Role, sizeof...(Params)> roles{roleOf<T, Params>()...};
    size_t i = 0;
    while (i < roles.size() && roles[i] == Role::kInput)
    {
        ++i;
    }
    if (i == roles.size() || roles[i] != Role::kOutput)
    {
        return false;
    }
    ++i;
    while (i < roles.size() && roles[i] == Role::kScalar)
    {
        ++i;
    }
    return i == roles.size();
}

template <typename T, typename... Params>
constexpr size_t countRole(Role role)
{
    return ((roleOf<T, Params>() == role ? 1 : 0) + ... + 0);
}

// The value of the kernel parameter at `position`, whose type is Param.
template <typename T, typename Param>
Param argument(
    size_t position, const std::vector<std::vector<T>>& inputs, T* output, const std::vector<int>& scalars)
{
    if constexpr (roleOf<T, Param>() == Role::kInput)
    {
        return inputs[position].data() + kGuardElements;
    }
    else if constexpr (roleOf<T, Param>() == Role::kOutput)
    {
        return output;
    }
    else
    {
        return scalars[position - inputs.size() - 1];
    }
}

struct Arguments
{
    std::string dtype;
    dim3 grid;
    dim3 block;
    std::vector<int> scalars;
    size_t outputElements;
    std::string output;
    std::string writes;
    std::vector<std::string> inputs;
};

// Thrown for command lines that do not follow the usage.
struct UsageError : std::runtime_error
{
    using std::runtime_error::runtime_error;
};

long long parseInteger(const std::string& text, long long low, long long high, const char* what)
{
    size_t used = 0;
    long long value = 0;
    try
    {
        value = std::stoll(text, &used);
    }
    catch (const std::logic_error&)
    {
        used = 0;
    }
    if (used == 0 || used != text.size() || value < low || value > high)
    {
        throw UsageError(std::string(what) + " must be an integer in [" + std::to_string(low) + ", "
            + std::to_string(high) + "]; got '" + text + "'");
    }
    return value;
}

std::vector<long long> parseList(const std::string& text, long long low, long long high, const char* what)
{
    std::vector<long long> values;
    size_t start = 0;
    while (start < text.size())
    {
        size_t end = text.find(',', start);
        end = end == std::string::npos ? text.size() : end;
        values.push_back(parseInteger(text.substr(start, end - start), low, high, what));
        start = end + 1;
    }
    return values;
}

dim3 parseDim3(const std::string& text, const char* what)
{
    const std::vector<long long> values = parseList(text, 0, UINT32_MAX, what);
    if (values.size() != 3)
    {
        throw UsageError(std::string(what) + " must be x,y,z; got '" + text + "'");
    }
    return dim3{static_cast<unsigned>(values[0]), static_cast<unsigned>(values[1]),
        static_cast<unsigned>(values[2])};
}

Arguments parseArguments(int argc, char** argv)
{
    if (argc < 8)
    {
        throw UsageError("usage: emulate f32|f16 GRID BLOCK SCALARS OUTPUT_ELEMENTS OUTPUT WRITES INPUT...");
    }
    Arguments args;
    args.dtype = argv[1];
    if (args.dtype != "f32" && args.dtype != "f16")
    {
        throw UsageError("the dtype must be f32 or f16; got '" + args.dtype + "'");
    }
    args.grid = parseDim3(argv[2], "GRID");
    args.block = parseDim3(argv[3], "BLOCK");
    for (long long scalar : parseList(argv[4], INT32_MIN, INT32_MAX, "each scalar"))
    {
        args.scalars.push_back(static_cast<int>(scalar));
    }
    args.outputElements = static_cast<size_t>(parseInteger(argv[5], 0, INT64_MAX, "OUTPUT_ELEMENTS"));
    args.output = argv[6];
    args.writes = argv[7];
    args.inputs.assign(argv + 8, argv + argc);
    return args;
}

// The limits under which cudaLaunchKernel accepts a launch (compute capability 7.0 and later).
void checkLaunchLimits(dim3 grid, dim3 block)
{
    const unsigned long long threads = 1ull * block.x * block.y * block.z;
    if (threads > 1024 || block.z > 64 || grid.x > INT32_MAX || grid.y > 65535 || grid.z > 65535)
    {
        throw std::runtime_error("CUDA refuses grid (" + std::to_string(grid.x) + "," + std::to_string(grid.y) + ","
            + std::to_string(grid.z) + ") x block (" + std::to_string(block.x) + "," + std::to_string(block.y) + ","
            + std::to_string(block.z) + "): at most 1024 threads per block, block z <= 64, grid y, z <= 65535");
    }
}

template <typename T, typename... Params>
void emulate(void (*kernel)(Params...), const Arguments& args)
{
    static_assert(followsContract<T, Params...>(), "a kernel takes const T* inputs, then T* output, then ints");
    constexpr size_t numInputs = countRole<T, Params...>(Role::kInput);
    constexpr size_t numScalars = countRole<T, Params...>(Role::kScalar);
    if (args.inputs.size() != numInputs || args.scalars.size() != numScalars)
    {
        throw UsageError("the kernel takes " + std::to_string(numInputs) + " inputs and " + std::to_string(numScalars)
            + " scalars; got " + std::to_string(args.inputs.size()) + " and " + std::to_string(args.scalars.size()));
    }
    checkLaunchLimits(args.grid, args.block);
    std::vector<std::vector<T>> inputs;
    for (const std::string& path : args.inputs)
    {
        inputs.push_back(readGuarded<T>(path));
    }
    TrackedOutput<T> output(args.outputElements);
    const std::function<void()> thread = [&]
    {
        [&]<size_t... Position>(std::index_sequence<Position...>)
        {
            kernel(argument<T, Params>(Position, inputs, output.data(), args.scalars)...);
        }(std::index_sequence_for<Params...>());
    };
    const std::function<void()> afterStop = [&] { output.collect(); };

    gridDim = args.grid;
    blockDim = args.block;
    BlockScheduler scheduler(args.block);
    for (unsigned z = 0; z < args.grid.z; ++z)
    {
        for (unsigned y = 0; y < args.grid.y; ++y)
        {
            for (unsigned x = 0; x < args.grid.x; ++x)
            {
                blockIdx = uint3{x, y, z};
                scheduler.run(thread, afterStop);
            }
        }
    }
    output.checkInside();
    writeFile(args.output, output.result());
    writeFile(args.writes, output.writes());
}

} // namespace emulator

void __syncthreads()
{
    emulator::BlockScheduler::syncthreads();
}

int main(int argc, char** argv)
{
    try
    {
        const emulator::Arguments args = emulator::parseArguments(argc, argv);
        if (args.dtype == "f32")
        {
            emulator::emulate<float>(LITEVIT_KERNEL_F32, args);
        }
        else
        {
            emulator::emulate<__half>(LITEVIT_KERNEL_F16, args);
        }
    }
    catch (const emulator::UsageError& error)
    {
        std::cerr << "emulate: " << error.what() << "\n";
        return 2;
    }
    catch (const std::exception& error)
    {
        std::cerr << "emulate: " << error.what() << "\n";
        return 1;
    }
    return 0;
}
