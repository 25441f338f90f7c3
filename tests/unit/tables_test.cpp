// The closed tables: status codes (include/ihsm/status.h), opcodes
// (src/protocol/opcodes.h) and the vocabulary helpers of ihsm/types.h.
#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>
#include <vector>

#include "ihsm/status.h"
#include "ihsm/types.h"
#include "protocol/opcodes.h"

namespace ihsm {
namespace {

struct Row {
  Status status;
  uint16_t code;
  unsigned long ckr;
};

const std::vector<Row>& all_statuses() {
  static const std::vector<Row> rows = {
#define IHSM_TEST_ROW(name, code, ckr, msg) Row{Status::name, code, ckr},
      IHSM_STATUS_LIST(IHSM_TEST_ROW)
#undef IHSM_TEST_ROW
  };
  return rows;
}

TEST(StatusTable, CodesAreUnique) {
  std::set<uint16_t> codes;
  for (const Row& r : all_statuses()) {
    EXPECT_TRUE(codes.insert(r.code).second) << "duplicate code 0x" << std::hex << r.code;
    EXPECT_EQ(static_cast<uint16_t>(r.status), r.code);
  }
  EXPECT_GE(codes.size(), 40u);
}

TEST(StatusTable, NamesAreNonEmptyUniqueUpperSnake) {
  std::set<std::string> names;
  for (const Row& r : all_statuses()) {
    const std::string name(status_name(r.status));
    ASSERT_FALSE(name.empty());
    EXPECT_NE(name, "UNKNOWN_STATUS");
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    for (char c : name) {
      EXPECT_TRUE(std::isupper(static_cast<unsigned char>(c)) || c == '_') << name;
    }
    EXPECT_NE(name.front(), '_');
    EXPECT_NE(name.back(), '_');
    EXPECT_FALSE(status_message(r.status).empty()) << name;
    EXPECT_NE(status_message(r.status), "unknown status") << name;
  }
}

TEST(StatusTable, KnownNames) {
  EXPECT_EQ(status_name(Status::kOk), "OK");
  EXPECT_EQ(status_name(Status::kPinLocked), "PIN_LOCKED");
  EXPECT_EQ(status_name(Status::kFrameTooLarge), "FRAME_TOO_LARGE");
  EXPECT_EQ(status_name(Status::kDataLengthInvalid), "DATA_LENGTH_INVALID");
  EXPECT_EQ(status_name(Status::kIvExhausted), "IV_EXHAUSTED");
  EXPECT_EQ(status_name(Status::kStaleChallenge), "STALE_CHALLENGE");
}

TEST(StatusTable, IsKnownAndRoundTripsThroughTheWire) {
  for (const Row& r : all_statuses()) {
    EXPECT_TRUE(status_is_known(r.code));
    const uint16_t wire = static_cast<uint16_t>(r.status);
    const Status back = static_cast<Status>(wire);
    EXPECT_EQ(back, r.status);
    EXPECT_EQ(status_name(back), status_name(r.status));
    EXPECT_EQ(status_to_ckr(back), r.ckr);
  }
  // Everything else in the 16-bit space is unknown.
  std::set<uint16_t> known;
  for (const Row& r : all_statuses()) known.insert(r.code);
  for (uint32_t code = 0; code <= 0xFFFF; ++code) {
    if (known.count(static_cast<uint16_t>(code)) == 0) {
      ASSERT_FALSE(status_is_known(static_cast<uint16_t>(code))) << code;
    }
  }
  EXPECT_EQ(status_name(static_cast<Status>(0x7777)), "UNKNOWN_STATUS");
  EXPECT_EQ(status_to_ckr(static_cast<Status>(0x7777)), 0x005u);
}

TEST(StatusTable, SomePkcs11Mappings) {
  EXPECT_EQ(status_to_ckr(Status::kOk), 0x000u);
  EXPECT_EQ(status_to_ckr(Status::kPinIncorrect), 0x0A0u);  // CKR_PIN_INCORRECT
  EXPECT_EQ(status_to_ckr(Status::kPinLocked), 0x0A4u);     // CKR_PIN_LOCKED
  EXPECT_EQ(status_to_ckr(Status::kInvalidSession), 0x0B3u);
  EXPECT_EQ(status_to_ckr(Status::kNotLoggedIn), 0x101u);
}

struct OpRow {
  protocol::Opcode opcode;
  uint16_t code;
  protocol::Access access;
  uint32_t usage;
};

const std::vector<OpRow>& all_opcodes() {
  using protocol::Access;
  static const std::vector<OpRow> rows = {
#define IHSM_TEST_OP(name, code, access, usage) \
  OpRow{protocol::Opcode::k##name, code, Access::access, usage},
      IHSM_OPCODE_LIST(IHSM_TEST_OP)
#undef IHSM_TEST_OP
  };
  return rows;
}

TEST(OpcodeTable, CodesUniqueAndFound) {
  std::set<uint16_t> codes;
  std::set<std::string> names;
  for (const OpRow& r : all_opcodes()) {
    EXPECT_TRUE(codes.insert(r.code).second) << "duplicate opcode 0x" << std::hex << r.code;
    const protocol::OpcodeInfo* info = protocol::find_opcode(r.code);
    ASSERT_NE(info, nullptr) << r.code;
    EXPECT_EQ(info->opcode, r.opcode);
    EXPECT_EQ(info->access, r.access);
    EXPECT_EQ(info->key_usage, r.usage);
    EXPECT_FALSE(info->name.empty());
    EXPECT_TRUE(names.insert(std::string(info->name)).second) << info->name;
    EXPECT_EQ(protocol::opcode_name(r.opcode), info->name);
  }
  for (uint32_t code = 0; code <= 0xFFFF; ++code) {
    if (codes.count(static_cast<uint16_t>(code)) == 0) {
      ASSERT_EQ(protocol::find_opcode(static_cast<uint16_t>(code)), nullptr) << code;
    }
  }
  EXPECT_EQ(protocol::opcode_name(static_cast<protocol::Opcode>(0x7777)), "Unknown");
}

TEST(OpcodeTable, DocumentedAccess) {
  using protocol::Access;
  using protocol::Opcode;
  auto info = [](Opcode o) { return protocol::find_opcode(static_cast<uint16_t>(o)); };
  EXPECT_EQ(info(Opcode::kGetDeviceInfo)->access, Access::kAnyone);
  EXPECT_EQ(info(Opcode::kPartitionCreate)->access, Access::kOwner);
  EXPECT_EQ(info(Opcode::kPartitionDelete)->access, Access::kOwner);
  EXPECT_EQ(info(Opcode::kSessionOpen)->access, Access::kAnyone);
  EXPECT_EQ(info(Opcode::kInitUserPin)->access, Access::kOfficer);
  EXPECT_EQ(info(Opcode::kUnlockUser)->access, Access::kOfficer);
  EXPECT_EQ(info(Opcode::kSetPin)->access, Access::kUserOrOfficer);
  EXPECT_EQ(info(Opcode::kGenerateKey)->access, Access::kUser);
  EXPECT_EQ(info(Opcode::kGenerateRandom)->access, Access::kSession);
  EXPECT_EQ(info(Opcode::kSign)->key_usage, usage::kSign);
  EXPECT_EQ(info(Opcode::kEncrypt)->key_usage, usage::kEncrypt);
  EXPECT_EQ(info(Opcode::kDecrypt)->key_usage, usage::kDecrypt);
  EXPECT_EQ(static_cast<uint16_t>(Opcode::kSign), 0x0040);
  EXPECT_EQ(static_cast<uint16_t>(Opcode::kGetDeviceInfo), 0x0001);
}

TEST(Vocabulary, CurvesMechanismsFlags) {
  EXPECT_EQ(curve_from_name("P-256"), Curve::kP256);
  EXPECT_EQ(curve_from_name("prime256v1"), Curve::kP256);
  EXPECT_EQ(curve_from_name("secp384r1"), Curve::kP384);
  EXPECT_EQ(curve_from_name("p521"), Curve::kP521);
  EXPECT_EQ(curve_from_name("P-224"), std::nullopt);
  for (Curve c : {Curve::kP256, Curve::kP384, Curve::kP521}) {
    EXPECT_EQ(curve_from_name(curve_name(c)), c);
  }
  for (Mechanism m : {Mechanism::kEcKeyPairGen, Mechanism::kEcdsa, Mechanism::kEcdsaSha256,
                      Mechanism::kEcdsaSha384, Mechanism::kEcdsaSha512, Mechanism::kAesKeyGen,
                      Mechanism::kAesGcm}) {
    EXPECT_EQ(mechanism_from_name(mechanism_name(m)), m);
  }
  EXPECT_EQ(mechanism_from_name("ecdsa_sha256"), Mechanism::kEcdsaSha256);
  EXPECT_EQ(mechanism_from_name("RSA"), std::nullopt);
  EXPECT_EQ(flags_to_string(usage::kSign | usage::kSensitive), "sign,sensitive");
  EXPECT_EQ(flags_from_string("sign,verify"), usage::kSign | usage::kVerify);
  EXPECT_EQ(flags_from_string(""), 0u);
  EXPECT_EQ(flags_from_string("sign,bogus"), std::nullopt);
  EXPECT_EQ(flags_from_string(flags_to_string(usage::kAll)), usage::kAll);
  EXPECT_EQ(role_name(Role::kCryptoOfficer), "officer");
}

}  // namespace
}  // namespace ihsm
