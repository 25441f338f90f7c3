#include "pkcs11/module.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ihsm::pkcs11 {
namespace {

// `socket = PATH` from a small config file; empty when absent.
std::string configured_socket() {
  if (const char* env = std::getenv("IHSM_SOCKET"); env != nullptr && env[0] != '\0') return env;
  const char* conf = std::getenv("IHSM_PKCS11_CONF");
  std::FILE* f = std::fopen(conf != nullptr ? conf : "/etc/ihsm/pkcs11.conf", "re");
  if (f == nullptr) return "";
  std::string socket;
  char line[4096];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    std::string_view l(line);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.remove_suffix(1);
    const auto eq = l.find('=');
    if (l.empty() || l.front() == '#' || eq == std::string_view::npos) continue;
    auto trim = [](std::string_view v) {
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      return v;
    };
    if (trim(l.substr(0, eq)) == "socket") socket = std::string(trim(l.substr(eq + 1)));
  }
  std::fclose(f);
  return socket;
}

void pad(CK_UTF8CHAR* field, size_t size, std::string_view text) {
  std::memset(field, ' ', size);
  std::memcpy(field, text.data(), std::min(size, text.size()));
}

}  // namespace

void report_failure(Status s, const std::string& detail) {
  static const bool enabled = std::getenv("IHSM_PKCS11_DEBUG") != nullptr;
  if (!enabled) return;
  std::fprintf(stderr, "libihsm-pkcs11: %.*s%s%s\n", static_cast<int>(status_name(s).size()),
               status_name(s).data(), detail.empty() ? "" : ": ", detail.c_str());
}

Module& Module::get() {
  // Never destroyed: an application may call in from atexit handlers.
  static Module* module = new Module;
  return *module;
}

Module::Call::Call(Module& m) : lock_(m.lifecycle_, std::defer_lock) {
  if (m.finalizing_) {
    status_ = CKR_CRYPTOKI_NOT_INITIALIZED;
    return;
  }
  lock_.lock();
  if (!m.initialized_) {
    status_ = CKR_CRYPTOKI_NOT_INITIALIZED;
  } else if (m.pid_ != ::getpid()) {
    // A forked child shares the parent's sockets: it must initialise again.
    status_ = CKR_CRYPTOKI_NOT_INITIALIZED;
  }
}

CK_RV Module::initialize(CK_VOID_PTR args) {
  if (args != nullptr) {
    const auto* a = static_cast<CK_C_INITIALIZE_ARGS*>(args);
    if (a->pReserved != nullptr) return CKR_ARGUMENTS_BAD;
    const bool some = a->CreateMutex || a->DestroyMutex || a->LockMutex || a->UnlockMutex;
    const bool all = a->CreateMutex && a->DestroyMutex && a->LockMutex && a->UnlockMutex;
    if (some && !all) return CKR_ARGUMENTS_BAD;
    // Callbacks without CKF_OS_LOCKING_OK: the module must use them. It
    // uses the OS primitives instead, which PKCS#11 does not allow then.
    if (all && (a->flags & CKF_OS_LOCKING_OK) == 0) return CKR_CANT_LOCK;
  }
  std::unique_lock lock(lifecycle_);
  if (initialized_ && pid_ == ::getpid()) return CKR_CRYPTOKI_ALREADY_INITIALIZED;
  // In a forked child the parent's state is dropped without closing
  // anything: those sockets belong to the parent.
  if (initialized_) {
    for (auto& [h, s] : sessions_) {
      if (s->device) s->device->release();
    }
  }
  tokens_.clear();
  sessions_.clear();
  next_session_ = 1;
  socket_ = configured_socket();
  initialized_ = true;
  pid_ = ::getpid();
  return CKR_OK;
}

