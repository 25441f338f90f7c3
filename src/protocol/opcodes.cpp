#include "protocol/opcodes.h"

#include <array>

namespace ihsm::protocol {
namespace {

constexpr std::array kOpcodes = {
#define IHSM_OPCODE_ROW(name, code, access, usage) \
  OpcodeInfo{Opcode::k##name, #name, Access::access, usage},
    IHSM_OPCODE_LIST(IHSM_OPCODE_ROW)
#undef IHSM_OPCODE_ROW
};

}  // namespace

const OpcodeInfo* find_opcode(uint16_t code) {
  for (const auto& info : kOpcodes) {
    if (static_cast<uint16_t>(info.opcode) == code) return &info;
  }
  return nullptr;
}

std::string_view opcode_name(Opcode op) {
  const OpcodeInfo* info = find_opcode(static_cast<uint16_t>(op));
  return info ? info->name : "Unknown";
}

}  // namespace ihsm::protocol
