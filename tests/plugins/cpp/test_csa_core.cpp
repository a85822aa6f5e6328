// Host-side tests of CSA's plugin core and of the kernel's index math (csa_gather.h), run by
// tests/plugins/test_csa_core.py:
//
//   test_csa_core selfcheck          window ranges vs brute force, launch coverage (every output
//                                    element owned by exactly one thread), attribute round trip;
//                                    prints "ok ..." lines, exits 1 on the first failure
//   test_csa_core info               "<kName> <kNumInputs> <attributeNames...>"
//   test_csa_core cases < lines      per line "name=v[,v...] ...; attn d0 d1 d2 d3; values d0 ..":
//                                    "ok dims <outputDims evaluated> rules <rules> launch <...>"
//                                    or "error <sentence>", for comparison with spec.py
//   test_csa_core emulate IN OUT     runs every thread of the launch through the kernel's own code
//                                    (threadElement + gatherElement, FP32) on the tensors in IN,
//                                    writes the output to OUT; unwritten elements stay NaN
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../../plugins/csa/csa_core.h"
#include "../../../plugins/csa/csa_gather.h"

namespace
{

namespace csa = litevit::csa;
using litevit::AffineDim;
using litevit::AttributeMap;
using litevit::CsaOp;
using litevit::Launch;
using litevit::Shape;

void require(bool condition, const std::string& what)
{
    if (!condition)
    {
        throw std::runtime_error(what);
    }
}

// The geometry the kernel builds from its scalar arguments, taken positionally as it does.
csa::Geometry kernelGeometry(const Launch& launch)
{
    require(launch.scalars.size() == 8, "CSA's kernel takes 8 scalars");
    const std::vector<int32_t>& s = launch.scalars;
    return csa::makeGeometry(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
}

AttributeMap attributeMap(int heads, int kernelSize, int stride, int padding, int channels)
{
    return AttributeMap{{"heads", {heads}}, {"kernel_size", {kernelSize}}, {"stride", {stride}},
        {"padding", {padding}}, {"channels", {channels}}};
}

// Every (window, target offset) pair along one axis lands where coveringWindows says, and only
// there; positions some window reaches are exactly 0 .. foldSize - 1.
void checkWindowRanges()
{
    int checked = 0;
    for (int kernelSize = 1; kernelSize <= 5; ++kernelSize)
    {
        for (int stride = 1; stride <= 5; ++stride)
        {
            for (int padding = 0; padding < kernelSize; ++padding)
            {
                for (int windows = 1; windows <= 6; ++windows)
                {
                    const int size = csa::foldSize(windows, kernelSize, stride, padding);
                    int furthest = -1;
                    for (int w = 0; w < windows; ++w)
                    {
                        for (int t = 0; t < kernelSize; ++t)
                        {
                            furthest = std::max(furthest, stride * w + t - padding);
                        }
                    }
                    require(furthest == size - 1, "foldSize is not the furthest position a window reaches");
                    for (int position = 0; position < size; ++position)
                    {
                        int first = 0;
                        int last = 0;
                        csa::coveringWindows(
                            position, windows, kernelSize, stride, padding, first, last);
                        for (int w = 0; w < windows; ++w)
                        {
                            const int target = position + padding - stride * w;
                            const bool covers = target >= 0 && target < kernelSize;
                            require(covers == (w >= first && w <= last),
                                "coveringWindows disagrees with brute force at k="
                                    + std::to_string(kernelSize) + " s=" + std::to_string(stride)
                                    + " p=" + std::to_string(padding)
                                    + " windows=" + std::to_string(windows) + " position="
                                    + std::to_string(position) + " window=" + std::to_string(w));
                        }
                        ++checked;
                    }
                }
            }
        }
    }
    std::cout << "ok window ranges " << checked << " positions\n";
}

// Enumerates every (block, thread) of the launch grid through the kernel's threadElement.
void checkCoverage(const AttributeMap& attributes, const std::vector<Shape>& inputs)
{
    const CsaOp op = CsaOp::fromAttributes(attributes);
    const Launch launch = op.launch(inputs);
    require(launch.grid[1] == 1 && launch.grid[2] == 1 && launch.block[1] == 1 && launch.block[2] == 1,
        "CSA launches a 1-D grid of 1-D blocks");
    require(launch.block[0] == static_cast<uint32_t>(csa::kBlockSize), "block size is kBlockSize");
    require(launch.shared_bytes == 0, "no shared memory");
    const csa::Geometry g = kernelGeometry(launch);
    const int count = csa::outputCount(g);
    std::vector<int> hits(static_cast<size_t>(count), 0);
    for (uint32_t block = 0; block < launch.grid[0]; ++block)
    {
        for (uint32_t thread = 0; thread < launch.block[0]; ++thread)
        {
            csa::Element e{};
            if (!csa::threadElement(g, block, launch.block[0], thread, e))
            {
                continue;
            }
            require(e.batch >= 0 && e.batch < g.batch && e.channel >= 0 && e.channel < g.channels && e.oy >= 0
                    && e.oy < g.out_h && e.ox >= 0 && e.ox < g.out_w,
                "a thread's element lies outside the output");
            require(((e.batch * g.channels + e.channel) * g.out_h + e.oy) * g.out_w + e.ox == e.offset,
                "a thread's coordinates do not give its NCHW offset");
            ++hits[static_cast<size_t>(e.offset)];
        }
    }
    for (int offset = 0; offset < count; ++offset)
    {
        require(hits[static_cast<size_t>(offset)] == 1,
            "output element " + std::to_string(offset) + " is owned by "
                + std::to_string(hits[static_cast<size_t>(offset)]) + " threads");
    }
    // The last block is needed: fewer blocks would leave elements unowned.
    require(launch.grid[0] == 0 || (launch.grid[0] - 1) * launch.block[0] < static_cast<uint32_t>(count),
        "the grid has a block without work");
    std::cout << "ok coverage " << count << " elements, " << launch.grid[0] << " blocks\n";
}

void checkCoverages()
{
    // LVT (k=3, s=2, p=1): stage 1 at 224x224 (C=64, 2 heads, 28x28 windows) at batch 2, odd and
    // even window counts; no overlap (s = k), stride 1, gaps (s > k), a 1x1 window, empty batch.
    checkCoverage(attributeMap(2, 3, 2, 1, 64), {Shape{{2, 162, 28, 28}}, Shape{{2, 576, 28, 28}}});
    checkCoverage(attributeMap(2, 3, 2, 1, 8), {Shape{{1, 162, 5, 7}}, Shape{{1, 72, 5, 7}}});
    checkCoverage(attributeMap(1, 3, 2, 1, 4), {Shape{{2, 81, 8, 8}}, Shape{{2, 36, 8, 8}}});
    checkCoverage(attributeMap(2, 2, 2, 0, 6), {Shape{{2, 32, 3, 4}}, Shape{{2, 24, 3, 4}}});
    checkCoverage(attributeMap(1, 3, 1, 2, 3), {Shape{{1, 81, 4, 3}}, Shape{{1, 27, 4, 3}}});
    checkCoverage(attributeMap(3, 2, 3, 1, 3), {Shape{{1, 48, 3, 2}}, Shape{{1, 12, 3, 2}}});
    checkCoverage(attributeMap(1, 1, 1, 0, 5), {Shape{{3, 1, 9, 11}}, Shape{{3, 5, 9, 11}}});
    checkCoverage(attributeMap(2, 3, 2, 1, 8), {Shape{{0, 162, 5, 7}}, Shape{{0, 72, 5, 7}}});
}

void checkAttributeRoundTrip()
{
    for (const AttributeMap& attributes :
        {attributeMap(2, 3, 2, 1, 64), attributeMap(5, 1, 1, 0, 5), attributeMap(1, 4, 7, 3, 1)})
    {
        const CsaOp op = CsaOp::fromAttributes(attributes);
        require(op.attributes() == attributes, "attributes() does not give back what fromAttributes read");
        require(CsaOp::fromAttributes(op.attributes()).attributes() == attributes,
            "the round trip changes them");
        std::vector<std::string> keys;
        for (const auto& entry : op.attributes())
        {
            keys.push_back(entry.first);
        }
        std::vector<std::string> names = CsaOp::attributeNames();
        std::sort(names.begin(), names.end());
        require(keys == names, "attributes() holds exactly attributeNames()");
    }
    // Attributes the plugin does not read (the parser's plugin_version, say) are ignored.
    AttributeMap extra = attributeMap(2, 3, 2, 1, 64);
    extra["plugin_version"] = {1};
    require(CsaOp::fromAttributes(extra).attributes() == attributeMap(2, 3, 2, 1, 64),
        "attributes the op does not read are ignored");
    std::cout << "ok attribute round trip\n";
}

int selfcheck()
{
    checkWindowRanges();
    checkCoverages();
    checkAttributeRoundTrip();
    return 0;
}

std::string joined(const std::vector<int64_t>& values)
{
    std::ostringstream text;
    for (size_t i = 0; i < values.size(); ++i)
    {
        text << (i ? " " : "") << values[i];
    }
    return text.str();
}

// "name=v[,v...] ...; attn d...; values d..." -> what the core says about it.
std::string runCase(const std::string& line)
{
    std::vector<std::string> parts;
    std::stringstream fields(line);
    for (std::string part; std::getline(fields, part, ';');)
    {
        parts.push_back(part);
    }
    require(parts.size() == 3, "a case line has 3 parts");
    AttributeMap attributes;
    std::istringstream attributeText(parts[0]);
    for (std::string item; attributeText >> item;)
    {
        const size_t equals = item.find('=');
        std::vector<int32_t> values;
        std::stringstream valueText(item.substr(equals + 1));
        for (std::string value; std::getline(valueText, value, ',');)
        {
            values.push_back(std::stoi(value));
        }
        attributes[item.substr(0, equals)] = values;
    }
    std::vector<Shape> inputs;
    for (size_t i = 1; i < parts.size(); ++i)
    {
        std::istringstream dimText(parts[i]);
        std::string name;
        dimText >> name;
        Shape shape;
        for (int64_t dim; dimText >> dim;)
        {
            shape.dims.push_back(dim);
        }
        inputs.push_back(shape);
    }
    try
    {
        const CsaOp op = CsaOp::fromAttributes(attributes);
        const Launch launch = op.launch(inputs);
        std::vector<int64_t> dims;
        std::vector<int64_t> rules;
        for (const AffineDim& rule : op.outputDims())
        {
            const Shape& input = inputs[static_cast<size_t>(rule.input)];
            dims.push_back(rule.scale * input.dims[static_cast<size_t>(rule.axis)] + rule.offset);
            rules.insert(rules.end(), {rule.input, rule.axis, rule.scale, rule.offset});
        }
        const std::vector<int64_t> grid{launch.grid[0], launch.grid[1], launch.grid[2]};
        const std::vector<int64_t> block{launch.block[0], launch.block[1], launch.block[2]};
        return "ok dims " + joined(dims) + " rules " + joined(rules) + " launch " + joined(grid) + " "
            + joined(block) + " " + std::to_string(launch.shared_bytes) + " "
            + joined(std::vector<int64_t>(launch.scalars.begin(), launch.scalars.end()));
    }
    catch (const std::invalid_argument& error)
    {
        return std::string("error ") + error.what();
    }
}

int cases()
{
    for (std::string line; std::getline(std::cin, line);)
    {
        std::cout << runCase(line) << "\n";
    }
    return 0;
}

template <typename T>
std::vector<T> readArray(std::istream& in, int64_t count)
{
    std::vector<T> data(static_cast<size_t>(count));
    in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(T)));
    require(static_cast<bool>(in), "the input file is shorter than its header says");
    return data;
}

