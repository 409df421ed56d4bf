// libFuzzer target: the utf8 namespace's properties, checked together on any bytes.
//   is_valid(x)  <=>  decode(x) does not throw  <=>  sanitize(x) == x
//   sanitize(x) is valid and sanitize(sanitize(x)) == sanitize(x)
//   encode(decode(x)) == x for valid x
//   Utf8Error::offset() is where sanitize starts to change x: the bytes before it are
//   kept as they are and a U+FFFD takes the place of the bytes at it.
// The same bytes read as UTF-16 and UTF-32 code units check encode: it either throws at
// an index that really holds no scalar value, or gives valid UTF-8 that decodes back.
// Build and run: scripts/fuzz.sh [seconds]
#include "greet_socket.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "property violated: %s\n", what);
        std::abort();
    }
}

const std::string replacement = "\xEF\xBF\xBD";

void check_bytes(std::string_view x) {
    const bool valid = greet::utf8::is_valid(x);
    std::u32string decoded;
    bool decodes = true;
    std::size_t offset = 0;
    try {
        decoded = greet::utf8::decode(x);
    } catch (const greet::Utf8Error& error) {
        decodes = false;
        offset = error.offset();
        require(error.code() == std::errc::illegal_byte_sequence, "decode's Utf8Error has code illegal_byte_sequence");
    }
    const std::string clean = greet::utf8::sanitize(x);
    require(valid == decodes, "is_valid(x) <=> decode(x) does not throw");
    require(valid == (clean == x), "is_valid(x) <=> sanitize(x) == x");
    require(greet::utf8::is_valid(clean), "sanitize(x) is valid");
    require(greet::utf8::sanitize(clean) == clean, "sanitize is idempotent");
    if (valid) {
        require(greet::utf8::encode(decoded) == x, "encode(decode(x)) == x");
        return;
    }
    require(offset < x.size(), "offset() lies inside the input");
    const std::string_view kept = x.substr(0, offset);
    require(greet::utf8::is_valid(kept), "the bytes before offset() are valid");
    require(clean.compare(0, kept.size(), kept) == 0, "sanitize keeps the bytes before offset()");
    require(clean.compare(kept.size(), replacement.size(), replacement) == 0, "sanitize puts U+FFFD at offset()");
}

bool is_surrogate(std::uint32_t u) { return u >= 0xD800 && u <= 0xDFFF; }

void check_utf16(const std::uint8_t* data, std::size_t size) {
    std::u16string units;
    for (std::size_t i = 0; i + 1 < size; i += 2) units.push_back(static_cast<char16_t>(data[i] | data[i + 1] << 8));
    try {
        const std::string out = greet::utf8::encode(units);
        require(greet::utf8::is_valid(out), "encode(UTF-16) is valid UTF-8");
        std::size_t scalars = 0;
        for (std::size_t i = 0; i < units.size(); ++i, ++scalars)
            if (units[i] >= 0xD800 && units[i] <= 0xDBFF) ++i; // a pair: encode accepted it
        require(greet::utf8::decode(out).size() == scalars, "encode(UTF-16) keeps one code point per scalar value");
    } catch (const greet::Utf8Error& error) {
        const std::size_t i = error.offset();
        require(i < units.size() && is_surrogate(units[i]), "encode(UTF-16) fails at a surrogate");
        const bool high = units[i] <= 0xDBFF;
        const bool paired = high && i + 1 < units.size() && units[i + 1] >= 0xDC00 && units[i + 1] <= 0xDFFF;
        require(!paired, "encode(UTF-16) fails only at an unpaired surrogate");
    }
}

void check_utf32(const std::uint8_t* data, std::size_t size) {
    std::u32string units;
    for (std::size_t i = 0; i + 3 < size; i += 4)
        units.push_back(static_cast<char32_t>(std::uint32_t{data[i]} | std::uint32_t{data[i + 1]} << 8 |
                                              std::uint32_t{data[i + 2]} << 16 | std::uint32_t{data[i + 3]} << 24));
    try {
        const std::string out = greet::utf8::encode(units);
        require(greet::utf8::decode(out) == units, "decode(encode(UTF-32)) gives the same code points");
    } catch (const greet::Utf8Error& error) {
        const std::size_t i = error.offset();
        require(i < units.size() && (units[i] > 0x10FFFF || is_surrogate(units[i])), "encode(UTF-32) fails at a non-scalar value");
        for (std::size_t j = 0; j < i; ++j) require(units[j] <= 0x10FFFF && !is_surrogate(units[j]), "encode(UTF-32) fails at the first one");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    check_bytes(std::string_view(reinterpret_cast<const char*>(data), size));
    check_utf16(data, size);
    check_utf32(data, size);
    return 0;
}
