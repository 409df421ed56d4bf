// utf8::encode, decode, is_valid and sanitize against RFC 3629 and Unicode chapter 3.
#include "catch.hpp"
#include "greet_socket.hpp"
#include "support.hpp"

#include <string>
#include <vector>

using test::thrown;

namespace {

const std::string fffd = "\xEF\xBF\xBD"; // U+FFFD REPLACEMENT CHARACTER

std::string replacements(int count) {
    std::string out;
    for (int i = 0; i < count; ++i) out += fffd;
    return out;
}

// Written from the RFC 3629 table, independently of the library, to compare against.
std::string reference_encode(char32_t cp) {
    std::string out;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 + (cp >> 6));
        out += static_cast<char>(0x80 + (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 + (cp >> 12));
        out += static_cast<char>(0x80 + ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 + (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 + (cp >> 18));
        out += static_cast<char>(0x80 + ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 + ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 + (cp & 0x3F));
    }
    return out;
}

struct IllFormed {
    const char* what;
    std::string bytes;
    std::size_t offset;       // the first bad byte, as decode reports it
    std::string sanitized;    // each maximal subpart replaced by one U+FFFD
};

// One vector per class of ill-formed input. The sanitized forms follow Unicode Table 3-7:
// a byte that can never start a sequence (C0, C1, F5..FF, a stray continuation) is a
// subpart of its own; otherwise the subpart is the valid lead plus the continuation
// bytes that were still allowed, stopping at the first byte that is not.
std::vector<IllFormed> ill_formed_vectors() {
    return {
        {"overlong 2-byte NUL", "\xC0\x80", 0, replacements(2)},
        {"overlong 2-byte U+007F", "\xC1\xBF", 0, replacements(2)},
        {"overlong 3-byte NUL", "\xE0\x80\x80", 0, replacements(3)},  // E0 needs A0..BF next
        {"overlong 3-byte U+07FF", "\xE0\x9F\xBF", 0, replacements(3)},
        {"overlong 4-byte NUL", "\xF0\x80\x80\x80", 0, replacements(4)}, // F0 needs 90..BF next
        {"overlong 4-byte U+FFFF", "\xF0\x8F\xBF\xBF", 0, replacements(4)},
        {"surrogate U+D800", "\xED\xA0\x80", 0, replacements(3)},       // ED needs 80..9F next
        {"surrogate U+DFFF", "\xED\xBF\xBF", 0, replacements(3)},
        {"paired surrogates (CESU-8)", "\xED\xA0\xBD\xED\xB8\x80", 0, replacements(6)},
        {"U+110000", "\xF4\x90\x80\x80", 0, replacements(4)},           // F4 needs 80..8F next
        {"lead F5", "\xF5\x80\x80\x80", 0, replacements(4)},
        {"lead F7", "\xF7\xBF\xBF\xBF", 0, replacements(4)},
        {"lead F8 (old 5-byte form)", "\xF8\x88\x80\x80\x80", 0, replacements(5)},
        {"lead FC (old 6-byte form)", "\xFC\x84\x80\x80\x80\x80", 0, replacements(6)},
        {"byte FE", "a\xFE", 1, "a" + fffd},
        {"byte FF", "\xFFz", 0, fffd + "z"},
        {"stray continuation 80", "a\x80z", 1, "a" + fffd + "z"},
        {"stray continuation BF", "\xBF", 0, fffd},
        {"continuation after a whole character", "\xC3\xAB\xAB", 2, "\xC3\xAB" + fffd},
        {"2-byte truncated at the end", "ab\xC3", 2, "ab" + fffd},
        {"3-byte truncated at the end", "ab\xE2\x82", 2, "ab" + fffd},
        {"4-byte truncated at the end", "ab\xF0\x9F\x98", 2, "ab" + fffd},
        {"2-byte truncated in the middle", "\xC3z", 0, fffd + "z"},
        {"3-byte truncated in the middle", "\xE2\x82z", 0, fffd + "z"},
        {"4-byte truncated in the middle", "x\xF0\x9F\x98z", 1, "x" + fffd + "z"},
        {"lead followed by a lead", "\xE2\xE2\x82\xAC", 0, fffd + "\xE2\x82\xAC"},
    };
}

} // namespace

TEST_CASE("utf8::encode turns UTF-16 into UTF-8", "[utf8]") {
    CHECK(greet::utf8::encode(std::u16string_view()).empty());
    CHECK(greet::utf8::encode(u"hello") == "hello");
    CHECK(greet::utf8::encode(u"Zo\u00EB") == "Zo\xC3\xAB");
    CHECK(greet::utf8::encode(u"\u20AC") == "\xE2\x82\xAC");
    CHECK(greet::utf8::encode(u"\U0001F600") == "\xF0\x9F\x98\x80"); // the pair D83D DE00
    CHECK(greet::utf8::encode(u"\U0010FFFF") == "\xF4\x8F\xBF\xBF");
    const std::u16string with_nul(u"a\0b", 3);
    CHECK(greet::utf8::encode(with_nul) == std::string("a\0b", 3));
}

