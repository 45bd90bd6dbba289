#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (Playwright's own browser download is
# not reachable from these machines). Install it when we can; otherwise the
# browser tests skip and say why.
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "Could not install chromium: browser tests will be skipped."
else
  echo "chromium is not installed and cannot be installed here (needs root and apt-get):"
  echo "browser tests will be skipped. Install it with: sudo apt-get install chromium"
fi
exit 0
