// Raw OpenSSL in this process: the same operations with EVP, each client
// thread with its own keys and contexts, prepared once per round's runner.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "workloads.h"

namespace ihsm::bench {

class OpensslSystem : public System {
 public:
  OpensslSystem();
  ~OpensslSystem() override;
  const std::string& name() const override { return name_; }
  std::string description() const override;
  std::unique_ptr<Runner> runner(const Workload& w, size_t thread, std::string& why) override;
  uint64_t populate(uint64_t, double) override { return 0; }

  struct Worker;

 private:
  Worker& worker(size_t thread);
  std::string name_ = "openssl";
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace ihsm::bench
