// Copyright 2026 The Outpost Authors.
//
// outpostd's subcommands. Each lives in its own file and describes itself here: main.cc parses the flags a
// command declares (common/flags.h: CLI11 makes its --help from the same declaration and answers --version),
// and runs it.
#ifndef OUTPOST_TOOLS_OUTPOSTD_COMMAND_H_
#define OUTPOST_TOOLS_OUTPOSTD_COMMAND_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/flags.h"

namespace outpostd {

using outpost::cli::Flags;
using outpost::cli::FlagSpec;
using outpost::cli::kExitError;
using outpost::cli::kExitOk;
using outpost::cli::kExitUsage;

struct Command {
  std::string name;
  std::string summary;      // one line for `outpostd --help`
  std::string arguments;    // the positional arguments' synopsis ("NAME"); empty: none
  std::string description;  // `outpostd NAME --help` before the flags; the flags' own help comes from `flags`
  std::vector<FlagSpec> flags;
  int (*run)(const Flags& flags) = nullptr;  // returns the exit code
  std::string footer = {};                   // `outpostd NAME --help` after the flags
};

Command ServeCommand();        // serve.cc
Command AddUserCommand();      // users_command.cc
Command AddDeviceCommand();    // users_command.cc
Command DevicesCommand();      // users_command.cc
Command RevokeDeviceCommand();  // users_command.cc
Command RemoveUserCommand();    // users_command.cc
Command MigrateCommand();      // migrate_command.cc
Command StatsCommand();        // stats_command.cc
Command KeygenCommand();       // curve_command.cc
Command CurvePublicCommand();  // curve_command.cc
Command BackupCommand();       // backup_command.cc
Command RestoreCommand();      // backup_command.cc
Command IncarnationCommand();  // backup_command.cc

// Prints "outpostd: MESSAGE" on stderr and returns `exit_code`.
int Fail(int exit_code, std::string_view message);

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_COMMAND_H_
