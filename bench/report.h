// The comparison's results: the table per client-thread count (Markdown)
// and the same as JSON, with the targets and whether they are met.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "workloads.h"

namespace ihsm::bench {

struct Cell {
  std::vector<double> rates;  // ops/s of each round (all client threads together)
  uint64_t checked = 0;       // answers verified after the rounds
  std::string na;             // not measured, and why
  uint64_t objects = 0;       // kFind: token objects actually searched among
  double rate() const { return median(rates); }
};

struct Row {
  Workload workload;
  size_t threads = 1;
  std::vector<Cell> cells;  // one per system, in Report::systems order
};

struct Report {
  std::vector<std::string> systems;       // "openssl", "ihsm", "softhsm", ...
  std::vector<std::string> descriptions;  // of each system
  std::vector<Row> rows;
  double seconds = 0;
  int rounds = 0;
  std::string load_before, load_after;  // /proc/loadavg
  std::vector<std::string> notes;
};

// The target for a row ("" when none) and whether the row meets it:
// "yes", "no (...)" or "-" when a number it needs is missing.
std::string goal_text(const Row& row);
std::string goal_met(const Report& report, const Row& row);

void print_tables(const Report& report);
nlohmann::json to_json(const Report& report);

}  // namespace ihsm::bench
