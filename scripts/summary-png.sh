#!/usr/bin/env bash
# Render a workbook's Summary sheet (its first printed page) to a PNG, as LibreOffice draws it:
#   scripts/summary-png.sh REPORT.xlsx OUT.png
# Needs LibreOffice (Debian: libreoffice-calc-nogui) and pdftoppm (poppler-utils).
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 REPORT.xlsx OUT.png" >&2; exit 2; }
xlsx=$1
out=$2
for tool in soffice pdftoppm; do
  command -v "$tool" >/dev/null || {
    echo "error: $tool is needed (apt-get install libreoffice-calc-nogui poppler-utils)" >&2
    exit 1
  }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A profile of its own, so a running LibreOffice (or a first-start dialog) does not interfere.
soffice -env:UserInstallation="file://$work/profile" --headless --convert-to pdf \
  --outdir "$work" "$xlsx" >/dev/null
pdf="$work/$(basename "${xlsx%.*}").pdf"
pdftoppm -f 1 -l 1 -r 110 -png -singlefile "$pdf" "${out%.png}"
echo "$out"