// IN: int32 heads, kernel_size, stride, padding, channels, attn dims (4), values dims (4), then
// float32 attn and values. OUT: float32 output (NCHW).
int emulate(const char* inPath, const char* outPath)
{
    std::ifstream in(inPath, std::ios::binary);
    const std::vector<int32_t> h = readArray<int32_t>(in, 13);
    const CsaOp op = CsaOp::fromAttributes(attributeMap(h[0], h[1], h[2], h[3], h[4]));
    const std::vector<Shape> inputs{Shape{{h[5], h[6], h[7], h[8]}}, Shape{{h[9], h[10], h[11], h[12]}}};
    const Launch launch = op.launch(inputs);
    const std::vector<float> attn = readArray<float>(in, int64_t{h[5]} * h[6] * h[7] * h[8]);
    const std::vector<float> values = readArray<float>(in, int64_t{h[9]} * h[10] * h[11] * h[12]);

    // What every thread of the grid does in csa_kernel.cu, FP32.
    const csa::Geometry g = kernelGeometry(launch);
    std::vector<float> output(static_cast<size_t>(csa::outputCount(g)), std::nanf(""));
    for (uint32_t block = 0; block < launch.grid[0]; ++block)
    {
        for (uint32_t thread = 0; thread < launch.block[0]; ++thread)
        {
            csa::Element e{};
            if (csa::threadElement(g, block, launch.block[0], thread, e))
            {
                output[static_cast<size_t>(e.offset)] = csa::gatherElement(g, attn.data(), values.data(), e);
            }
        }
    }
    std::ofstream out(outPath, std::ios::binary);
    out.write(reinterpret_cast<const char*>(output.data()),
        static_cast<std::streamsize>(output.size() * sizeof(float)));
    return out ? 0 : 1;
}

} // namespace

int main(int argc, char** argv)
{
    const std::string mode = argc > 1 ? argv[1] : "";
    try
    {
        if (mode == "selfcheck")
        {
            return selfcheck();
        }
        if (mode == "info")
        {
            std::cout << CsaOp::kName << " " << CsaOp::kNumInputs;
            for (const std::string& name : CsaOp::attributeNames())
            {
                std::cout << " " << name;
            }
            std::cout << "\n";
            return 0;
        }
        if (mode == "cases")
        {
            return cases();
        }
        if (mode == "emulate" && argc == 4)
        {
            return emulate(argv[2], argv[3]);
        }
    }
    catch (const std::exception& error)
    {
        std::cerr << "FAIL " << error.what() << "\n";
        return 1;
    }
    std::cerr << "usage: test_csa_core selfcheck | info | cases | emulate IN OUT\n";
    return 2;
}
