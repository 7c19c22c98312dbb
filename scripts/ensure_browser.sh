#!/usr/bin/env bash
# The browser tests drive Debian's chromium (Playwright never downloads a browser here).
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
[ -x /usr/bin/chromium ] || { echo "ERROR: /usr/bin/chromium is missing; install Debian's 'chromium' package (apt-get install chromium)." >&2; exit 1; }
