#!/bin/sh
# Registers the unpacked bundle with the desktop: a menu entry and an icon for this user.
set -e
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps"
mkdir -p "$apps" "$icons"
cp "$here/mammodesk.svg" "$icons/mammodesk.svg"
sed "s|^Exec=mammodesk|Exec=\"$here/mammodesk\"|" "$here/mammodesk.desktop" > "$apps/mammodesk.desktop"
echo "installed $apps/mammodesk.desktop"
