#!/usr/bin/env bash
# Install the peer engines the benchmarks compare mlpipe with, each in its own venv under
# .peers/<name> (gitignored). Idempotent: a venv whose stamp file names the pinned spec is
# left alone; a changed pin rebuilds that venv. Usage: benchmarks/peers/setup.sh [NAME...]
set -euo pipefail

# The pinned versions, in one place (docs/benchmarks.md lists them too).
declare -A PINS=(
  [airflow]="apache-airflow==3.3.2"
  [prefect]="prefect==3.8.8 fastapi==0.140.13"
  [dagster]="dagster==1.13.28"
  [luigi]="luigi==3.8.1"
  [awscli]="awscli==1.46.2"
)
ORDER=(airflow prefect dagster luigi awscli)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS_DIR="${MLPIPE_PEERS_DIR:-$ROOT/.peers}"
PYTHON="${PYTHON:-python3}"
names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${ORDER[@]}")

# Keep every peer off the internet and quiet about telemetry, during setup and smoke checks.
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false DAGSTER_DISABLE_TELEMETRY=1 \
       AIRFLOW__CORE__LOAD_EXAMPLES=False SCARF_ANALYTICS=false PIP_DISABLE_PIP_VERSION_CHECK=1

pip_install() {  # venv spec
  "$1/bin/pip" install --quiet --progress-bar off --upgrade pip
  # shellcheck disable=SC2086  # a spec may name several requirements
  "$1/bin/pip" install --quiet --progress-bar off $2
}

post_install() {  # name venv: one-time setup and a smoke check with the peer's python
  local name=$1 venv=$2
  case $name in
    airflow)
      AIRFLOW_HOME="$venv/home" "$venv/bin/airflow" db migrate >"$venv/migrate.log" 2>&1 \
        || { tail -n 5 "$venv/migrate.log"; return 1; } ;;
    prefect) PREFECT_HOME="$venv/home" "$venv/bin/python" -c "import prefect" ;;
    dagster) DAGSTER_HOME="$venv/home" "$venv/bin/python" -c "import dagster" ;;
    luigi) "$venv/bin/python" -c "import luigi" ;;
    awscli) "$venv/bin/aws" --version >/dev/null ;;
  esac
}

mkdir -p "$PEERS_DIR"
status=0
for name in "${names[@]}"; do
  spec="${PINS[$name]:-}"
  if [ -z "$spec" ]; then
    echo "setup.sh: unknown peer '$name' (known: ${ORDER[*]})" >&2; exit 2
  fi
  venv="$PEERS_DIR/$name"
  stamp="$venv/.installed"
  if [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$spec" ]; then
    echo "peer $name: $spec already installed ($venv)"; continue
  fi
  echo "peer $name: installing $spec into $venv ..."
  began=$(date +%s)
  rm -rf "$venv"
  mkdir -p "$venv/home"
  if ! { "$PYTHON" -m venv "$venv" && pip_install "$venv" "$spec" >"$venv/pip.log" 2>&1; }
  then
    echo "peer $name: FAILED to install $spec (see $venv/pip.log): $(tail -n 1 "$venv/pip.log" 2>/dev/null)" >&2
    status=1; continue
  fi
  mkdir -p "$venv/home"
  if ! post_install "$name" "$venv"; then
    echo "peer $name: FAILED post-install setup of $spec" >&2; status=1; continue
  fi
  seconds=$(( $(date +%s) - began ))
  size=$(du -sm "$venv" | cut -f1)
  printf '%s\ninstall_seconds=%s\nsize_mb=%s\n' "$spec" "$seconds" "$size" >"$stamp"
  echo "peer $name: $spec installed in ${seconds}s, ${size} MB"
done
exit $status
