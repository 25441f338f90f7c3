#include "device/boot/failure_server.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <thread>

#include "common/cbor.h"
#include "protocol/fields.h"
#include "protocol/opcodes.h"
#include "transport/unix_socket.h"

namespace ihsm::device::boot {
namespace {

using protocol::Opcode;

// What is served: the state GetDeviceInfo names, why, and the status of
// every other command.
struct Failure {
  std::string state;
  std::string reason;
  Status refusal;
  int exit_code;  // once stopped: a boot failure is one, a zeroized device is not
};

cbor::Value answer(uint16_t opcode, const Failure& failure, Status& status) {
  auto body = cbor::Value::map();
  if (opcode != static_cast<uint16_t>(Opcode::kGetDeviceInfo)) {
    status = failure.refusal;
    body.set(protocol::kMessage, cbor::Value::text(failure.reason));
    return body;
  }
  status = Status::kOk;
  body.set(protocol::kProtocolRevision, cbor::Value::uint(protocol::kRevision));
  body.set(protocol::kFirmwareVersion, cbor::Value::text(""));
  body.set(protocol::kState, cbor::Value::text(failure.state));
  body.set(protocol::kMessage, cbor::Value::text(failure.reason));
  if (failure.refusal == Status::kZeroized) {
    body.set(protocol::kReason, cbor::Value::text(failure.reason));
  }
  body.set(protocol::kIdentityKey, cbor::Value::bytes(Bytes{}));
  body.set(protocol::kPinTransportKey, cbor::Value::bytes(Bytes{}));
  body.set(protocol::kIsOwner, cbor::Value::boolean(false));
  body.set(protocol::kCount, cbor::Value::uint(0));
  return body;
}

// One connection at a time: nothing here is worth parallel service, and a
// client that stalls is cut off by the receive timeout.
void serve_connection(transport::UnixSocketChannel& channel, const Failure& failure) {
  channel.set_receive_timeout_ms(5000);
  channel.set_frame_deadline(std::chrono::milliseconds(2000));
  protocol::Frame request;
  while (ok(channel.receive(request))) {
    Status status = Status::kOk;
    const Bytes body = cbor::encode(answer(request.header.opcode, failure, status));
    protocol::FrameHeader reply;
    reply.opcode = request.header.opcode;
    reply.flags = protocol::frame_flag::kResponse;
    reply.status = static_cast<uint16_t>(status);
    reply.session = request.header.session;
    reply.request_id = request.header.request_id;
    reply.body_length = static_cast<uint32_t>(body.size());
    if (!ok(channel.send(reply, body))) return;
  }
}

int serve(transport::UnixSocketListener& listener, const std::string& socket_path,
          hardening::State& hardening, const Failure& failure) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  if (!ok(hardening::install_syscall_filter(hardening))) {
    std::fprintf(stderr, "ihsmd: cannot install the system-call filter\n");
    return 1;
  }
  if (!ok(listener.start_listening())) {
    std::fprintf(stderr, "ihsmd: cannot listen on %s\n", socket_path.c_str());
    return 1;
  }
  std::thread signal_thread([&listener, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    listener.close();
  });
  std::fprintf(stderr, "ihsmd: %s: %s; serving only that state on %s\n", failure.state.c_str(),
               failure.reason.c_str(), socket_path.c_str());
  while (auto channel = listener.accept()) serve_connection(*channel, failure);
  ::kill(::getpid(), SIGTERM);  // accept ended for another reason: wake the signal thread
  signal_thread.join();
  return failure.exit_code;
}

}  // namespace

int serve_boot_failure(transport::UnixSocketListener& listener, const std::string& socket_path,
                       hardening::State& hardening, const std::string& reason) {
  return serve(listener, socket_path, hardening, {"boot-failed", reason, Status::kBootFailed, 1});
}

int serve_zeroized(transport::UnixSocketListener& listener, const std::string& socket_path,
                   hardening::State& hardening, const std::string& reason) {
  return serve(listener, socket_path, hardening, {"zeroized", reason, Status::kZeroized, 0});
}

}  // namespace ihsm::device::boot
