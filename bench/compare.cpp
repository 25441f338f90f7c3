// ihsm-bench (default mode): the comparative benchmark of issue 8.
//
//   ihsm-bench [--seconds N] [--rounds R] [--json] [--smoke]
//              [--module NAME=PATH]... [--socket PATH] [--ihsmd PATH]
//              [--lookup-objects N[,N...]] [--populate-seconds S] [--only TEXT[,TEXT...]]
//
// Systems: raw OpenSSL in this process ("openssl") and every PKCS#11 module
// given with --module; by default ihsm's module from the build directory
// ("ihsm", with an ihsmd the benchmark starts unless --socket/IHSM_SOCKET)
// and SoftHSMv2 ("softhsm", /usr/lib/softhsm/libsofthsm2.so) when
// installed, on a token in a temporary directory (SOFTHSM2_CONF).
//
// For every workload, 1 then 2 client threads (each its own session and
// keys; OpenSSL: its own keys and contexts); every round runs each system
// once, the order rotating from round to round so machine drift hits all
// alike; the table has the median. Answers are checked after each round,
// outside the timing (workloads.h, Runner::check): a wrong one ends the run.
#include "compare.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon.h"
#include "openssl_system.h"
#include "p11_system.h"
#include "report.h"

#ifndef IHSM_BENCH_IHSMD
#define IHSM_BENCH_IHSMD "ihsmd"
#endif
#ifndef IHSM_BENCH_PKCS11
#define IHSM_BENCH_PKCS11 "libihsm-pkcs11.so"
#endif

namespace ihsm::bench {

namespace {

constexpr const char* kSofthsmModule = "/usr/lib/softhsm/libsofthsm2.so";

struct ModuleArg {
  std::string name, path;
};

struct Options {
  double seconds = 1;
  int rounds = 3;
  bool json = false;
  bool smoke = false;
  std::vector<ModuleArg> modules;  // empty: ihsm and, when installed, SoftHSMv2
  std::string socket;
  std::string ihsmd = IHSM_BENCH_IHSMD;
  std::vector<uint64_t> lookup_objects = {10000, 100000};
  double populate_seconds = 300;
  std::vector<std::string> only;  // workloads whose name contains one of these
};

[[noreturn]] void usage(int code) {
  std::fprintf(
      code == 0 ? stdout : stderr,
      "usage: ihsm-bench [--seconds N] [--rounds R] [--json] [--smoke] [--module NAME=PATH]...\n"
      "                  [--socket PATH] [--ihsmd PATH] [--lookup-objects N[,N...]]\n"
      "                  [--populate-seconds S] [--only TEXT[,TEXT...]]\n"
      "       ihsm-bench --libihsm [...]   libihsm against OpenSSL, token objects (--help there)\n"
      "       ihsm-bench --capacity N      one partition of N token keys (libihsm)\n"
      "  --seconds N      one round of one system, in seconds (default 1)\n"
      "  --rounds R       rounds per workload and thread count (default 3); median reported\n"
      "  --json           the results as one JSON object on stdout (progress on stderr)\n"
      "  --smoke          a short run with small object counts: checks, not numbers\n"
      "  --module N=P     a PKCS#11 module to compare, repeatable; the names 'ihsm' and\n"
      "                   'softhsm' get the ratio columns (default: ihsm=%s\n"
      "                   and softhsm=%s when installed)\n"
      "  --socket PATH    the ihsmd for ihsm's module (default $IHSM_SOCKET, else one of our own)\n"
      "  --ihsmd PATH     the daemon to start (default %s)\n"
      "  --lookup-objects token objects to find among (default 10000,100000)\n"
      "  --populate-seconds  time allowed per system to create them (default 300)\n"
      "  --only TEXT      only workloads whose name contains TEXT (e.g. ECDSA,GCM)\n",
      IHSM_BENCH_PKCS11, kSofthsmModule, IHSM_BENCH_IHSMD);
  std::exit(code);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const size_t end = comma == std::string::npos ? s.size() : comma;
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  bool lookup_given = false, seconds_given = false, rounds_given = false, budget_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(2);
      return argv[++i];
    };
    try {
      if (a == "--seconds") {
        o.seconds = std::stod(value());
        seconds_given = true;
      } else if (a == "--rounds") {
        o.rounds = std::stoi(value());
        rounds_given = true;
      } else if (a == "--json") {
        o.json = true;
      } else if (a == "--smoke") {
        o.smoke = true;
      } else if (a == "--module") {
        const std::string v = value();
        const size_t eq = v.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) usage(2);
        o.modules.push_back({v.substr(0, eq), v.substr(eq + 1)});
      } else if (a == "--socket") {
        o.socket = value();
      } else if (a == "--ihsmd") {
        o.ihsmd = value();
      } else if (a == "--lookup-objects") {
        o.lookup_objects.clear();
        for (const std::string& n : split(value())) o.lookup_objects.push_back(std::stoull(n));
        lookup_given = true;
      } else if (a == "--populate-seconds") {
        o.populate_seconds = std::stod(value());
        budget_given = true;
      } else if (a == "--only") {
        o.only = split(value());
      } else if (a == "--help" || a == "-h") {
        usage(0);
      } else {
        std::fprintf(stderr, "ihsm-bench: unknown option %s\n", a.c_str());
        usage(2);
      }
    } catch (const std::logic_error&) {
      std::fprintf(stderr, "ihsm-bench: bad value for %s\n", a.c_str());
      usage(2);
    }
  }
  if (o.smoke) {
    if (!seconds_given) o.seconds = 0.03;
    if (!rounds_given) o.rounds = 1;
    if (!lookup_given) o.lookup_objects = {100, 300};
    if (!budget_given) o.populate_seconds = 30;
  }
  if (o.seconds <= 0 || o.rounds < 1 || o.populate_seconds <= 0) usage(2);
  for (const uint64_t n : o.lookup_objects) {
    if (n == 0) usage(2);
  }
  if (o.socket.empty()) {
    if (const char* env = std::getenv("IHSM_SOCKET"); env != nullptr) o.socket = env;
  }
  if (o.modules.empty()) {
    o.modules.push_back({"ihsm", IHSM_BENCH_PKCS11});
    if (::access(kSofthsmModule, R_OK) == 0) o.modules.push_back({"softhsm", kSofthsmModule});
  }
  return o;
}

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string one, five, fifteen;
  f >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// A temporary directory, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char templ[] = "/tmp/ihsm-bench-softhsm-XXXXXX";
    if (::mkdtemp(templ) == nullptr) die("mkdtemp failed");
    path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// SoftHSMv2 reads its configuration when the module is initialised: a token
