// Tests of plugins/common/serialize.{h,cpp}, run by tests/plugins/test_common.py.
//
// Prints the bytes of one known map as hex (the test compares them with the documented layout),
// then checks round trips and that every malformed input is refused with std::invalid_argument.
// Exit status 1 and a FAIL line per broken check.
#include "serialize.h"

#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace
{

int failures = 0;

void expect(bool condition, const std::string& what)
{
    if (!condition)
    {
        std::printf("FAIL %s\n", what.c_str());
        ++failures;
    }
}

bool refused(const std::vector<char>& bytes, size_t size)
{
    try
    {
        litevit::deserializeAttributes(bytes.data(), size);
    }
    catch (const std::invalid_argument&)
    {
        return true;
    }
    return false;
}

void putU32(std::vector<char>& bytes, size_t at, uint32_t value)
{
    for (int i = 0; i < 4; ++i)
    {
        bytes[at + i] = static_cast<char>((value >> (8 * i)) & 0xFFu);
    }
}

} // namespace

int main()
{
    const litevit::AttributeMap known{{"k", {3}}, {"dilations", {1, -2}}};
    std::printf("layout ");
    for (char byte : litevit::serializeAttributes(known))
    {
        std::printf("%02x", static_cast<unsigned>(static_cast<unsigned char>(byte)));
    }
    std::printf("\n");

    const std::vector<litevit::AttributeMap> maps{
        {},
        {{"heads", {2}}},
        {{"heads", {4}}, {"kernel_size", {3}}, {"stride", {2}}, {"padding", {1}}},
        {{"dilations", {1, 3, 5}}, {"kernel_size", {3}}},
        {{"extremes", {std::numeric_limits<int32_t>::min(), -1, 0, std::numeric_limits<int32_t>::max()}}},
        {{"empty_list", {}}},
        {{"long", std::vector<int32_t>(1000, 7)}},
    };
    for (size_t index = 0; index < maps.size(); ++index)
    {
        const std::string name = "map " + std::to_string(index);
        const std::vector<char> bytes = litevit::serializeAttributes(maps[index]);
        expect(litevit::deserializeAttributes(bytes.data(), bytes.size()) == maps[index], name + " round trip");
        // Every proper prefix is a truncation and must be refused.
        bool allRefused = true;
        for (size_t size = 0; size < bytes.size(); ++size)
        {
            allRefused = allRefused && refused(bytes, size);
        }
        expect(allRefused, name + " truncations refused");
        std::vector<char> longer = bytes;
        longer.push_back('\0');
        expect(refused(longer, longer.size()), name + " trailing byte refused");
    }

    const std::vector<char> good = litevit::serializeAttributes(known);
    std::vector<char> badMagic = good;
    badMagic[0] = 'X';
    expect(refused(badMagic, badMagic.size()), "wrong magic refused");
    std::vector<char> badVersion = good;
    putU32(badVersion, 4, litevit::kAttributeFormatVersion + 1);
    expect(refused(badVersion, badVersion.size()), "other format version refused");
    // A corrupt value count must be refused before anything of that size is allocated.
    std::vector<char> hugeCount = litevit::serializeAttributes({{"k", {3}}});
    putU32(hugeCount, 4 + 4 + 4 + 4 + 1, 0xFFFFFFFFu);
    expect(refused(hugeCount, hugeCount.size()), "huge value count refused");
    std::vector<char> hugeName = good;
    putU32(hugeName, 12, 0xFFFFFFFFu);
    expect(refused(hugeName, hugeName.size()), "huge name length refused");
    // Two attributes of one name (only a hand-made buffer can have them).
    std::vector<char> repeated = litevit::serializeAttributes({{"a", {1}}, {"b", {2}}});
    const size_t second = 12 + 4 + 1 + 4 + 4;
    repeated[second + 4] = 'a';
    expect(refused(repeated, repeated.size()), "repeated name refused");
    expect(refused({}, 0), "empty buffer refused");
    bool nullRefused = false;
    try
    {
        litevit::deserializeAttributes(nullptr, 4);
    }
    catch (const std::invalid_argument&)
    {
        nullRefused = true;
    }
    expect(nullRefused, "null pointer refused");

    if (failures != 0)
    {
        std::printf("%d failures\n", failures);
        return 1;
    }
    std::printf("ok\n");
    return 0;
}
