#include "device/vault/partition.h"

namespace ihsm::device {

std::shared_ptr<const KeyObject> Partition::find_key(KeyHandle h) const {
  const auto it = keys_.find(h);
  return it == keys_.end() ? nullptr : it->second;
}

KeyHandle Partition::add_key(std::shared_ptr<KeyObject> key) {
  key->handle = next_handle_++;
  const KeyHandle h = key->handle;
  keys_.emplace(h, std::move(key));
  return h;
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

PartitionInfo Partition::info() const {
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
  i.identity_public_key = identity_public_der;
  return i;
}

}  // namespace ihsm::device
