#!/usr/bin/env bash
# Debian packages the tests need, installed only when missing (root or sudo the first time):
#   pocketsphinx-testdata  recorded English speech for the ASR tests and benchmarks
#   espeak-ng              the English voice of the TTS service (a separate program, GPL-3.0)
#   chromium               headless browser for the browser-client test
#   fonts-ipafont-gothic   Japanese glyphs in that browser's screenshots
set -euo pipefail

need=()
[ -d /usr/share/pocketsphinx/test/data/librivox ] || need+=(pocketsphinx-testdata)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v chromium >/dev/null || need+=(chromium)
[ -d /usr/share/fonts/opentype/ipafont-gothic ] || need+=(fonts-ipafont-gothic)

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
