#include "device/vault/partition.h"

#include "device/store/object_store.h"

namespace ihsm::device {

Partition::Partition() : next_session_handle_(store::kSessionHandleBase) {}

std::shared_ptr<const KeyObject> Partition::find_key(KeyHandle h) const {
  const auto it = keys_.find(h);
  return it == keys_.end() ? nullptr : it->second;
}

void Partition::add_key(std::shared_ptr<KeyObject> key) {
  const KeyHandle h = key->handle;
  keys_.emplace(h, std::move(key));
}

std::shared_ptr<const KeyObject> Partition::cached_token(KeyHandle h) const {
  const auto it = token_cache_.find(h);
  return it == token_cache_.end() ? nullptr : it->second;
}

void Partition::cache_token(std::shared_ptr<const KeyObject> key) {
  const KeyHandle h = key->handle;
  const auto [it, added] = token_cache_.insert_or_assign(h, std::move(key));
  if (!added) return;
  token_cache_order_.push_back(h);
  // Evict oldest first; an evicted key stays alive for operations holding it.
  while (token_cache_.size() > kTokenCacheCapacity && !token_cache_order_.empty()) {
    token_cache_.erase(token_cache_order_.front());
    token_cache_order_.pop_front();
  }
}

void Partition::forget_token(KeyHandle h) {
  ++token_generation;
  if (token_cache_.erase(h) != 0) std::erase(token_cache_order_, h);
}

bool Partition::remove_key(KeyHandle h) { return keys_.erase(h) != 0; }

bool Partition::replace_key(std::shared_ptr<KeyObject> key) {
  const auto it = keys_.find(key->handle);
  if (it == keys_.end()) return false;
  it->second = std::move(key);
  return true;
}

void Partition::remove_session_keys(SessionId session) {
  std::erase_if(keys_,
                [session](const auto& entry) { return entry.second->owner_session == session; });
}

void Partition::zeroize() {
  std::lock_guard lock(mutex);
  keys_.clear();
  token_cache_.clear();
  token_cache_order_.clear();
  ++token_generation;
  masking_seed = SecretBytes();
  masking_key = SecretBytes();
  identity_key.reset();
  officer = Credential();
  user = Credential();
}

PartitionInfo Partition::info(const LoginPolicy& policy) const {
  PartitionInfo i;
  i.id = id;
  i.name = name;
  i.bound_uid = bound_uid;
  i.bound_gid = bound_gid;
  i.max_sessions = max_sessions;
  i.open_sessions = open_sessions;
  i.user_pin_set = user.is_set();
  i.user_pin_locked = user.locked();
  i.officer_pin_locked = officer.locked();
  i.user_pin_failures = user.failures();
  i.user_pin_retries_left = user.retries_left(policy);
  i.officer_pin_failures = officer.failures();
  i.officer_pin_retries_left = officer.retries_left(policy);
  i.identity_public_key = identity_public_der;
  return i;
}

}  // namespace ihsm::device
