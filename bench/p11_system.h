// A PKCS#11 module as one system of the comparison: its token, a session
// and keys per client thread, and the runners for every workload.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "p11_driver.h"
#include "workloads.h"

namespace ihsm::bench {

class P11System : public System {
 public:
  // Loads the module and makes its token (Module::init_token).
  P11System(std::string name, const std::string& path);
  ~P11System() override;

  const std::string& name() const override { return module_.name(); }
  std::string description() const override { return module_.description(); }
  std::unique_ptr<Runner> runner(const Workload& w, size_t thread, std::string& why) override;
  uint64_t populate(uint64_t objects, double budget_seconds) override;

  // A client thread's session and its keys, made when first needed.
  struct Worker {
    P11Session s;
    size_t thread;
    std::optional<P11Session::Pair> p256, p384, ed25519, rsa2048, rsa3072;
    std::optional<CK_OBJECT_HANDLE> aes, hmac;
    std::optional<CK_RV> ed25519_failure;  // the module refused Ed25519 keys
    uint64_t gcm_counter = 0;              // the next IV under `aes`
  };

  Module& module() { return module_; }
  CK_SLOT_ID slot() const { return slot_; }
  uint64_t populated() const { return populated_; }

 private:
  Worker& worker(size_t thread);

  Module module_;
  CK_SLOT_ID slot_;
  std::vector<std::unique_ptr<Worker>> workers_;
  uint64_t populated_ = 0;  // find population: objects 0 .. populated_-1 exist
};

}  // namespace ihsm::bench
