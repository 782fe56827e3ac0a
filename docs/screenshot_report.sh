#!/bin/sh
# Render the profile-device HTML report of `make demo` in headless Chromium and save a screenshot:
#   make demo && sh docs/screenshot_report.sh      (needs Debian's chromium: apt-get install chromium)
set -e
REPORT="${1:-out/demo/digits/profile.html}"
OUT="${2:-docs/profile-report.png}"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,3000 \
    --screenshot="$OUT" "file://$(realpath "$REPORT")" 2>/dev/null
echo "wrote $OUT from $REPORT"
