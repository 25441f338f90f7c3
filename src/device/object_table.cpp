#include "device/object_table.h"

#include <cstdio>

namespace ihsm::device::objects {
namespace {

void report_corrupt(const Partition& partition, KeyHandle handle, Status why) {
  // Never the record's bytes: only where it is and what failed.
  std::fprintf(stderr,
               "ihsmd: stored object %llu of partition %u fails authentication (%.*s): left "
               "unused\n",
               static_cast<unsigned long long>(handle), partition.id,
               static_cast<int>(status_name(why).size()), status_name(why).data());
}

// Loads a token object from the store (not from the cache) with its
// material, ready for use.
Status load_token(Device& device, Partition& partition, KeyHandle handle,
                  std::shared_ptr<const KeyObject>& out) {
  uint64_t generation = 0;
  {
    std::lock_guard lock(partition.mutex);
    generation = partition.token_generation;
  }
  std::optional<store::ObjectRow> row;
  Status s = device.store().get(partition.id, handle, row);
  if (!ok(s)) return s;
  if (!row) return Status::kNoSuchKey;
  std::shared_ptr<KeyObject> object;
  s = from_row(device, partition, *row, true, object);
  if (!ok(s)) return s;
  if (object->is_key()) {
    s = device.next_key_incarnation(object->gcm_fixed_field);
    if (!ok(s)) return s;
  }
  std::lock_guard lock(partition.mutex);
  // A change or destroy ran while we read: use what we read for this one
  // operation (it was current when read) but do not cache it.
  if (partition.token_generation == generation) partition.cache_token(object);
  out = std::move(object);
  return Status::kOk;
}

}  // namespace

Status from_row(const Device& device, const Partition& partition, const store::ObjectRow& row,
                bool with_material, std::shared_ptr<KeyObject>& out) {
  std::shared_ptr<KeyObject> object;
  Status s = unmask_object(row.blob, device.masking_scope(partition), with_material, object);
  // The columns are only index copies; the record is the truth and both
  // must agree, or a row could be found under a label it does not have.
  if (ok(s) && (!object->token || object->handle != row.handle || object->uid != row.uid ||
                static_cast<uint32_t>(object->object_class) != row.object_class ||
                object->label != row.label || object->id != row.id)) {
    s = Status::kObjectCorrupt;
  }
  if (!ok(s)) {
    report_corrupt(partition, row.handle, s);
    return Status::kObjectCorrupt;
  }
  out = std::move(object);
  return Status::kOk;
}

Status to_row(const Device& device, const Partition& partition, const KeyObject& object,
              store::ObjectRow& out) {
  out.handle = object.handle;
  out.partition = partition.id;
  out.uid = object.uid;
  out.object_class = static_cast<uint32_t>(object.object_class);
  out.label = object.label;
  out.id = object.id;
  return mask_object(object, device.masking_scope(partition), out.blob);
}

Status prepare(Device& device, Partition& partition, KeyObject& object) {
  object.uid.resize(kObjectUidSize);
  Status s = crypto::random_bytes(object.uid);
  if (!ok(s)) return s;
  if (object.is_key()) {
    s = device.next_key_incarnation(object.gcm_fixed_field);
    if (!ok(s)) return s;
  }
  object.handle =
      object.token ? device.store().allocate_handle() : partition.allocate_session_handle();
  return Status::kOk;
}

Status publish(Device& device, Partition& partition, SessionId session, ConnectionId connection,
               const std::vector<std::shared_ptr<KeyObject>>& objects) {
  std::vector<store::WriteOp> writes;
  for (const auto& o : objects) {
    o->owner_session = o->token ? 0 : session;
    o->owner_connection = o->token ? 0 : connection;
    if (!o->token) continue;
    store::InsertObject insert;
    const Status s = to_row(device, partition, *o, insert.row);
    if (!ok(s)) return s;
    writes.push_back(std::move(insert));
  }
  if (!writes.empty()) {
    const Status s = device.store().write(std::move(writes));
    if (!ok(s)) return s;
  }
  std::lock_guard lock(partition.mutex);
  for (const auto& o : objects) {
    if (o->token) {
      partition.cache_token(o);
    } else {
      partition.add_key(o);
    }
  }
  return Status::kOk;
}

Status resolve(Device& device, Partition& partition, ConnectionId connection, KeyHandle handle,
               std::shared_ptr<const KeyObject>& out) {
  if (handle == 0) return Status::kNoSuchKey;
  if (handle >= store::kSessionHandleBase) {
    std::shared_ptr<const KeyObject> key;
    {
      std::lock_guard lock(partition.mutex);
      key = partition.find_key(handle);
    }
    if (!key || key->owner_connection != connection) return Status::kNoSuchKey;
    out = std::move(key);
    return Status::kOk;
  }
  {
    std::lock_guard lock(partition.mutex);
    out = partition.cached_token(handle);
  }
  return out ? Status::kOk : load_token(device, partition, handle, out);
}

Status replace(Device& device, Partition& partition, std::shared_ptr<KeyObject> changed) {
  if (!changed->token) {
    std::lock_guard lock(partition.mutex);
    return partition.replace_key(std::move(changed)) ? Status::kOk : Status::kNoSuchKey;
  }
  store::UpdateObject update;
  Status s = to_row(device, partition, *changed, update.row);
  if (!ok(s)) return s;
  {
    std::lock_guard lock(partition.mutex);
    partition.forget_token(changed->handle);
  }
  std::vector<store::WriteOp> writes;
  writes.push_back(std::move(update));
  s = device.store().write(std::move(writes));
  std::lock_guard lock(partition.mutex);
  partition.forget_token(changed->handle);
  if (ok(s)) partition.cache_token(std::move(changed));
  return s;
}

Status destroy(Device& device, Partition& partition, const KeyObject& object) {
  if (!object.token) {
    std::lock_guard lock(partition.mutex);
    // Material is cleansed when the last in-flight operation drops it.
    return partition.remove_key(object.handle) ? Status::kOk : Status::kNoSuchKey;
  }
  {
    std::lock_guard lock(partition.mutex);
    partition.forget_token(object.handle);
  }
  std::vector<store::WriteOp> writes;
  writes.push_back(store::DestroyObject{partition.id, object.handle});
  const Status s = device.store().write(std::move(writes));
  std::lock_guard lock(partition.mutex);
  partition.forget_token(object.handle);
  return s;
}

Status find(Device& device, Partition& partition, ConnectionId connection, const FindQuery& query,
            std::vector<std::shared_ptr<const KeyObject>>& out, bool& more) {
  more = false;
  const size_t limit = query.limit;
  if (query.after < store::kSessionHandleBase) {
    store::Query q;
    q.partition = partition.id;
    q.label = query.label;
    q.id = query.id;
    q.object_class = query.object_class;
    q.after = query.after;
    q.limit = limit + 1;  // one more tells whether a next page exists
    std::vector<store::ObjectRow> rows;
    const Status s = device.store().find(q, rows);
    if (!ok(s)) return s;
    if (rows.size() > limit) {
      more = true;
      rows.resize(limit);
    }
    for (const auto& row : rows) {
      std::shared_ptr<KeyObject> object;
      if (ok(from_row(device, partition, row, false, object))) out.push_back(std::move(object));
    }
    if (more) return Status::kOk;
  }
  std::lock_guard lock(partition.mutex);
  const KeyHandle after = std::max(query.after, store::kSessionHandleBase - 1);
  partition.for_each_key(after, [&](const std::shared_ptr<const KeyObject>& key) {
    const KeyObject& k = *key;
    if (k.owner_connection != connection) return true;
    if (query.label && k.label != *query.label) return true;
    if (query.id && k.id != *query.id) return true;
    if (query.object_class && static_cast<uint32_t>(k.object_class) != *query.object_class) {
      return true;
    }
    if (out.size() >= limit) {
      more = true;
      return false;
    }
    out.push_back(key);
    return true;
  });
  return Status::kOk;
}

}  // namespace ihsm::device::objects
