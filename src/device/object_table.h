// The objects of a partition as commands see them: session objects in the
// partition's table, token objects in the store (masked) with a bounded
// cache of unmasked ones. Every create, lookup, change and destroy of an
// object goes through here, so the rules live in one place:
//   - a session object is visible to the connection that made it, a token
//     object to every session of its partition;
//   - a token object is durable before its handle is returned, and its
//     destroy is durable (with a destroyed mark) before it is acknowledged;
//   - a stored record is used only if it authenticates under the
//     partition's masking key and matches the columns it was found by.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "device/device.h"

namespace ihsm::device::objects {

// Gives a new object its identity: a fresh uid, a handle (token or
// session space, after object.token), and for keys the GCM IV fixed field.
Status prepare(Device& device, Partition& partition, KeyObject& object);

// Publishes prepared objects (a key pair is two): token objects go to the
// store in one atomic, durable write first; then session objects (owned
// by `session` of `connection`) enter the table. Nothing is published if
// the write fails.
Status publish(Device& device, Partition& partition, SessionId session, ConnectionId connection,
               const std::vector<std::shared_ptr<KeyObject>>& objects);

// The object `handle` as seen from `connection`: kNoSuchKey when it does
// not exist or is another connection's session object; kObjectCorrupt
// when its stored record fails authentication.
Status resolve(Device& device, Partition& partition, ConnectionId connection, KeyHandle handle,
               std::shared_ptr<const KeyObject>& out);

// Replaces an object under its handle (SetKeyAttributes); a token object
// is re-masked and stored before the change is visible.
Status replace(Device& device, Partition& partition, std::shared_ptr<KeyObject> changed);

// Destroys an object. A token object's uid is marked destroyed in the
// same write, so its masked blobs can no longer be loaded.
Status destroy(Device& device, Partition& partition, const KeyObject& object);

struct FindQuery {
  std::optional<std::string> label;
  std::optional<Bytes> id;
  std::optional<uint32_t> object_class;
  KeyHandle after = 0;  // handles above this, ascending: token objects first
  size_t limit = 1024;
};
// Matching objects visible to `connection`; `more` when a next page exists.
// A stored record that fails authentication is left out and logged.
Status find(Device& device, Partition& partition, ConnectionId connection, const FindQuery& query,
            std::vector<std::shared_ptr<const KeyObject>>& out, bool& more);

// Opens a stored row of `partition`: the record must authenticate and
// agree with the row's columns, else kObjectCorrupt.
Status from_row(const Device& device, const Partition& partition, const store::ObjectRow& row,
                bool with_material, std::shared_ptr<KeyObject>& out);

// The store row of a token object (masks it).
Status to_row(const Device& device, const Partition& partition, const KeyObject& object,
              store::ObjectRow& out);

}  // namespace ihsm::device::objects
