#include "report.h"

#include <openssl/crypto.h>

#include <cstdio>
#include <optional>
#include <thread>

namespace ihsm::bench {

namespace {

std::optional<double> rate_of(const Report& r, const Row& row, const std::string& system) {
  for (size_t s = 0; s < r.systems.size(); ++s) {
    if (r.systems[s] == system && row.cells[s].na.empty() && !row.cells[s].rates.empty()) {
      return row.cells[s].rate();
    }
  }
  return std::nullopt;
}

std::optional<double> ratio(const Report& r, const Row& row, const std::string& over) {
  const auto i = rate_of(r, row, "ihsm"), o = rate_of(r, row, over);
  if (!i || !o || *o <= 0) return std::nullopt;
  return *i / *o;
}

const Row* one_thread_row(const Report& r, const Row& row) {
  for (const Row& other : r.rows) {
    if (other.threads == 1 && other.workload.name == row.workload.name) return &other;
  }
  return nullptr;
}

// The targets of issue 8, for one row.
struct Goal {
  double vs_openssl = 0;  // ihsm / OpenSSL at least
  double vs_softhsm = 0;  // ihsm / SoftHSM at least
  double max_us = 0;      // one operation at most, in µs
  double scaling = 0;     // ihsm, 2 client threads / 1, at least
};

Goal goal_of(const Row& row) {
  Goal g;
  const Op op = row.workload.op;
  if (row.threads != 1) {
    if (is_sign(op)) g.scaling = 1.7;
    return g;
  }
  g.vs_softhsm = 2;
  if (op == Op::kEcdsaP256) g.vs_openssl = 0.85;
  if (op == Op::kRsa2048Pkcs || op == Op::kRsa2048Pss) g.vs_openssl = 0.95;
  if (op == Op::kGcm1k) g.vs_openssl = 0.35, g.vs_softhsm = 4;
  if (op == Op::kGcm16k) g.vs_openssl = 0.8;
  if (op == Op::kKeygenToken) g.vs_softhsm = 10;
  if (op == Op::kFind && row.workload.objects >= 100000) g.max_us = 100;
  return g;
}

std::string num(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string rate_text(const Cell& c) {
  if (!c.na.empty()) return "n/a";
  if (c.rates.empty()) return "-";
  return num(c.rate(), 0);
}

std::string ratio_text(std::optional<double> v) { return v ? num(*v, 2) + "x" : "-"; }

}  // namespace

std::string goal_text(const Row& row) {
  const Goal g = goal_of(row);
  std::string t;
  auto add = [&](const std::string& s) { t += (t.empty() ? "" : ", ") + s; };
  if (g.vs_openssl > 0) add(">= " + num(g.vs_openssl, 2) + "x OpenSSL");
  if (g.vs_softhsm > 0) add(">= " + num(g.vs_softhsm, 0) + "x SoftHSM");
  if (g.max_us > 0) add("<= " + num(g.max_us, 0) + " us");
  if (g.scaling > 0) add(">= " + num(g.scaling, 1) + "x 1 thread");
  return t;
}

std::string goal_met(const Report& r, const Row& row) {
  const Goal g = goal_of(row);
  std::string failed;
  bool missing = false;
  // `unit`: how the achieved value is shown ("x OpenSSL", " us", ...).
  auto need = [&](std::optional<double> got, double want, bool at_least, int decimals,
                  const char* unit) {
    if (want <= 0) return;
    if (!got) {
      missing = true;
      return;
    }
    if (at_least ? *got < want : *got > want) {
      failed += (failed.empty() ? "" : ", ") + num(*got, decimals) + unit;
    }
  };
  need(ratio(r, row, "openssl"), g.vs_openssl, true, 2, "x OpenSSL");
  need(ratio(r, row, "softhsm"), g.vs_softhsm, true, 2, "x SoftHSM");
  if (g.max_us > 0) {
    const auto i = rate_of(r, row, "ihsm");
    need(i && *i > 0 ? std::optional<double>(1e6 * static_cast<double>(row.threads) / *i)
                     : std::nullopt,
         g.max_us, false, 0, " us");
  }
  if (g.scaling > 0) {
    const Row* one = one_thread_row(r, row);
    const auto two_rate = rate_of(r, row, "ihsm");
    const auto one_rate = one != nullptr ? rate_of(r, *one, "ihsm") : std::nullopt;
    need(two_rate && one_rate && *one_rate > 0 ? std::optional<double>(*two_rate / *one_rate)
                                               : std::nullopt,
         g.scaling, true, 2, "x");
  }
  if (goal_text(row).empty()) return "";
  if (!failed.empty()) return "no (" + failed + ")";
  return missing ? "-" : "yes";
}

void print_tables(const Report& r) {
  std::printf("\n%s; %u CPU(s); ", cpu_model().c_str(), std::thread::hardware_concurrency());
  for (size_t s = 0; s < r.systems.size(); ++s) {
    std::printf("%s%s: %s", s == 0 ? "" : "; ", r.systems[s].c_str(), r.descriptions[s].c_str());
  }
  std::printf("\nload average before: %s, after: %s; medians of %d round(s) of %.2f s\n",
              r.load_before.c_str(), r.load_after.c_str(), r.rounds, r.seconds);
  for (const size_t threads : {size_t{1}, size_t{2}}) {
    std::printf("\n%zu client thread%s (ops/s of all threads together)\n\n", threads,
                threads == 1 ? "" : "s");
    std::string header = "| workload |";
    std::string rule = "|---|";
    for (const std::string& s : r.systems) {
      header += " " + s + " ops/s |";
      rule += "---:|";
    }
    header += " ihsm/OpenSSL | ihsm/SoftHSM | goal | met? |";
    rule += "---:|---:|---|---|";
    std::printf("%s\n%s\n", header.c_str(), rule.c_str());
    for (const Row& row : r.rows) {
      if (row.threads != threads) continue;
      std::string line = "| " + row.workload.name + " |";
      for (const Cell& c : row.cells) line += " " + rate_text(c) + " |";
      line += " " + ratio_text(ratio(r, row, "openssl")) + " | " +
              ratio_text(ratio(r, row, "softhsm")) + " | " + goal_text(row) + " | " +
              goal_met(r, row) + " |";
      std::printf("%s\n", line.c_str());
    }
  }
  std::printf("\n");
  for (const Row& row : r.rows) {
    for (size_t s = 0; s < r.systems.size(); ++s) {
      const Cell& c = row.cells[s];
      if (!c.na.empty() && row.threads == 1) {
        std::printf("n/a: %s, %s: %s\n", r.systems[s].c_str(), row.workload.name.c_str(),
                    c.na.c_str());
      }
    }
  }
  for (const std::string& n : r.notes) std::printf("%s\n", n.c_str());
}

nlohmann::json to_json(const Report& r) {
  nlohmann::json j;
  j["machine"] = {{"cpu", cpu_model()},
                  {"cpus", std::thread::hardware_concurrency()},
                  {"openssl", OpenSSL_version(OPENSSL_VERSION)},
                  {"load_before", r.load_before},
                  {"load_after", r.load_after}};
  for (size_t s = 0; s < r.systems.size(); ++s) {
    j["systems"].push_back({{"name", r.systems[s]}, {"description", r.descriptions[s]}});
  }
  j["seconds_per_round"] = r.seconds;
  j["rounds"] = r.rounds;
  for (const Row& row : r.rows) {
    nlohmann::json jr = {{"workload", row.workload.name}, {"threads", row.threads}};
    if (row.workload.op == Op::kFind) jr["objects"] = row.workload.objects;
    for (size_t s = 0; s < r.systems.size(); ++s) {
      const Cell& c = row.cells[s];
      nlohmann::json jc;
      if (!c.na.empty()) {
        jc = {{"na", c.na}};
      } else {
        jc = {{"ops_per_s", c.rate()}, {"rounds", c.rates}, {"answers_checked", c.checked}};
        if (row.workload.op == Op::kFind) jc["objects_searched"] = c.objects;
      }
      jr["systems"][r.systems[s]] = jc;
    }
    const auto vo = ratio(r, row, "openssl"), vs = ratio(r, row, "softhsm");
    jr["ihsm_vs_openssl"] = vo ? nlohmann::json(*vo) : nlohmann::json();
    jr["ihsm_vs_softhsm"] = vs ? nlohmann::json(*vs) : nlohmann::json();
    jr["goal"] = goal_text(row);
    jr["met"] = goal_met(r, row);
    j["results"].push_back(jr);
  }
  j["notes"] = r.notes;
  return j;
}

}  // namespace ihsm::bench