// directory of our own, the file backend (its default on Debian).
void configure_softhsm(const TempDir& dir) {
  std::filesystem::create_directories(dir.path + "/tokens");
  const std::string conf = dir.path + "/softhsm2.conf";
  std::ofstream f(conf);
  f << "directories.tokendir = " << dir.path << "/tokens\n"
    << "objectstore.backend = file\n"
    << "log.level = ERROR\n"
    << "slots.removable = false\n";
  f.close();
  if (!f) die("cannot write " + conf);
  ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);
}

// One round of one system: `runners` (one per client thread) run op() at
// once until `seconds` have passed, each at least once. Returns ops/s of
// all together.
double run_round(const std::vector<std::unique_ptr<Runner>>& runners, double seconds) {
  const size_t n = runners.size();
  std::atomic<size_t> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> failed{false};
  std::vector<uint64_t> counts(n, 0);
  Clock::time_point deadline;
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      try {
        uint64_t c = 0;
        do {
          runners[t]->op();
          ++c;
        } while (!failed.load(std::memory_order_relaxed) && Clock::now() < deadline);
        counts[t] = c;
      } catch (const Fatal&) {
        failed = true;  // die() has said why
      }
    });
  }
  while (ready.load() < n) std::this_thread::yield();
  const auto start = Clock::now();
  deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  go.store(true, std::memory_order_release);
  for (std::thread& t : threads) t.join();
  const double elapsed = seconds_since(start);
  if (failed) throw Fatal{};
  uint64_t total = 0;
  for (const uint64_t c : counts) total += c;
  return static_cast<double>(total) / elapsed;
}

}  // namespace

