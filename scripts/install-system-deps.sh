#!/usr/bin/env bash
# Debian packages the tests need: recorded English speech (pocketsphinx-testdata).
# Runs apt only when something is missing; needs root (or sudo) the first time.
set -euo pipefail

need=()
[ -d /usr/share/pocketsphinx/test/data/librivox ] || need+=(pocketsphinx-testdata)

[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "install-system-deps: apt-get not found; install ${need[*]} by hand" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-system-deps: installing ${need[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