CK_RV Module::finalize(CK_VOID_PTR reserved) {
  if (reserved != nullptr) return CKR_ARGUMENTS_BAD;
  finalizing_ = true;
  std::unique_lock lock(lifecycle_);  // waits for calls in flight
  finalizing_ = false;
  if (!initialized_ || pid_ != ::getpid()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  sessions_.clear();  // ihsm::Session closes its device session
  tokens_.clear();
  initialized_ = false;
  return CKR_OK;
}

Result<Client> Module::connect() { return Client::connect(socket_); }

Result<Client> Module::control() { return connect(); }

Result<PartitionInfo> Module::partition_info(CK_SLOT_ID slot) {
  auto c = control();
  if (!c) return {c.status(), c.detail()};
  auto list = c.value().list_partitions();
  if (!list) return {list.status(), list.detail()};
  for (auto& p : list.value()) {
    if (p.id == slot) return std::move(p);
  }
  return {Status::kNoSuchPartition};
}

CK_RV Module::slot_list(bool, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
  if (count == nullptr) return CKR_ARGUMENTS_BAD;
  std::vector<CK_SLOT_ID> slots;
  auto c = control();
  if (c) {
    auto parts = c.value().list_partitions();
    if (!parts) return rv(parts);
    for (const auto& p : parts.value()) slots.push_back(p.id);
  }
  // No daemon: only the free slot, so applications can still list slots.
  slots.push_back(kFreeSlot);
  if (list == nullptr) {
    *count = slots.size();
    return CKR_OK;
  }
  if (*count < slots.size()) {
    *count = slots.size();
    return CKR_BUFFER_TOO_SMALL;
  }
  std::copy(slots.begin(), slots.end(), list);
  *count = slots.size();
  return CKR_OK;
}

CK_RV Module::slot_info(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info) {
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  std::string description = "ihsm free slot: C_InitToken creates a partition";
  if (slot != kFreeSlot) {
    auto p = partition_info(slot);
    if (!p) return p.status() == Status::kNoSuchPartition ? CKR_SLOT_ID_INVALID : rv(p);
    description = "ihsm partition " + std::to_string(p.value().id);
  }
  pad(info->slotDescription, sizeof info->slotDescription, description);
  pad(info->manufacturerID, sizeof info->manufacturerID, "ihsm");
  info->flags = CKF_TOKEN_PRESENT;
  info->hardwareVersion = {0, 1};
  info->firmwareVersion = {0, 1};
  return CKR_OK;
}

CK_RV Module::token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
  if (info == nullptr) return CKR_ARGUMENTS_BAD;
  std::memset(info, 0, sizeof *info);
  pad(info->manufacturerID, sizeof info->manufacturerID, "ihsm");
  pad(info->model, sizeof info->model, "ihsm partition");
  info->flags = CKF_RNG | CKF_LOGIN_REQUIRED;
  if (slot == kFreeSlot) {
    pad(info->label, sizeof info->label, "");
    pad(info->serialNumber, sizeof info->serialNumber, "free");
  } else {
    auto p = partition_info(slot);
    if (!p) return p.status() == Status::kNoSuchPartition ? CKR_SLOT_ID_INVALID : rv(p);
    const PartitionInfo& part = p.value();
    pad(info->label, sizeof info->label, part.name);
    pad(info->serialNumber, sizeof info->serialNumber, std::to_string(part.id));
    info->flags |= CKF_TOKEN_INITIALIZED;
    if (part.user_pin_set) info->flags |= CKF_USER_PIN_INITIALIZED;
    if (part.user_pin_locked) info->flags |= CKF_USER_PIN_LOCKED;
    if (part.officer_pin_locked) info->flags |= CKF_SO_PIN_LOCKED;
    // PKCS#11: a wrong PIN since the last good one, and one try left.
    if (!part.user_pin_locked && part.user_pin_failures > 0) {
      info->flags |= CKF_USER_PIN_COUNT_LOW;
      if (part.user_pin_retries_left == 1) info->flags |= CKF_USER_PIN_FINAL_TRY;
    }
    if (!part.officer_pin_locked && part.officer_pin_failures > 0) {
      info->flags |= CKF_SO_PIN_COUNT_LOW;
      if (part.officer_pin_retries_left == 1) info->flags |= CKF_SO_PIN_FINAL_TRY;
    }
    info->ulMaxSessionCount = part.max_sessions;
    info->ulSessionCount = part.open_sessions;
    info->ulMaxRwSessionCount = part.max_sessions;
    info->ulRwSessionCount = CK_UNAVAILABLE_INFORMATION;
  }
  info->ulMaxPinLen = 64;
  info->ulMinPinLen = 4;
  info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
  info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
  info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
  info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
  info->hardwareVersion = {0, 1};
  info->firmwareVersion = {0, 1};
  pad(reinterpret_cast<CK_UTF8CHAR*>(info->utcTime), sizeof info->utcTime, "");
  return CKR_OK;
}

