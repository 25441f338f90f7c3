#!/usr/bin/env bash
# Installs the Debian 12 packages ihsm needs, only those missing. Idempotent.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  libssl-dev openssl            # OpenSSL 3: all crypto, and independent verification in tests
  libcbor-dev                   # CBOR wire bodies
  libsqlite3-dev sqlite3        # the token object store
  libcli11-dev                  # the ihsm command line
  nlohmann-json3-dev            # --json output of the CLI
  libgtest-dev googletest       # unit and integration tests
  libbenchmark-dev              # micro-benchmarks
  libseccomp-dev                # daemon hardening
  clang libclang-rt-14-dev      # libFuzzer and sanitizers
  procps psmisc                 # pgrep/pkill/fuser used by the scripts
  libp11-kit-dev                # the PKCS#11 2.40 header the module builds on
  opensc gnutls-bin p11-kit     # PKCS#11 clients (pkcs11-tool, p11tool, p11-kit) run against the module
  libengine-pkcs11-openssl      # the OpenSSL pkcs11 engine, for interop with the module
  softhsm2                      # SoftHSMv2, the PKCS#11 module ihsm-bench compares against
  python3-pykcs11               # PyKCS11: the module tested from Python
  python3-cryptography          # independent verification in the Python PKCS#11 test
  openjdk-17-jre-headless       # keytool and SunPKCS11: the module from Java
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -ne 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# ihsmd started as root drops to this system user (docs/security-policy.md,
# section 12). Only root needs it: an ihsmd started by another user keeps
# that user.
if [ "$(id -u)" -eq 0 ] && ! getent passwd ihsm >/dev/null; then
  echo "install-deps: creating the system user ihsm" >&2
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --user-group ihsm
fi
