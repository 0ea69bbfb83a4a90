#!/usr/bin/env bash
# Build the Functions deployment package: a static Linux binary and the files the Functions
# host reads, zipped with the binary's exec bit set (a custom handler without it never starts).
#
#   scripts/package-functions.sh [OUT.zip]      default: target/azd/patreport-functions.zip
#
# azd runs this as the `prepackage` hook of the `api` service (azure.yaml) and then uploads the
# zip unchanged (`dist` ends in .zip). The same zip deploys without azd:
#   az functionapp deployment source config-zip -g RG -n APP --src target/azd/patreport-functions.zip
#
# Needs: Linux (or WSL) x86_64, rustup with the x86_64-unknown-linux-musl target, musl-gcc
# (Debian/Ubuntu: apt-get install musl-tools; aws-lc-sys compiles C), python3.
# Honours CARGO_TARGET_DIR. Set PATREPORT_SKIP_BUILD=1 to package an already built binary.

# azd may start hooks with sh; the rest of this script is bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
out=${1:-target/azd/patreport-functions.zip}
target_dir=${CARGO_TARGET_DIR:-target}
binary="$target_dir/$target/release/patreport"

fail() { echo "error: $*" >&2; exit 1; }

command -v python3 >/dev/null || fail "python3 is needed to write the zip with the exec bit"

# The host starts host.json's defaultExecutablePath from the app root: it must be the file
# this script puts there.
exe=$(python3 -c 'import json; print(json.load(open("host.json"))["customHandler"]["description"]["defaultExecutablePath"])')
[[ "$exe" == "patreport" ]] || fail "host.json defaultExecutablePath is '$exe'; this script packages the binary as 'patreport'"

if [[ "${PATREPORT_SKIP_BUILD:-}" != 1 ]]; then
  command -v cargo >/dev/null || fail "cargo is needed (https://rustup.rs)"
  if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
    fail "the Rust target $target is missing: rustup target add $target"
  fi
  # aws-lc-sys (rustls' crypto) is C: it needs a C compiler for musl.
  if [[ -z "${CC_x86_64_unknown_linux_musl:-}" ]]; then
    command -v musl-gcc >/dev/null || fail "musl-gcc is needed to build aws-lc-sys for $target (apt-get install musl-tools), or set CC_x86_64_unknown_linux_musl"
    export CC_x86_64_unknown_linux_musl=musl-gcc
  fi
  echo "== cargo build --release --locked --target $target"
  cargo build --release --locked --target "$target" --bin patreport
fi
[[ -f "$binary" ]] || fail "$binary is missing"

# Every function folder: a top-level directory with a function.json.
functions=()
for f in */function.json; do
  [[ -f "$f" ]] && functions+=("${f%/function.json}")
done
(( ${#functions[@]} > 0 )) || fail "no */function.json found"

mkdir -p "$(dirname "$out")"
python3 - "$out" "$binary" "${functions[@]}" <<'PY'
import os, stat, sys, time, zipfile

out, binary, functions = sys.argv[1], sys.argv[2], sys.argv[3:]
# (path in the zip, file on disk, mode): Unix modes set explicitly, so the package is the same
# whatever the umask or file system (WSL mounts, fresh checkouts) it was built on.
entries = [("host.json", "host.json", 0o644), ("patreport", binary, 0o755)]
for fn in sorted(functions):
    for name in sorted(os.listdir(fn)):
        path = os.path.join(fn, name)
        if os.path.isfile(path):
            entries.append((f"{fn}/{name}", path, 0o644))

tmp = out + ".tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for arc, path, mode in entries:
        info = zipfile.ZipInfo(arc, date_time=time.localtime(os.path.getmtime(path))[:6])
        info.create_system = 3  # Unix, so that external_attr carries the mode
        info.external_attr = (stat.S_IFREG | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            z.writestr(info, f.read())
os.replace(tmp, out)

with zipfile.ZipFile(out) as z:
    for i in z.infolist():
        print(f"  {stat.filemode(i.external_attr >> 16)} {i.file_size:>10} {i.filename}")
    assert (z.getinfo("patreport").external_attr >> 16) & 0o111, "patreport lost its exec bit"
PY
echo "== $out"
