#include "serialize.h"

#include <stdexcept>
#include <string>

namespace litevit
{
namespace
{

constexpr char kMagic[4] = {'L', 'V', 'T', 'A'};

void putU32(std::vector<char>& out, uint32_t value)
{
    for (int shift = 0; shift < 32; shift += 8)
    {
        out.push_back(static_cast<char>((value >> shift) & 0xFFu));
    }
}

// Reads from [data, data + size) front to back; every read checks what is left first.
class Reader
{
public:
    Reader(const char* data, size_t size)
        : data_(data)
        , left_(size)
    {
    }

    uint32_t u32(const char* what)
    {
        need(4, what);
        uint32_t value = 0;
        for (int i = 0; i < 4; ++i)
        {
            value |= static_cast<uint32_t>(static_cast<unsigned char>(data_[i])) << (8 * i);
        }
        advance(4);
        return value;
    }

    std::string bytes(size_t count, const char* what)
    {
        need(count, what);
        std::string value(data_, count);
        advance(count);
        return value;
    }

    size_t left() const
    {
        return left_;
    }

private:
    void need(size_t count, const char* what) const
    {
        if (count > left_)
        {
            throw std::invalid_argument(std::string("litevit plugin data is truncated: ") + what + " needs "
                + std::to_string(count) + " bytes, " + std::to_string(left_) + " are left.");
        }
    }

    void advance(size_t count)
    {
        data_ += count;
        left_ -= count;
    }

    const char* data_;
    size_t left_;
};

// A name read from possibly corrupt data, fit for a one-line message: bytes outside printable
// ASCII become '?'.
std::string printable(const std::string& name)
{
    std::string out(name);
    for (char& c : out)
    {
        if (c < 0x20 || c > 0x7E)
        {
            c = '?';
        }
    }
    return out;
}

} // namespace

std::vector<char> serializeAttributes(const AttributeMap& attributes)
{
    std::vector<char> out(kMagic, kMagic + sizeof(kMagic));
    putU32(out, kAttributeFormatVersion);
    putU32(out, static_cast<uint32_t>(attributes.size()));
    for (const auto& [name, values] : attributes)
    {
        putU32(out, static_cast<uint32_t>(name.size()));
        out.insert(out.end(), name.begin(), name.end());
        putU32(out, static_cast<uint32_t>(values.size()));
        for (int32_t value : values)
        {
            putU32(out, static_cast<uint32_t>(value));
        }
    }
    return out;
}

AttributeMap deserializeAttributes(const char* data, size_t size)
{
    if (data == nullptr && size != 0)
    {
        throw std::invalid_argument("litevit plugin data is a null pointer with a non-zero length.");
    }
    Reader reader(data, size);
    if (reader.bytes(sizeof(kMagic), "the header") != std::string(kMagic, sizeof(kMagic)))
    {
        throw std::invalid_argument("litevit plugin data does not start with LVTA: not a litevit plugin.");
    }
    const uint32_t version = reader.u32("the format version");
    if (version != kAttributeFormatVersion)
    {
        throw std::invalid_argument("litevit plugin data has format version " + std::to_string(version)
            + ", this library reads version " + std::to_string(kAttributeFormatVersion)
            + ": rebuild the engine with this library.");
    }
    const uint32_t count = reader.u32("the attribute count");
    AttributeMap attributes;
    for (uint32_t index = 0; index < count; ++index)
    {
        const uint32_t nameLength = reader.u32("an attribute name length");
        std::string name = reader.bytes(nameLength, "an attribute name");
        const uint32_t valueCount = reader.u32("an attribute value count");
        // Check the whole array before allocating: a corrupt count must not allocate gigabytes.
        if (valueCount > reader.left() / 4)
        {
            throw std::invalid_argument("litevit plugin data is truncated: attribute '" + printable(name) + "' has "
                + std::to_string(valueCount) + " values but only " + std::to_string(reader.left())
                + " bytes are left.");
        }
        std::vector<int32_t> values;
        values.reserve(valueCount);
        for (uint32_t i = 0; i < valueCount; ++i)
        {
            values.push_back(static_cast<int32_t>(reader.u32("an attribute value")));
        }
        if (!attributes.emplace(std::move(name), std::move(values)).second)
        {
            throw std::invalid_argument("litevit plugin data repeats an attribute name.");
        }
    }
    if (reader.left() != 0)
    {
        throw std::invalid_argument("litevit plugin data has " + std::to_string(reader.left())
            + " bytes after its last attribute.");
    }
    return attributes;
}

} // namespace litevit