TEST_CASE("utf8::encode turns UTF-32 and wide strings into UTF-8", "[utf8]") {
    CHECK(greet::utf8::encode(std::u32string_view()).empty());
    CHECK(greet::utf8::encode(U"Zo\u00EB \U0001F600") == "Zo\xC3\xAB \xF0\x9F\x98\x80");
    CHECK(greet::utf8::encode(std::wstring_view(L"Zo\u00EB")) == "Zo\xC3\xAB");
    CHECK(greet::utf8::encode(std::wstring_view(L"\U0001F600")) == "\xF0\x9F\x98\x80");
    CHECK(greet::utf8::encode(std::wstring_view()).empty());
}

TEST_CASE("utf8::encode rejects unpaired surrogates in UTF-16 at their index", "[utf8]") {
    struct Case {
        const char* what;
        std::u16string text;
        std::size_t offset;
    };
    const std::vector<Case> cases = {
        {"lead alone", {u'a', 0xD800, u'b'}, 1},
        {"trail alone", {u'a', u'b', 0xDC00}, 2},
        {"trail alone at the start", {0xDFFF, u'a'}, 0},
        {"lead at the end", {u'a', 0xDBFF}, 1},
        {"lead alone in the whole text", {0xD83D}, 0},
        {"two leads then a trail", {0xD800, 0xD800, 0xDC00}, 0},
        {"trail before lead", {u'x', 0xDC00, 0xD800}, 1},
        {"pair then trail", {0xD83D, 0xDE00, 0xDE00}, 2},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        const auto error = thrown<greet::Utf8Error>([&] { greet::utf8::encode(c.text); });
        REQUIRE(error);
        CHECK(error->offset() == c.offset);
        CHECK(error->code() == std::errc::illegal_byte_sequence);
        CHECK(test::starts_with(error->what(), "utf8::encode: EILSEQ ("));
        CHECK(test::contains(error->what(), "unpaired surrogate"));
    }
}

TEST_CASE("utf8::encode rejects UTF-32 values that are no scalar value", "[utf8]") {
    for (char32_t bad : {char32_t(0xD800), char32_t(0xDBFF), char32_t(0xDC00), char32_t(0xDFFF), char32_t(0x110000),
                         char32_t(0x7FFFFFFF), char32_t(0xFFFFFFFF)}) {
        INFO("value " << static_cast<unsigned long>(bad));
        const std::u32string text = {U'o', U'k', bad, U'!'};
        const auto error = thrown<greet::Utf8Error>([&] { greet::utf8::encode(text); });
        REQUIRE(error);
        CHECK(error->offset() == 2);
        CHECK(error->code() == std::errc::illegal_byte_sequence);
    }
    // The same rule for wide strings (UTF-32 on Linux, UTF-16 on Windows: a lone surrogate either way).
    const std::wstring wide = {L'a', static_cast<wchar_t>(0xD800)};
    const auto error = thrown<greet::Utf8Error>([&] { greet::utf8::encode(wide); });
    REQUIRE(error);
    CHECK(error->offset() == 1);
}

TEST_CASE("utf8::decode reads well-formed text", "[utf8]") {
    CHECK(greet::utf8::decode("").empty());
    CHECK(greet::utf8::decode("plain") == U"plain");
    CHECK(greet::utf8::decode("Zo\xC3\xAB") == U"Zo\u00EB");
    CHECK(greet::utf8::decode(std::string("\0", 1)) == std::u32string(1, U'\0'));
    // The edges of each length and of the surrogate gap.
    CHECK(greet::utf8::decode("\x7F") == U"\u007F");
    CHECK(greet::utf8::decode("\xC2\x80") == U"\u0080");
    CHECK(greet::utf8::decode("\xDF\xBF") == U"\u07FF");
    CHECK(greet::utf8::decode("\xE0\xA0\x80") == U"\u0800");
    CHECK(greet::utf8::decode("\xED\x9F\xBF") == U"\uD7FF");
    CHECK(greet::utf8::decode("\xEE\x80\x80") == U"\uE000");
    CHECK(greet::utf8::decode("\xEF\xBF\xBF") == U"\uFFFF");
    CHECK(greet::utf8::decode("\xF0\x90\x80\x80") == U"\U00010000");
    CHECK(greet::utf8::decode("\xF4\x8F\xBF\xBF") == U"\U0010FFFF");
    CHECK(greet::utf8::decode("\xEF\xBB\xBFx") == U"\uFEFFx"); // a BOM is an ordinary character
}

