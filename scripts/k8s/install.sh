#!/usr/bin/env bash
# Idempotent: the Python environment that validates the Kubernetes manifests, cached beside the
# Triton one (${XDG_CACHE_HOME:-~/.cache}/framewire/venv-k8s). Prints its python on stdout.
# kubectl (for `kubectl kustomize`) must be on PATH; it is not installed here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${FRAMEWIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/framewire}"
VENV="$CACHE/venv-k8s"
req="$ROOT/scripts/k8s/requirements.txt"
stamp="$(sha256sum "$req" | cut -c1-16)"
if [ ! -f "$VENV/.complete-$stamp" ]; then
  echo "k8s: building the manifest validation environment in $VENV" >&2
  mkdir -p "$CACHE"
  # Serialised: two test runs may start it at once.
  exec 9>"$CACHE/.venv-k8s.lock"
  flock 9
  if [ ! -f "$VENV/.complete-$stamp" ]; then
    rm -rf "$VENV"
    /usr/bin/python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
    touch "$VENV/.complete-$stamp"
  fi
fi
command -v kubectl >/dev/null 2>&1 || { echo "k8s: kubectl is not on PATH (needed for 'kubectl kustomize')" >&2; exit 1; }
echo "$VENV/bin/python"
