#!/usr/bin/env bash
# Build the one-folder PyInstaller bundle (dist/lesson7-studio/) and smoke-test it:
#   (a) --version prints the package version, (b) `restore` with the bundled starter model
#   restores a 128 px copy of lesson7_studio/resources/samples/kodim03.png, (c) the app starts offscreen,
#   shows its main window and quits with status 0.
# Usage: packaging/build_bundle.sh [--skip-build]     (PYTHON=python3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DIST=dist/lesson7-studio

if [ "${1:-}" != "--skip-build" ]; then
  "$PY" -m PyInstaller --version >/dev/null 2>&1 || "$PY" -m pip install -q "pyinstaller>=6.0"
  echo "building with PyInstaller $("$PY" -m PyInstaller --version) ..."
  start=$(date +%s)
  "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/lesson7-studio.spec
  echo "build time: $(( $(date +%s) - start )) s"
fi

APP="$DIST/lesson7-studio"
[ -f "$APP.exe" ] && APP="$APP.exe"
[ -x "$APP" ] || { echo "no bundle at $APP" >&2; exit 1; }
echo "bundle size: $(du -sh "$DIST" | cut -f1) ($(find "$DIST" -type f | wc -l) files)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export QT_QPA_PLATFORM=offscreen LESSON7_OFFLINE=1
export LESSON7_DATA_DIR="$tmp/data" LESSON7_CONFIG_DIR="$tmp/config"

# (a) version
want="lesson7-studio $("$PY" -c 'import re,sys; print(re.search(r"__version__ = \"([^\"]+)\"", open("lesson7_studio/__init__.py").read()).group(1))')"
got=$("$APP" --version)
[ "$got" = "$want" ] || { echo "smoke (a) FAILED: --version printed '$got', expected '$want'" >&2; exit 1; }
echo "smoke (a) ok: $got"

# (b) restore one downscaled sample with the starter model
mkdir -p "$tmp/in"
"$PY" -c 'import sys; from PIL import Image
im = Image.open("lesson7_studio/resources/samples/kodim03.png").convert("RGB"); im.thumbnail((128, 128))
im.save(sys.argv[1])' "$tmp/in/kodim03.png"
t0=$(date +%s)
"$APP" restore "$tmp/in" "$tmp/out" --device cpu
out="$tmp/out/kodim03.png"
[ -s "$out" ] || { echo "smoke (b) FAILED: $out was not written" >&2; exit 1; }
size=$("$PY" -c 'import sys; from PIL import Image; print("%dx%d" % Image.open(sys.argv[1]).size)' "$out")
echo "smoke (b) ok: restored 128 px sample -> $size in $(( $(date +%s) - t0 )) s"

# (c) the app starts offscreen, shows its main window, quits
t0=$(date +%s)
timeout 180 "$APP" --bundle-smoke-test "$tmp/gui"
echo "smoke (c) ok: app started and quit in $(( $(date +%s) - t0 )) s"
echo "bundle smoke test passed"
