#!/usr/bin/env bash
# The one "run the HSM" command: install what is missing, build ihsmd and
# the ihsm CLI, start the device, and walk through a real use of it.
#
#   scripts/demo.sh [--keep]      --keep: leave ihsmd running at the end
#
# The device keeps its state where ihsmd keeps it by default (as root:
# /var/lib/ihsm, socket /run/ihsm/ihsmd.sock; otherwise under
# $XDG_STATE_HOME or ~/.local/state, socket under $XDG_RUNTIME_DIR or
# /tmp/ihsm-UID). Overrides: IHSM_STATE_DIR, IHSM_SOCKET. An ihsmd already
# serving the socket is used as it is and left running.
#
# Partition and PINs: IHSM_PARTITION (default "demo"), IHSM_SO_PIN and
# IHSM_USER_PIN (defaults: fixed demo values, so a second run reuses the
# partition of the first). Use your own PINs for anything but a demo.
set -euo pipefail
keep=0
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--keep]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
root=$PWD

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
show() {
  printf '$ %s\n' "$*"
  "$@"
}

step "Installing missing packages and building ihsmd and ihsm (preset default)"
scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default --target ihsmd ihsm_cli
ihsmd="$root/build/default/ihsmd"
ihsm="$root/build/default/ihsm"

# ihsmd's own defaults (src/device/state_dir.cpp, src/transport/unix_socket.cpp).
if [ "$(id -u)" -eq 0 ]; then
  default_state=/var/lib/ihsm
  default_socket=/run/ihsm/ihsmd.sock
else
  if [ -n "${XDG_STATE_HOME:-}" ]; then default_state="$XDG_STATE_HOME/ihsm"; else default_state="$HOME/.local/state/ihsm"; fi
  if [ -n "${XDG_RUNTIME_DIR:-}" ]; then default_socket="$XDG_RUNTIME_DIR/ihsm/ihsmd.sock"; else default_socket="/tmp/ihsm-$(id -u)/ihsmd.sock"; fi
fi
state_dir="${IHSM_STATE_DIR:-$default_state}"
export IHSM_SOCKET="${IHSM_SOCKET:-$default_socket}"
export IHSM_PARTITION="${IHSM_PARTITION:-demo}"
export IHSM_SO_PIN="${IHSM_SO_PIN:-demo-officer-2468}"
export IHSM_USER_PIN="${IHSM_USER_PIN:-demo-user-1357}"
export IHSM_PIN="$IHSM_USER_PIN" # the PIN `ihsm` logs in with as Crypto User

work=$(mktemp -d "${TMPDIR:-/tmp}/ihsm-demo.XXXXXX")
log="$root/build/demo-ihsmd.log"
daemon_pid=""
cleanup() {
  local rc=$?
  if [ -n "$daemon_pid" ]; then
    if [ "$keep" -eq 1 ] && [ "$rc" -eq 0 ]; then
      printf '\nihsmd keeps running (pid %s, socket %s, log %s).\nStop it with: kill %s\n' \
        "$daemon_pid" "$IHSM_SOCKET" "$log" "$daemon_pid"
    else
      kill "$daemon_pid" 2>/dev/null || true
      wait "$daemon_pid" 2>/dev/null || true
      echo "ihsmd stopped (log: $log)"
    fi
  fi
  rm -rf "$work"
  if [ "$rc" -ne 0 ]; then echo "demo: FAILED (exit $rc)" >&2; fi
}
trap cleanup EXIT

step "Starting the device"
if "$ihsm" status >/dev/null 2>&1; then
  echo "an ihsmd is already serving $IHSM_SOCKET: using it (it stays running)"
else
  echo "ihsmd --state-dir $state_dir --socket $IHSM_SOCKET   (log: $log)"
  "$ihsmd" --state-dir "$state_dir" --socket "$IHSM_SOCKET" >"$log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 1 100); do
    if "$ihsm" status >/dev/null 2>&1; then break; fi
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
      daemon_pid=""
      echo "ihsmd exited during start-up:" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  "$ihsm" status >/dev/null
  cat "$log"
fi

step "Device status"
show "$ihsm" status

step "Partition '$IHSM_PARTITION' (officer and user PINs from IHSM_SO_PIN / IHSM_USER_PIN)"
if out=$("$ihsm" partition create "$IHSM_PARTITION" 2>&1); then
  echo "$out"
