// Copyright 2026 The Outpost Authors.
#include "common/flags.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <memory>

namespace outpost::cli {

namespace {

// One CLI::App per parse: the options write into `values` (name → every value, in order), positionals into
// `positional`. A switch's "value" is empty.
struct Declared {
  std::map<std::string, std::vector<std::string>, std::less<>> values;
  std::vector<std::string> positional;
  std::map<std::string, int64_t> switches;
};

// CLI11's help without its own usage line: the description starts with ours.
class Formatter final : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App*, std::string) const override { return ""; }
};

constexpr size_t kHelpColumn = 30;
constexpr size_t kHelpWidth = 110;

// `text` wrapped at spaces to lines of at most `width` characters (CLI11 indents each line to the column).
std::string Wrap(const std::string& text, size_t width) {
  std::string out, line;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  return out + line;
}

void Declare(CLI::App& app, const Usage& usage, const std::vector<FlagSpec>& specs, Declared* d) {
  std::string description = "usage: " + usage.program + " [options]";
  if (!usage.arguments.empty()) description += " " + usage.arguments;
  if (!usage.description.empty()) description += "\n\n" + usage.description;
  app.description(description);
  app.footer(usage.footer);
  app.formatter(std::make_shared<Formatter>());
  app.get_formatter()->column_width(kHelpColumn);
  app.set_help_flag("-h,--help", "print this help and exit");
  if (!usage.version.empty()) app.set_version_flag("--version", usage.version, "print the version and exit");
  for (const FlagSpec& spec : specs) {
    const std::string flag = "--" + spec.name;
    if (!spec.takes_value) {
      app.add_flag(flag, d->switches[spec.name], Wrap(spec.help, kHelpWidth - kHelpColumn));
      continue;
    }
    auto& slot = d->values[spec.name];
    CLI::Option* option = app.add_option(flag, slot, Wrap(spec.help, kHelpWidth - kHelpColumn))
                              ->type_name(spec.value)
                              ->allow_extra_args(false);
    if (spec.repeatable) {
      option->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    } else {
      option->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::Throw);
    }
  }
  // Positional arguments are said in the synopsis, not listed with the options.
  app.add_option("arguments", d->positional)->group("");
}

}  // namespace

std::string HelpText(const Usage& usage, const std::vector<FlagSpec>& specs) {
  CLI::App app;
  Declared d;
  Declare(app, usage, specs, &d);
  return app.help();
}

int Flags::Parse(const Usage& usage, const std::vector<FlagSpec>& specs, const std::vector<std::string>& args,
                 std::string* message) {
  values_.clear();
  positional_.clear();
  message->clear();
  CLI::App app;
  Declared d;
  Declare(app, usage, specs, &d);
  const std::string tool = usage.program.substr(0, usage.program.find(' '));
  auto refuse = [&](const std::string& why) {
    *message = tool + ": " + why + " (" + usage.program + " --help)";
    return kExitUsage;
  };
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    *message = app.help();
    return kExitOk;
  } catch (const CLI::CallForVersion&) {
    *message = usage.version + "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::string why = e.what();
    if (why.starts_with("The following argument")) {
      why = "unknown option or argument:" + why.substr(why.find(':') + 1);
    }
    return refuse(why);
  }
  if (usage.arguments.empty() && !d.positional.empty()) {
    return refuse("unexpected argument '" + d.positional.front() + "'");
  }
  for (auto& [name, values] : d.values) {
    if (!values.empty()) values_[name] = std::move(values);
  }
  for (const auto& [name, count] : d.switches) {
    if (count > 0) values_[name] = {""};
  }
  positional_ = std::move(d.positional);
  return -1;
}

int PrintParseMessage(int exit_code, const std::string& message) {
  if (exit_code == kExitOk) {
    std::fputs(message.c_str(), stdout);
  } else {
    std::fprintf(stderr, "%s\n", message.c_str());
  }
  return exit_code;
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
    *error = "--" + std::string(name) + ": '" + text + "' is not a non-negative integer";
    return false;
  }
  if (v > max) {
    *error = "--" + std::string(name) + ": " + text + " is above the maximum " + std::to_string(max);
    return false;
  }
  *out = v;
  return true;
}

}  // namespace outpost::cli
