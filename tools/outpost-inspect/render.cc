// Copyright 2026 The Outpost Authors.
//
// Text and JSON output of outpost-inspect (inspect.h).
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "inspect.h"

namespace outpost::inspect {
namespace {

// Enough for a chat message behind its binary envelope, short enough to keep a table readable.
constexpr size_t kPayloadCharsMax = 200;

// Length of the UTF-8 sequence at text[i] when it is valid and minimal, else 0.
size_t Utf8Length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = byte(i);
  size_t n = 0;
  uint32_t cp = 0;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

bool IsTimeKey(std::string_view key) { return key.ends_with("_at_ms") || key.ends_with("_time_ms"); }

std::string Cell(std::string_view key, const Json& value) {
  // Payloads can be long; other strings (stream names, errors) are shown whole.
  if (value.is_string()) {
    return Printable(value.get_ref<const std::string&>(), key == "payload" ? kPayloadCharsMax : 0);
  }
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_null()) return "-";
  if (value.is_number_integer() && IsTimeKey(key)) return FormatTimeMs(value.get<int64_t>());
  if (value.is_number()) return value.dump();
  return Printable(RenderJson(value), 60);
}

// Display width: code points (Printable leaves only printable text, one column each for what we print).
size_t Width(std::string_view text) {
  size_t width = 0;
  for (unsigned char c : text) width += (c & 0xC0) != 0x80 ? 1 : 0;
  return width;
}

void Pad(std::string* out, std::string_view text, size_t width) {
  out->append(text);
  out->append(width - std::min(width, Width(text)), ' ');
}

std::string Table(const Json& rows) {
  if (rows.empty()) return "(none)\n";
  std::vector<std::string> keys;
  for (const auto& item : rows.front().items()) keys.push_back(item.key());
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> widths;
  for (const std::string& key : keys) widths.push_back(Width(key));
  for (const Json& row : rows) {
    std::vector<std::string> line;
    for (size_t k = 0; k < keys.size(); ++k) {
      line.push_back(row.contains(keys[k]) ? Cell(keys[k], row[keys[k]]) : "-");
      widths[k] = std::max(widths[k], Width(line.back()));
    }
    cells.push_back(std::move(line));
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& line) {
    for (size_t k = 0; k < line.size(); ++k) {
      if (k + 1 == line.size()) {
        out += line[k];
      } else {
        Pad(&out, line[k], widths[k]);
        out += "  ";
      }
    }
    out += '\n';
  };
  std::vector<std::string> header;
  for (const std::string& key : keys) header.push_back(Printable(key));
  emit(header);
  for (const auto& line : cells) emit(line);
  return out;
}

bool IsTable(const Json& value) {
  return value.is_array() &&
         std::all_of(value.begin(), value.end(), [](const Json& v) { return v.is_object(); });
}

}  // namespace

std::string Printable(std::string_view text, size_t chars_max) {
  std::string out;
  size_t chars = 0;  // of the output: an escape counts as the characters it prints
  for (size_t i = 0; i < text.size();) {
    if (chars_max != 0 && chars >= chars_max) {
      out += "…";
      break;
    }
    const size_t before = out.size();
    const size_t n = Utf8Length(text, i);
    const auto c = static_cast<unsigned char>(text[i]);
    // C1 controls are U+0080..U+009F: 0xC2 0x80..0x9F in UTF-8.
    const bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0;
    if (n == 0 || c < 0x20 || c == 0x7F || c1) {
      for (size_t k = 0; k < std::max<size_t>(n, 1); ++k) {
        out += fmt::format("\\x{:02X}", static_cast<unsigned char>(text[i + k]));
      }
      i += std::max<size_t>(n, 1);
    } else if (c == '\\') {
      out += "\\\\";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
    chars += Width(std::string_view(out).substr(before));
  }
  return out;
}

std::string FormatTimeMs(int64_t ms) {
  if (ms == 0) return "-";
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  const int64_t millis = ((ms % 1000) + 1000) % 1000;
  return fmt::format("{:%Y-%m-%d %H:%M:%S}.{:03d}", fmt::gmtime(seconds), millis);
}

std::string RenderJson(const Json& value) {
  return value.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string RenderText(const Json& value) {
  if (IsTable(value)) return Table(value);
  if (!value.is_object()) return Cell("", value) + "\n";
  size_t width = 0;
  for (const auto& item : value.items()) {
    if (!item.value().is_structured()) width = std::max(width, Width(Printable(item.key())));
  }
  std::string out;
  for (const auto& item : value.items()) {
    const std::string key = Printable(item.key());
    if (item.value().is_structured()) {
      out += "\n" + key + ":\n" + RenderText(item.value());
      continue;
    }
    Pad(&out, key, width);
    out += "  " + Cell(item.key(), item.value()) + "\n";
  }
  return out;
}

}  // namespace outpost::inspect
