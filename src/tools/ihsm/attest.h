// The `ihsm attest ...` subcommands, each in its own file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

// `attest verify`: checks a report offline (no device). Sets `action` to
// the command's body, which returns the exit code: 0 valid, 1 invalid,
// 2 usage error.
void add_attest_verify(CLI::App& attest, std::function<int()>& action);

// `audit show | verify | export | rotate` (src/tools/ihsm/audit.cpp).
// `socket` and `json` are the global options, read when the action runs.
void add_audit(CLI::App& app, const std::string& socket, const bool& json,
               std::function<int()>& action);
