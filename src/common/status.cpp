#include "ihsm/status.h"

#include <array>
#include <string>

namespace ihsm {
namespace {

struct StatusEntry {
  Status status;
  std::string_view name;
  unsigned long ckr;
  std::string_view message;
};

// Upper-snake names derived from the enumerator at compile time keep the
// table single-sourced.
constexpr std::array kStatusTable = {
#define IHSM_STATUS_ROW(n, code, ckr, msg) StatusEntry{Status::n, #n, ckr, msg},
    IHSM_STATUS_LIST(IHSM_STATUS_ROW)
#undef IHSM_STATUS_ROW
};

const StatusEntry* find(Status s) {
  for (const auto& e : kStatusTable) {
    if (e.status == s) return &e;
  }
  return nullptr;
}

}  // namespace

std::string_view status_name(Status s) {
  // Names are stored as the enumerator ("kPinLocked"); the upper-snake form
  // is built once into static storage.
  static const auto names = [] {
    std::array<std::string, kStatusTable.size()> out;
    for (size_t i = 0; i < kStatusTable.size(); ++i) {
      std::string_view n = kStatusTable[i].name.substr(1);  // drop the 'k'
      std::string upper;
      for (size_t j = 0; j < n.size(); ++j) {
        char c = n[j];
        if (c >= 'A' && c <= 'Z') {
          if (j != 0) upper.push_back('_');
          upper.push_back(c);
        } else {
          upper.push_back(static_cast<char>(c - 'a' + 'A'));
        }
      }
      out[i] = std::move(upper);
    }
    return out;
  }();
  for (size_t i = 0; i < kStatusTable.size(); ++i) {
    if (kStatusTable[i].status == s) return names[i];
  }
  return "UNKNOWN_STATUS";
}

std::string_view status_message(Status s) {
  const auto* e = find(s);
  return e ? e->message : "unknown status";
}

unsigned long status_to_ckr(Status s) {
  const auto* e = find(s);
  return e ? e->ckr : 0x005 /* CKR_GENERAL_ERROR */;
}

bool status_is_known(uint16_t code) { return find(static_cast<Status>(code)) != nullptr; }

}  // namespace ihsm
