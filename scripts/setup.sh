#!/usr/bin/env bash
# Installs what schedulerd's tests and demo need that a fresh machine may lack: Debian's
# PostgreSQL 15 server (the tests start their own throwaway instance of it) and the Go
# modules. Nothing here downloads a prebuilt binary.
set -euo pipefail

need_packages=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_packages+=(postgresql postgresql-contrib)
command -v openssl >/dev/null || need_packages+=(openssl)
command -v curl >/dev/null || need_packages+=(curl)
id postgres >/dev/null 2>&1 || need_packages+=(postgresql)

if [ ${#need_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${need_packages[*]}; run 'sudo make setup' or install them with apt-get" >&2
    exit 1
  fi
  echo "setup: installing ${need_packages[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
  # The package starts a cluster of its own; schedulerd never uses it.
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster 15 main stop 2>/dev/null || true
  fi
fi

go mod download
