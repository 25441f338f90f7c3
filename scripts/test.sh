#!/usr/bin/env bash
# The one test command: install what is missing, build (preset `default`:
# RelWithDebInfo, warnings as errors) and run the whole test suite.
#
#   scripts/test.sh [extra ctest arguments, e.g. -R Pin]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset default
cmake --build --preset default
ctest --preset default -j2 --output-on-failure --no-tests=error "$@"
