#!/usr/bin/env bash
# A Python venv for test peers (LRS, XenAPI SDK, benchmark peers) at target/pyenv,
# from every tests/deps/requirements-*.txt. Tests find it through BIOXEN_TEST_PYTHON
# or at target/pyenv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/../.."
shopt -s nullglob
reqs=(tests/deps/requirements-*.txt)
((${#reqs[@]})) || exit 0
venv=target/pyenv
stamp="$venv/.installed-$(cat "${reqs[@]}" | sha256sum | cut -c1-16)"
[ -f "$stamp" ] && exit 0
python3 -m venv "$venv"
args=()
for r in "${reqs[@]}"; do args+=(-r "$r"); done
"$venv/bin/pip" install -q "${args[@]}"
touch "$stamp"
