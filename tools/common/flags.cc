// Copyright 2026 The Outpost Authors.
#include "common/flags.h"

#include <charconv>

namespace outpost::cli {

bool Flags::Parse(const std::vector<FlagSpec>& specs, const std::vector<std::string>& args,
                  std::string* error) {
  values_.clear();
  positional_.clear();
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positional || arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      if (!only_positional && arg.size() > 1 && arg[0] == '-') {
        *error = "unknown option " + arg;
        return false;
      }
      positional_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_inline_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      has_inline_value = true;
    }
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs) {
      if (s.name == name) spec = &s;
    }
    if (spec == nullptr) {
      *error = "unknown option --" + name;
      return false;
    }
    if (!spec->takes_value) {
      if (has_inline_value) {
        *error = "option --" + name + " takes no value";
        return false;
      }
    } else if (!has_inline_value) {
      if (i + 1 >= args.size()) {
        *error = "option --" + name + " needs a value";
        return false;
      }
      value = args[++i];
    }
    auto& slot = values_[name];
    if (!slot.empty() && !spec->repeatable) {
      *error = "option --" + name + " given twice";
      return false;
    }
    slot.push_back(std::move(value));
  }
  return true;
}

bool Flags::Has(std::string_view name) const { return values_.find(name) != values_.end(); }

std::string Flags::Get(std::string_view name, std::string_view fallback) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::string(fallback);
  return it->second.back();
}

std::vector<std::string> Flags::GetList(std::string_view name) const {
  std::vector<std::string> out;
  auto it = values_.find(name);
  if (it == values_.end()) return out;
  for (const auto& v : it->second) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      if (comma > start) out.push_back(v.substr(start, comma - start));
      start = comma + 1;
    }
  }
  return out;
}

bool Flags::GetUint(std::string_view name, uint64_t fallback, uint64_t max, uint64_t* out,
                    std::string* error) const {
  if (!Has(name)) {
    *out = fallback;
    return true;
  }
  const std::string text = Get(name);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    *error = "option --" + std::string(name) + ": '" + text + "' is not a non-negative integer";
    return false;
  }
  if (v > max) {
    *error = "option --" + std::string(name) + ": " + text + " is above the maximum " + std::to_string(max);
    return false;
  }
  *out = v;
  return true;
}

}  // namespace outpost::cli