elif grep -q PARTITION_EXISTS <<<"$out"; then
  echo "partition '$IHSM_PARTITION' exists from an earlier run: reusing it"
else
  echo "$out" >&2
  exit 1
fi
show "$ihsm" partition list

step "Signing a file with a P-256 key generated inside the device"
printf 'Hello from ihsm, %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$work/message.txt"
show "$ihsm" sign --curve P-256 --in "$work/message.txt" --out "$work/message.sig" \
  --format der --pubkey-out "$work/signer.pem"
echo "the private key never left the device; its public half:"
cat "$work/signer.pem"

step "Verifying the signature with OpenSSL alone (no ihsm involved)"
show openssl dgst -sha256 -verify "$work/signer.pem" -signature "$work/message.sig" \
  "$work/message.txt"
echo "and a tampered file must fail:"
printf 'tampered\n' >>"$work/message.txt"
if openssl dgst -sha256 -verify "$work/signer.pem" -signature "$work/message.sig" \
  "$work/message.txt"; then
  echo "a tampered file verified: something is badly wrong" >&2
  exit 1
fi
echo "(refused, as it must be)"

step "32 random bytes from the device DRBG"
show "$ihsm" random 32 --hex

step "AES-256-GCM: encrypt a file under a device key, decrypt it, compare"
head -c 4096 /dev/urandom >"$work/data.bin"
show "$ihsm" cipher-roundtrip --in "$work/data.bin"

step "A durable token key: generated once, used by later processes"
label="demo-token-$(date -u +%Y%m%dT%H%M%S)-$$"
gen=$("$ihsm" --json key generate --label "$label" --token)
# The private key's handle, from the JSON (no jq needed).
handle=$(printf '%s' "$gen" | tr -d ' \n' |
  sed -n 's/.*"private_key":{[^}]*"handle":\([0-9]*\).*/\1/p')
if [ -z "$handle" ]; then
  echo "could not read the new key's handle from: $gen" >&2
  exit 1
fi
echo "token key pair '$label': private key handle $handle (kept masked in the device's store)"
show "$ihsm" key list --label "$label"
show "$ihsm" sign --key "$handle" --in "$work/message.txt" --out "$work/token.sig" \
  --pubkey-out "$work/token.pem"
show openssl dgst -sha256 -verify "$work/token.pem" -signature "$work/token.sig" \
  "$work/message.txt"

step "Backup, destroy, restore: the key comes back (this device only)"
export IHSM_BACKUP_SECRET="${IHSM_BACKUP_SECRET:-demo-backup-secret-9753}"
show "$ihsm" backup --out "$work/demo.backup"
show "$ihsm" key destroy --key "$handle"
show "$ihsm" restore --in "$work/demo.backup"
show "$ihsm" sign --key "$handle" --in "$work/message.txt" --out "$work/token2.sig"
show openssl dgst -sha256 -verify "$work/token.pem" -signature "$work/token2.sig" \
  "$work/message.txt"

step "Attestation: proof, checkable offline, that the token key was made inside this device"
nonce=$(openssl rand -hex 16)
show "$ihsm" attest chain --out-dir "$work/chain"
partition_cert=$(ls "$work"/chain/partition-*.pem)
show openssl verify -CAfile "$work/chain/deviceid.pem" -untrusted "$work/chain/alias.pem" \
  "$partition_cert"
show "$ihsm" attest key --key "$handle" --nonce "$nonce" --out "$work/key.report"
show "$ihsm" attest verify --report "$work/key.report" --root "$work/chain/deviceid.pem" \
  --nonce "$nonce" --require generated,never-extractable,not-session
echo "and with another nonce it must fail:"
if "$ihsm" attest verify --report "$work/key.report" --root "$work/chain/deviceid.pem" \
  --nonce "00$nonce" >/dev/null; then
  echo "a report verified against the wrong nonce: something is badly wrong" >&2
  exit 1
fi
echo "(refused, as it must be)"

step "Self-tests and the audit log: every login, key and export above is a record in a signed hash chain"
show "$ihsm" self-test
show "$ihsm" audit verify --trust "$work/chain/deviceid.pem"

step "Done"
echo "state directory: $state_dir   socket: $IHSM_SOCKET"
echo "Try: $ihsm --help"
