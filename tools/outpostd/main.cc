// Copyright 2026 The Outpost Authors.
//
// outpostd: the Outpost server daemon and its admin commands. Parses the command line, dispatches to one
// subcommand (command.h) and turns its outcome into the exit code: 0 ok, 1 failed, 2 bad usage.
#include <fmt/core.h>

#include <cstdio>
#include <string>
#include <vector>

#include "command.h"
#include "outpost/version.h"

namespace outpostd {
namespace {

std::vector<Command> AllCommands() {
  return {ServeCommand(),      AddUserCommand(), AddDeviceCommand(),  DevicesCommand(), RevokeDeviceCommand(),
          RemoveUserCommand(), MigrateCommand(), StatsCommand(),      KeygenCommand(),  CurvePublicCommand(),
          BackupCommand(),     RestoreCommand(), IncarnationCommand()};
}

std::string Overview() {
  std::string out =
      "usage: outpostd [COMMAND] [options]    (outpostd COMMAND --help for each)\n\n"
      "The Outpost sync server. Quick start:\n"
      "  outpostd add-user --data /var/lib/outpost alice     # prints alice's first device token\n"
      "  outpostd --data /var/lib/outpost --listen tcp://0.0.0.0:7700\n"
      "Attachments too (uploads and downloads over HTTP; a TLS proxy in front, docs/deploy.md):\n"
      "  outpostd --data /var/lib/outpost --http 127.0.0.1:8080 --media-url "
      "https://media.example.org/files/\n"
      "Many servers on one PostgreSQL database (each with its own --data for its lock and stats):\n"
      "  outpostd migrate --store postgresql://outpost:PASSWORD@db/outpost    # once per upgrade\n"
      "  outpostd add-user --store postgresql://outpost:PASSWORD@db/outpost alice\n"
      "  outpostd --data /var/lib/outpost --store postgresql://outpost:PASSWORD@db/outpost\n\ncommands:\n";
  for (const auto& c : AllCommands()) out += fmt::format("  {:<14} {}\n", c.name, c.summary);
  return out;
}

bool IsHelp(const std::string& arg) { return arg == "--help" || arg == "-h" || arg == "help"; }

std::string VersionLine() { return std::string("outpostd ") + outpost::Version(); }

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(Overview().c_str(), stderr);
    return kExitUsage;
  }
  if (IsHelp(args[0])) {
    std::fputs(Overview().c_str(), stdout);
    return kExitOk;
  }
  if (args[0] == "--version") {
    std::puts(VersionLine().c_str());
    return kExitOk;
  }
  const std::vector<Command> commands = AllCommands();
  const Command* command = nullptr;
  for (const auto& c : commands) {
    if (c.name == args[0]) command = &c;
  }
  if (command != nullptr) {
    args.erase(args.begin());
  } else if (args[0].starts_with("--")) {
    command = &commands.front();  // `outpostd --data DIR ...` serves
  } else {
    return Fail(kExitUsage, "unknown command '" + args[0] + "' (outpostd --help lists them)");
  }
  const outpost::cli::Usage usage{"outpostd " + command->name, command->arguments, command->description,
                                  command->footer, VersionLine()};
  Flags flags;
  std::string message;
  if (int rc = flags.Parse(usage, command->flags, args, &message); rc >= 0) {
    return outpost::cli::PrintParseMessage(rc, message);
  }
  return command->run(flags);
}

}  // namespace

int Fail(int exit_code, std::string_view message) {
  std::fflush(stdout);
  // One line: a message that spans lines (a database driver's, say) is joined with spaces.
  std::string line;
  for (char c : message) {
    const bool control = c == '\n' || c == '\r' || c == '\t';
    if (!control)
      line.push_back(c);
    else if (!line.empty() && line.back() != ' ')
      line.push_back(' ');
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  fmt::print(stderr, "outpostd: {}\n", line);
  return exit_code;
}

}  // namespace outpostd

int main(int argc, char** argv) { return outpostd::Run(argc, argv); }