CK_RV Module::init_token(CK_SLOT_ID slot, const SecretPin& so_pin, const std::string& label) {
  {
    std::lock_guard lock(mutex_);
    const auto it = tokens_.find(slot);
    if (it != tokens_.end()) {
      std::lock_guard tlock(it->second->mutex);
      if (!it->second->sessions.empty()) return CKR_SESSION_EXISTS;
    }
  }
  auto c = control();
  if (!c) return rv(c);
  if (slot == kFreeSlot) {
    // The label names the new partition; the user PIN comes with C_InitPIN.
    PartitionOptions o;
    o.name = label;
    if (o.name.empty()) return CKR_ARGUMENTS_BAD;
    auto r = c.value().create_partition(o, so_pin);
    return r ? CKR_OK : rv(r);
  }
  // An initialised token: the owner resets it (every object goes) and the
  // given SO PIN becomes the new one. Its name stays.
  auto r = c.value().reset_partition(static_cast<PartitionId>(slot), so_pin);
  if (!r) return r.status() == Status::kNoSuchPartition ? CKR_SLOT_ID_INVALID : rv(r);
  std::lock_guard lock(mutex_);
  tokens_.erase(slot);
  return CKR_OK;
}

std::shared_ptr<Token> Module::token_for(CK_SLOT_ID slot, Status& status) {
  std::lock_guard lock(mutex_);
  auto& t = tokens_[slot];
  if (!t) {
    t = std::make_shared<Token>();
    t->slot = slot;
    t->partition = static_cast<PartitionId>(slot);
  }
  status = Status::kOk;
  return t;
}

CK_RV Module::open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_SESSION_HANDLE_PTR out) {
  if (out == nullptr) return CKR_ARGUMENTS_BAD;
  if ((flags & CKF_SERIAL_SESSION) == 0) return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
  if (slot == kFreeSlot) return CKR_TOKEN_NOT_RECOGNIZED;
  if (slot > UINT32_MAX) return CKR_SLOT_ID_INVALID;
  Status st;
  auto token = token_for(slot, st);
  auto s = std::make_shared<P11Session>();
  s->slot = slot;
  s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
  s->token = token;
  // Until the session is registered: a concurrent C_Login either finds it
  // in sessions_ or has set the role it logs in with below.
  std::lock_guard serial(token->login_mutex);
  {
    std::lock_guard tlock(token->mutex);
    if (token->role == Role::kCryptoOfficer && (flags & CKF_RW_SESSION) == 0) {
      return CKR_SESSION_READ_WRITE_SO_EXISTS;
    }
    // One connection per token; a new one if the daemon went away (its
    // old sessions then report errors; new ones work).
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!token->client) {
        auto c = connect();
        if (!c) return rv(c);
        token->client.emplace(std::move(c).value());
        token->key_flags.clear();  // a restarted device numbers its keys anew
      }
      auto d = token->client->open_session(token->partition);
      if (d) {
        s->device.emplace(std::move(d).value());
        break;
      }
      if (d.status() == Status::kNoSuchPartition) return CKR_SLOT_ID_INVALID;
      if (d.status() != Status::kTransportError && d.status() != Status::kDeviceUnavailable) {
        return rv(d);
      }
      token->client.reset();
      if (attempt == 1) return rv(d);
    }
    if (token->role != Role::kPublic && token->pin) {
      auto l = s->device->login(token->role, *token->pin);
      if (!l) return rv(l);
    }
  }
  std::lock_guard lock(mutex_);
  s->handle = next_session_++;
  sessions_.emplace(s->handle, s);
  {
    std::lock_guard tlock(token->mutex);
    token->sessions.insert(s->handle);
  }
  *out = s->handle;
  return CKR_OK;
}

