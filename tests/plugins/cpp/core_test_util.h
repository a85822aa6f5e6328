// The driver that tests/plugins/cpp/test_<op>_core.cpp instantiate for one op core (RasaOp,
// GhostHeadOp), for tests/plugins/test_<op>_core.py.
//
// Usage: test_<op>_core [NAME=V1,V2,...]... -- [D0,D1,...]...   (attributes, then one shape per input)
// Prints one fact per line, stopping at the first refusal, which it prints as "error <sentence>":
//   names <attribute names>, inputs <kNumInputs>
//   roundtrip ok      fromAttributes(attributes()) and the serialized attributes give the same map
//   rules <input axis scale offset>...   outputDims()
//   output <dims>     the rules evaluated on the input shapes (after checkInputs)
//   launch <grid x y z> <block x y z> <shared bytes> <scalars...>
//   coverage ok       every output element is written by exactly one thread of the launch
//                     (Op::outputsOfThread over the whole grid), else "coverage <first problem>"
#pragma once

#include "common/serialize.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace litevit_test
{

template <typename T>
std::vector<T> parseInts(const std::string& text)
{
    std::vector<T> values;
    std::istringstream stream(text);
    std::string item;
    while (std::getline(stream, item, ','))
    {
        values.push_back(static_cast<T>(std::stoll(item)));
    }
    return values;
}

template <class Op>
std::string coverage(const litevit::Launch& launch, const std::vector<int64_t>& out)
{
    const int64_t total = out[0] * out[1] * out[2] * out[3];
    std::vector<int> writes(static_cast<size_t>(total), 0);
    const uint64_t blocks = uint64_t{launch.grid[0]} * launch.grid[1] * launch.grid[2];
    for (uint64_t linear = 0; linear < blocks; ++linear)
    {
        const std::array<uint32_t, 3> block{static_cast<uint32_t>(linear % launch.grid[0]),
            static_cast<uint32_t>(linear / launch.grid[0] % launch.grid[1]),
            static_cast<uint32_t>(linear / launch.grid[0] / launch.grid[1])};
        const uint32_t threads = launch.block[0] * launch.block[1] * launch.block[2];
        for (uint32_t t = 0; t < threads; ++t)
        {
            const std::array<uint32_t, 3> thread{
                t % launch.block[0], t / launch.block[0] % launch.block[1], t / launch.block[0] / launch.block[1]};
            for (const std::array<int64_t, 4>& e : Op::outputsOfThread(launch, block, thread))
            {
                if (e[0] < 0 || e[0] >= out[0] || e[1] < 0 || e[1] >= out[1] || e[2] < 0 || e[2] >= out[2] || e[3] < 0
                    || e[3] >= out[3])
                {
                    return "block " + std::to_string(linear) + " thread " + std::to_string(t)
                        + " writes outside the output";
                }
                ++writes[static_cast<size_t>(((e[0] * out[1] + e[1]) * out[2] + e[2]) * out[3] + e[3])];
            }
        }
    }
    for (int64_t i = 0; i < total; ++i)
    {
        if (writes[static_cast<size_t>(i)] != 1)
        {
            return "element " + std::to_string(i) + " written " + std::to_string(writes[static_cast<size_t>(i)])
                + " times";
        }
    }
    return "ok";
}

template <class Op>
void describe(const litevit::AttributeMap& attributes, const std::vector<litevit::Shape>& inputs)
{
    std::cout << "names";
    for (const std::string& name : Op::attributeNames())
    {
        std::cout << ' ' << name;
    }
    std::cout << "\ninputs " << Op::kNumInputs << '\n';

    const Op op = Op::fromAttributes(attributes);
    const std::vector<char> bytes = litevit::serializeAttributes(op.attributes());
    const bool sameAttributes = Op::fromAttributes(op.attributes()).attributes() == op.attributes()
        && litevit::deserializeAttributes(bytes.data(), bytes.size()) == op.attributes();
    std::cout << "roundtrip " << (sameAttributes ? "ok" : "differs") << '\n';

    std::cout << "rules";
    for (const litevit::AffineDim& rule : op.outputDims())
    {
        std::cout << ' ' << rule.input << ' ' << rule.axis << ' ' << rule.scale << ' ' << rule.offset;
    }
    std::cout << '\n';

    op.checkInputs(inputs);
    std::vector<int64_t> out;
    std::cout << "output";
    for (const litevit::AffineDim& rule : op.outputDims())
    {
        out.push_back(rule.scale * inputs[static_cast<size_t>(rule.input)].dims[static_cast<size_t>(rule.axis)]
            + rule.offset);
        std::cout << ' ' << out.back();
    }
    std::cout << '\n';

    const litevit::Launch launch = op.launch(inputs);
    std::cout << "launch " << launch.grid[0] << ' ' << launch.grid[1] << ' ' << launch.grid[2] << ' '
              << launch.block[0] << ' ' << launch.block[1] << ' ' << launch.block[2] << ' ' << launch.shared_bytes;
    for (const int32_t scalar : launch.scalars)
    {
        std::cout << ' ' << scalar;
    }
    std::cout << "\ncoverage " << coverage<Op>(launch, out) << '\n';
}

// The whole driver: parses the command line, prints the facts (see the usage above).
template <class Op>
int coreTestMain(int argc, char** argv)
{
    litevit::AttributeMap attributes;
    std::vector<litevit::Shape> inputs;
    bool shapes = false;
    for (int i = 1; i < argc; ++i)
    {
        const std::string arg = argv[i];
        if (arg == "--")
        {
            shapes = true;
        }
        else if (shapes)
        {
            inputs.push_back({parseInts<int64_t>(arg)});
        }
        else
        {
            const size_t equals = arg.find('=');
            attributes[arg.substr(0, equals)] = parseInts<int32_t>(arg.substr(equals + 1));
        }
    }
    try
    {
        describe<Op>(attributes, inputs);
    }
    catch (const std::invalid_argument& error)
    {
        std::cout << "error " << error.what() << '\n';
    }
    return 0;
}

} // namespace litevit_test