int run_compare(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::FILE* progress = opt.json ? stderr : stdout;
  auto log = [&](const std::string& s) { std::fprintf(progress, "%s\n", s.c_str()); };

  Report report;
  report.seconds = opt.seconds;
  report.rounds = opt.rounds;
  report.load_before = load_average();

  // What the modules need before they are loaded: ihsm's a daemon
  // (IHSM_SOCKET), SoftHSMv2 a configuration with a token directory.
  Daemon daemon;
  std::unique_ptr<TempDir> softhsm_dir;
  for (const ModuleArg& m : opt.modules) {
    if ((contains(m.name, "ihsm") || contains(m.path, "ihsm")) &&
        ::getenv("IHSM_SOCKET") == nullptr) {
      const std::string socket = opt.socket.empty() ? daemon.start(opt.ihsmd) : opt.socket;
      ::setenv("IHSM_SOCKET", socket.c_str(), 1);
      log("ihsm-bench: ihsmd at " + socket +
          (opt.socket.empty() ? " (started by the benchmark)" : ""));
    }
    if ((contains(m.name, "softhsm") || contains(m.path, "softhsm")) && !softhsm_dir) {
      softhsm_dir = std::make_unique<TempDir>();
      configure_softhsm(*softhsm_dir);
    }
  }

  std::vector<std::unique_ptr<System>> systems;
  systems.push_back(std::make_unique<OpensslSystem>());
  for (const ModuleArg& m : opt.modules) {
    log("ihsm-bench: loading " + m.name + " = " + m.path + ", making its token");
    systems.push_back(std::make_unique<P11System>(m.name, m.path));
  }
  for (const auto& s : systems) {
    report.systems.push_back(s->name());
    report.descriptions.push_back(s->description());
    log("  " + s->name() + ": " + s->description());
  }

  std::vector<Workload> workloads;
  for (const Workload& w : all_workloads(opt.lookup_objects)) {
    bool chosen = opt.only.empty();
    for (const std::string& o : opt.only) chosen |= contains(w.name, o.c_str());
    if (chosen) workloads.push_back(w);
  }
  char plan[160];
  std::snprintf(plan, sizeof plan,
                "ihsm-bench: %zu workloads x {1, 2} client threads x %d round(s) of %.2f s per "
                "system, alternating",
                workloads.size(), opt.rounds, opt.seconds);
  log(plan);

  for (const Workload& w : workloads) {
    std::vector<uint64_t> populated(systems.size(), 0);
    if (w.op == Op::kFind) {
      for (size_t s = 0; s < systems.size(); ++s) {
        const auto t0 = Clock::now();
        populated[s] = systems[s]->populate(w.objects, opt.populate_seconds);
        if (populated[s] == 0) continue;
        char line[200];
        std::snprintf(line, sizeof line, "  %s: %llu token objects (%.1f s to add to %llu)",
                      systems[s]->name().c_str(), static_cast<unsigned long long>(populated[s]),
                      seconds_since(t0), static_cast<unsigned long long>(w.objects));
        log(line);
        if (populated[s] < w.objects) {
          std::snprintf(line, sizeof line,
                        "%s: only %llu of %llu token objects created within the %.0f s budget; "
                        "'%s' searched among those",
                        systems[s]->name().c_str(), static_cast<unsigned long long>(populated[s]),
                        static_cast<unsigned long long>(w.objects), opt.populate_seconds,
                        w.name.c_str());
          report.notes.push_back(line);
        }
      }
    }
    for (const size_t threads : {size_t{1}, size_t{2}}) {
      Row row{w, threads, std::vector<Cell>(systems.size())};
      std::vector<std::vector<std::unique_ptr<Runner>>> runners(systems.size());
      for (size_t s = 0; s < systems.size(); ++s) {
        row.cells[s].objects = populated[s];
        for (size_t t = 0; t < threads && row.cells[s].na.empty(); ++t) {
          auto r = systems[s]->runner(w, t, row.cells[s].na);
          if (r) runners[s].push_back(std::move(r));
        }
        if (!row.cells[s].na.empty()) runners[s].clear();
      }
      // Warm-up, not counted: first-use costs, idle CPUs waking up.
      for (size_t s = 0; s < systems.size() && !opt.smoke; ++s) {
        if (runners[s].empty()) continue;
        (void)run_round(runners[s], std::min(opt.seconds, 0.1));
        for (auto& r : runners[s]) (void)r->check();
      }
      for (int round = 0; round < opt.rounds; ++round) {
        for (size_t k = 0; k < systems.size(); ++k) {
          const size_t s = (k + static_cast<size_t>(round)) % systems.size();
          if (runners[s].empty()) continue;
          row.cells[s].rates.push_back(run_round(runners[s], opt.seconds));
          for (auto& r : runners[s]) row.cells[s].checked += r->check();
        }
      }
      std::string line = "  " + w.name + ", " + std::to_string(threads) + " thread(s):";
      for (size_t s = 0; s < systems.size(); ++s) {
        char cell[96];
        if (row.cells[s].na.empty()) {
          std::snprintf(cell, sizeof cell, " %s %.0f/s", systems[s]->name().c_str(),
                        row.cells[s].rate());
        } else {
          std::snprintf(cell, sizeof cell, " %s n/a", systems[s]->name().c_str());
        }
        line += cell;
      }
      log(line);
      report.rows.push_back(std::move(row));
    }
  }
  report.load_after = load_average();
  report.notes.push_back(
      "checked after every round, outside the timing: signatures (up to 512 per round and "
      "system, spread evenly) verified with OpenSSL under the public key read from the module; "
      "OAEP decryptions (all, or an even sample of at least 4,096 per round) equal to the "
      "plaintext OpenSSL encrypted under the module's public key; a sample of GCM ciphertexts "
      "decrypted through the module; HMACs by the module's "
      "C_Verify, repeated and against a changed input; every find returning exactly one object, "
      "a sample read back; key pairs 1, 2, 4, ... signing what verifies, all distinct; random "
      "outputs all distinct.");
  if (opt.json) {
    std::printf("%s\n", to_json(report).dump(2).c_str());
  } else {
    print_tables(report);
  }
  return 0;
}

}  // namespace ihsm::bench
