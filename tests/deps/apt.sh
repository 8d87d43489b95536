#!/usr/bin/env bash
# Debian packages the tests use: reference interpreters and C modules for Lua 5.1,
# hyperfine for benchmarks. Each library's tests add theirs to APT_PACKAGES here.
set -euo pipefail
APT_PACKAGES=(luajit lua5.1 lua-cjson lua-socket hyperfine time luarocks zip liblua5.1-0-dev)
APT_PACKAGES+=(openssl)  # doctor tests: a TLS server whose certificate does not match a pinned fingerprint
APT_PACKAGES+=(openssh-server openssh-client)  # bioxen.ssh, xapi-sim guests
APT_PACKAGES+=(lua5.4)  # vm: external interpreter (lua_executable)
APT_PACKAGES+=(luarocks zip liblua5.1-0-dev)  # pkg: the test mirror and the luarocks benchmark
APT_PACKAGES+=(cmake)  # pkg: the cmake build type (a crafted cmake rock)
APT_PACKAGES+=(openssh-server openssh-client openssl)  # bioxen.ssh, xapi-sim guests, TLS spec certificates
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
