// Byte layout of a plugin's attributes inside a serialized TensorRT engine.
//
// Versioned and length-checked so that an engine written by another litevit (or a truncated or
// corrupted plan) is refused with a sentence instead of read past its end:
//
//     "LVTA"  uint32 format version (1)  uint32 attribute count
//     per attribute, sorted by name: uint32 name length, name bytes (no NUL),
//                                    uint32 value count, int32 values
//
// All integers are little-endian whatever the host, so a plan's bytes mean the same on x86 and
// aarch64 (TensorRT itself ties a plan to one GPU, but the layout should not depend on that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "op_core.h"

namespace litevit
{

constexpr uint32_t kAttributeFormatVersion = 1;

std::vector<char> serializeAttributes(const AttributeMap& attributes);

// Throws std::invalid_argument (one sentence) on a wrong magic or version, truncation, trailing
// bytes or a repeated name.
AttributeMap deserializeAttributes(const char* data, size_t size);

} // namespace litevit
