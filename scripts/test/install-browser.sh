#!/usr/bin/env bash
# Installs what the dashboard's browser test drives: Debian's chromium and chromium-driver, at the version
# localstack/versions.env pins (or the archive's own when Debian has replaced that build). Idempotent:
# nothing happens when the pinned version is installed.
source "$(dirname "$0")/../../localstack/lib.sh"

installed() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null; }
if [[ "$(installed chromium)" == "$CHROMIUM_DEBIAN_VERSION" && "$(installed chromium-driver)" == "$CHROMIUM_DEBIAN_VERSION" ]]; then
  exit 0
fi
command -v apt-get >/dev/null || die "the browser test needs Debian's chromium and chromium-driver; install them (apt-get is not here)"
sudo=()
if (( EUID != 0 )); then
  command -v sudo >/dev/null || die "installing chromium needs root: run as root, or install chromium and chromium-driver $CHROMIUM_DEBIAN_VERSION"
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
with_progress "installing chromium and chromium-driver $CHROMIUM_DEBIAN_VERSION (Debian)" "$LOCAL_DIR/logs/install-browser.log" \
  "${sudo[@]}" apt-get update -qq
if ! "${sudo[@]}" apt-get install -y -qq "chromium=$CHROMIUM_DEBIAN_VERSION" "chromium-driver=$CHROMIUM_DEBIAN_VERSION" \
  >>"$LOCAL_DIR/logs/install-browser.log" 2>&1; then
  warn "Debian no longer has chromium $CHROMIUM_DEBIAN_VERSION; installing the archive's ($(apt-cache policy chromium | awk '/Candidate/ {print $2}'))"
  "${sudo[@]}" apt-get install -y -qq chromium chromium-driver >>"$LOCAL_DIR/logs/install-browser.log" 2>&1 ||
    die "apt-get install chromium chromium-driver failed (log: $LOCAL_DIR/logs/install-browser.log)"
fi
log "$(chromium --version 2>/dev/null), $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2)"
