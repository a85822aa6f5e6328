// Prints an op core's launch and output-dims rules as JSON lines for tests/plugins/test_common.py,
// which generates the main() calling emit() for each op and shape and compares the lines with the
// op's Python spec.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "common/op_core.h"
#include "common/serialize.h"

namespace contract
{

inline void print(
    const std::string& label, const litevit::Launch& launch, const std::vector<litevit::AffineDim>& dims)
{
    std::printf("{\"label\": \"%s\", \"grid\": [%u, %u, %u], \"block\": [%u, %u, %u], \"shared\": %u, ",
        label.c_str(), launch.grid[0], launch.grid[1], launch.grid[2], launch.block[0], launch.block[1],
        launch.block[2], launch.shared_bytes);
    std::printf("\"scalars\": [");
    for (size_t i = 0; i < launch.scalars.size(); ++i)
    {
        std::printf("%s%d", i ? ", " : "", launch.scalars[i]);
    }
    std::printf("], \"dims\": [");
    for (size_t i = 0; i < dims.size(); ++i)
    {
        std::printf("%s[%d, %d, %lld, %lld]", i ? ", " : "", dims[i].input, dims[i].axis,
            static_cast<long long>(dims[i].scale), static_cast<long long>(dims[i].offset));
    }
    std::printf("]}\n");
}

// The op as the TensorRT glue builds it from the node's attributes, and as it rebuilds it from a
// serialized engine (attributes() -> serializeAttributes -> deserializeAttributes -> fromAttributes).
template <typename Op>
void emit(const std::string& label, const litevit::AttributeMap& attributes,
    const std::vector<litevit::Shape>& shapes)
{
    const Op op = Op::fromAttributes(attributes);
    op.checkInputs(shapes);
    print(label, op.launch(shapes), op.outputDims());
    const std::vector<char> bytes = litevit::serializeAttributes(op.attributes());
    const Op restored = Op::fromAttributes(litevit::deserializeAttributes(bytes.data(), bytes.size()));
    print(label + " restored", restored.launch(shapes), restored.outputDims());
}

} // namespace contract