TEST_CASE("utf8::decode and is_valid reject every class of ill-formed input", "[utf8]") {
    for (const IllFormed& v : ill_formed_vectors()) {
        INFO(v.what);
        CHECK_FALSE(greet::utf8::is_valid(v.bytes));
        const auto error = thrown<greet::Utf8Error>([&] { greet::utf8::decode(v.bytes); });
        REQUIRE(error);
        CHECK(error->offset() == v.offset);
        CHECK(error->code() == std::errc::illegal_byte_sequence);
        CHECK(test::starts_with(error->what(), "utf8::decode: EILSEQ ("));
        CHECK(test::contains(error->what(), "at byte " + std::to_string(v.offset)));
        // Every Utf8Error is a greet::Error, so one catch handles all failures.
        CHECK(thrown<greet::Error>([&] { greet::utf8::decode(v.bytes); }));
    }
}

TEST_CASE("utf8::is_valid accepts well-formed text", "[utf8]") {
    CHECK(greet::utf8::is_valid(""));
    CHECK(greet::utf8::is_valid("ascii only"));
    CHECK(greet::utf8::is_valid(std::string("\0\x7F", 2)));
    CHECK(greet::utf8::is_valid("Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
    CHECK(greet::utf8::is_valid("\xED\x9F\xBF\xEE\x80\x80")); // U+D7FF and U+E000 around the surrogates
}

TEST_CASE("utf8::sanitize replaces each maximal subpart with one U+FFFD", "[utf8]") {
    SECTION("every class of ill-formed input") {
        for (const IllFormed& v : ill_formed_vectors()) {
            INFO(v.what);
            CHECK(greet::utf8::sanitize(v.bytes) == v.sanitized);
        }
    }
    SECTION("the Unicode and WHATWG example") {
        // 61 | F1 80 80 | E1 80 | C2 | 62 | 80 | 63 | 80 | BF | 64: F1 80 80 and E1 80 are
        // valid beginnings cut short (one U+FFFD each), C2 is cut by 62, and 80 and BF are
        // stray continuation bytes (one each).
        CHECK(greet::utf8::sanitize("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64") ==
              "a" + replacements(3) + "b" + fffd + "c" + replacements(2) + "d");
    }
    SECTION("Unicode Tables 3-8 to 3-11") {
        // Table 3-8: C0 and C1 never start a sequence; E0 80 and F0 81 fail at the second byte.
        CHECK(greet::utf8::sanitize("\xC0\xAF\xE0\x80\xBF\xF0\x81\x82\x41") == replacements(8) + "A");
        // Table 3-9: ED A0 and ED BF are surrogate beginnings, so ED stands alone.
        CHECK(greet::utf8::sanitize("\xED\xA0\x80\xED\xBF\xBF\xED\xAF\x41") == replacements(8) + "A");
        // Table 3-10: F4 91 is past U+10FFFF; FF never starts a sequence.
        CHECK(greet::utf8::sanitize("\xF4\x91\x92\x93\xFF\x41\x80\xBF\x42") ==
              replacements(5) + "A" + replacements(2) + "B");
        // Table 3-11: four truncated sequences, one U+FFFD each.
        CHECK(greet::utf8::sanitize("\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41") == replacements(4) + "A");
    }
    SECTION("well-formed text passes through unchanged") {
        const std::string text = "Zo\xC3\xAB \xE2\x82\xAC \xF0\x9F\x98\x80" + fffd;
        CHECK(greet::utf8::sanitize(text) == text);
        CHECK(greet::utf8::sanitize("").empty());
        CHECK(greet::utf8::sanitize(std::string("a\0b", 3)) == std::string("a\0b", 3));
    }
    SECTION("the result is always valid") {
        std::string all_bytes;
        for (int b = 0; b < 256; ++b) all_bytes += static_cast<char>(b);
        const std::string once = greet::utf8::sanitize(all_bytes + all_bytes);
        CHECK(greet::utf8::is_valid(once));
        CHECK(greet::utf8::sanitize(once) == once);
    }
}

TEST_CASE("every scalar value round-trips through UTF-32, UTF-16 and UTF-8", "[utf8]") {
    std::u32string all;
    std::u16string all16;
    std::string expected;
    all.reserve(0x110000);
    all16.reserve(0x110000 + 0x100000);
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        all += cp;
        if (cp >= 0x10000) {
            all16 += static_cast<char16_t>(0xD800 + ((cp - 0x10000) >> 10));
            all16 += static_cast<char16_t>(0xDC00 + ((cp - 0x10000) & 0x3FF));
        } else {
            all16 += static_cast<char16_t>(cp);
        }
        expected += reference_encode(cp);
    }
    REQUIRE(all.size() == 0x110000 - 0x800);
    // 128 one-byte, 1920 two-byte, 61440 three-byte and 1048576 four-byte characters.
    REQUIRE(expected.size() == 128 + 1920 * 2 + 61440 * 3 + 1048576 * 4);

    const std::string from32 = greet::utf8::encode(all);
    CHECK(from32 == expected);
    CHECK(greet::utf8::encode(all16) == expected);
    CHECK(greet::utf8::is_valid(from32));
    CHECK(greet::utf8::decode(from32) == all);
    CHECK(greet::utf8::sanitize(from32) == from32);
}
