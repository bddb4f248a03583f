#!/usr/bin/env bash
# Run the whole test suite: unit tests on recorded evidence and integration tests on the real lab.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not integration").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p test-artifacts
set +e
pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests" >&2
  exit 1
fi
exit "$status"