std::shared_ptr<P11Session> Module::session(CK_SESSION_HANDLE h) {
  std::lock_guard lock(mutex_);
  const auto it = sessions_.find(h);
  return it == sessions_.end() ? nullptr : it->second;
}

CK_RV Module::close_session(CK_SESSION_HANDLE h) {
  std::shared_ptr<P11Session> s;
  {
    std::lock_guard lock(mutex_);
    const auto it = sessions_.find(h);
    if (it == sessions_.end()) return CKR_SESSION_HANDLE_INVALID;
    s = it->second;
    sessions_.erase(it);
  }
  std::lock_guard slock(s->mutex);
  {
    std::lock_guard tlock(s->token->mutex);
    s->token->sessions.erase(h);
    // The last session gone: PKCS#11 logs the application out.
    if (s->token->sessions.empty()) {
      s->token->role = Role::kPublic;
      s->token->pin.reset();
    }
  }
  if (s->device) (void)s->device->close();
  return CKR_OK;
}

CK_RV Module::close_all_sessions(CK_SLOT_ID slot) {
  std::vector<CK_SESSION_HANDLE> handles;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [h, s] : sessions_) {
      if (s->slot == slot) handles.push_back(h);
    }
  }
  for (const CK_SESSION_HANDLE h : handles) (void)close_session(h);
  return CKR_OK;
}

CK_RV Module::login(P11Session& s, CK_USER_TYPE type, SecretPin pin) {
  Role role;
  if (type == CKU_USER) {
    role = Role::kCryptoUser;
  } else if (type == CKU_SO) {
    role = Role::kCryptoOfficer;
  } else if (type == CKU_CONTEXT_SPECIFIC) {
    // No key here asks for it (CKA_ALWAYS_AUTHENTICATE is false).
    return CKR_OPERATION_NOT_INITIALIZED;
  } else {
    return CKR_USER_TYPE_INVALID;
  }
  Token& t = *s.token;
  std::lock_guard serial(t.login_mutex);
  std::vector<std::shared_ptr<P11Session>> others;
  {
    std::lock_guard tlock(t.mutex);
    if (t.role == role) return CKR_USER_ALREADY_LOGGED_IN;
    if (t.role != Role::kPublic) return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
  }
  if (role == Role::kCryptoOfficer) {
    std::lock_guard lock(mutex_);
    for (const auto& [h, other] : sessions_) {
      if (other->token.get() == &t && (other->flags & CKF_RW_SESSION) == 0) {
        return CKR_SESSION_READ_ONLY_EXISTS;
      }
    }
  }
  auto r = s.device->login(role, pin);
  if (!r) return rv(r);
  {
    std::lock_guard lock(mutex_);
    for (const auto& [h, other] : sessions_) {
      if (other->token.get() == &t && other.get() != &s) others.push_back(other);
    }
  }
  // Every other session of the application on this token is logged in too.
  for (const auto& other : others) {
    if (other->device) (void)other->device->login(role, pin);
  }
  std::lock_guard tlock(t.mutex);
  t.role = role;
  t.pin.emplace(std::move(pin));
  return CKR_OK;
}

CK_RV Module::logout(P11Session& s) {
  Token& t = *s.token;
  std::lock_guard serial(t.login_mutex);
  {
    std::lock_guard tlock(t.mutex);
    if (t.role == Role::kPublic) return CKR_USER_NOT_LOGGED_IN;
    t.role = Role::kPublic;
    t.pin.reset();
  }
  std::vector<std::shared_ptr<P11Session>> all;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [h, other] : sessions_) {
      if (other->token.get() == &t) all.push_back(other);
    }
  }
  for (const auto& other : all) {
    if (other->device) (void)other->device->logout();
  }
  return CKR_OK;
}

}  // namespace ihsm::pkcs11
