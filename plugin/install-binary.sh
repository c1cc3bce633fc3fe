#!/bin/sh
# Install/update hook of the `tfops` Helm plugin (plugin.yaml `hooks`): puts the tfops binary
# where plugin/tfops.sh looks first, <plugin root>/bin/tfops (the plugin root is
# $HELM_PLUGIN_DIR when Helm runs this). In this order:
#   1. TFOPS_BIN set: use that binary and install nothing (offline installs); an error when it is
#      not an executable file.
#   2. bin/tfops (or this checkout's target/release/tfops, `make build`) already there and of the
#      wanted version: keep it.
#   3. Download the release archive for this platform (linux|darwin x amd64|arm64):
#      $HELM_TFOPS_RELEASE_URL/v<version>/tfops_<version>_<os>_<arch>.tar.gz and checksums.txt
#      from the same release, with curl or wget; the archive's SHA-256 must match its line in
#      checksums.txt BEFORE it is unpacked. A mismatch is an error (exit 1, nothing installed,
#      no build): a tampered download is not a miss.
#   4. No release binary to use (other platform, asset or release missing, no curl/wget, no
#      sha256sum/shasum, download failed): say why, then `cargo build --release --locked --bin
#      tfops` in the plugin root and link bin/tfops to the result.
#   5. No cargo either: an error naming TFOPS_BIN and rustup.
# Environment: TFOPS_BIN; HELM_TFOPS_VERSION (default: `version:` of plugin.yaml; a leading `v`
# is ignored); HELM_TFOPS_RELEASE_URL (default https://github.com/helm-tfops/helm-tfops/releases/download).
set -u

say() { echo "helm-tfops: $*"; }
warn() { echo "helm-tfops: $*" >&2; }

root=$(cd "$(dirname "$0")/.." && pwd -P) || exit 1
bin_dir=$root/bin
dest=$bin_dir/tfops

# 1. An explicit binary.
if [ -n "${TFOPS_BIN:-}" ]; then
  if [ -f "$TFOPS_BIN" ] && [ -x "$TFOPS_BIN" ]; then
    say "using TFOPS_BIN=$TFOPS_BIN (nothing downloaded or built)"
    exit 0
  fi
  warn "TFOPS_BIN=$TFOPS_BIN is not an executable file"
  exit 1
fi

plugin_version=$(sed -n "s/^version:[[:space:]]*[\"']\{0,1\}\([^\"'[:space:]]*\).*/\1/p" "$root/plugin.yaml" | head -n 1)
version=${HELM_TFOPS_VERSION:-$plugin_version}
version=${version#v}
if [ -z "$version" ]; then
  warn "no version to install: set HELM_TFOPS_VERSION (no version: in $root/plugin.yaml)"
  exit 1
fi

# The version a tfops binary reports (`tfops --version` prints "tfops X.Y.Z"), empty if it
# does not run.
version_of() {
  "$1" --version 2>/dev/null | sed -n 's/^tfops[[:space:]]\{1,\}//p' | head -n 1
}

# 2. Already there.
if [ -x "$dest" ]; then
  have=$(version_of "$dest")
  if [ "$have" = "$version" ]; then
    say "keeping $dest (tfops $have)"
    exit 0
  fi
  say "$dest is tfops ${have:-of unknown version}, not $version: looking for tfops $version"
fi
link_checkout_build() {
  mkdir -p "$bin_dir" && ln -sf ../target/release/tfops "$dest"
}
if [ -x "$root/target/release/tfops" ] && [ "$(version_of "$root/target/release/tfops")" = "$version" ]; then
  if link_checkout_build; then
    say "using this checkout's build $root/target/release/tfops (tfops $version), linked as $dest"
    exit 0
  fi
  warn "could not link $dest to $root/target/release/tfops"
  exit 1
fi

# 3. The release binary.
tmp=
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

if command -v curl >/dev/null 2>&1; then
  fetcher=curl
elif command -v wget >/dev/null 2>&1; then
  fetcher=wget
else
  fetcher=
fi
fetch() { # URL FILE
  case $fetcher in
    curl) curl -fsSL --retry 2 -o "$2" "$1" ;;
    wget) wget -q -O "$2" "$1" ;;
  esac
}

if command -v sha256sum >/dev/null 2>&1; then
  hasher=sha256sum
elif command -v shasum >/dev/null 2>&1; then
  hasher="shasum -a 256"
else
  hasher=
fi

# Installs the release binary into $dest and returns 0; returns 1 (after saying why) when there
# is no release binary to use; exits 1 when the download does not match its checksum.
install_release() {
  sys=$(uname -s 2>/dev/null)
  machine=$(uname -m 2>/dev/null)
  case $sys in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) os= ;;
  esac
  case $machine in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) arch= ;;
  esac
  if [ -z "$os" ] || [ -z "$arch" ]; then
    warn "no release binary for ${sys:-unknown}/${machine:-unknown} (releases have linux and darwin, amd64 and arm64)"
    return 1
  fi
  if [ -z "$fetcher" ]; then
    warn "neither curl nor wget is installed: cannot download the release binary"
    return 1
  fi
  if [ -z "$hasher" ]; then
    warn "neither sha256sum nor shasum is installed: cannot verify a downloaded release binary"
    return 1
  fi
  base=${HELM_TFOPS_RELEASE_URL:-https://github.com/helm-tfops/helm-tfops/releases/download}
  release=${base%/}/v$version
  asset=tfops_${version}_${os}_${arch}.tar.gz
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/helm-tfops.XXXXXX") || {
    warn "cannot create a temporary folder"
    exit 1
  }
  say "downloading tfops $version for $os/$arch from $release ($fetcher)"
  if ! fetch "$release/checksums.txt" "$tmp/checksums.txt"; then
    warn "could not download $release/checksums.txt (no release v$version there?)"
    return 1
  fi
  want=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/checksums.txt" | tr 'A-F' 'a-f')
  if [ -z "$want" ]; then
    warn "release v$version has no $asset (no tfops binary for $os/$arch in its checksums.txt)"
    return 1
  fi
  if ! fetch "$release/$asset" "$tmp/$asset"; then
    warn "could not download $release/$asset"
    return 1
  fi
  got=$($hasher "$tmp/$asset" | awk '{ print $1 }')
  if [ "$got" != "$want" ]; then
    warn "checksum mismatch for $release/$asset: checksums.txt says sha256 $want, the download has $got."
    warn "refusing to install it (nothing was installed or built); check HELM_TFOPS_RELEASE_URL and your network, or set TFOPS_BIN to a binary you trust"
    exit 1
  fi
  mkdir "$tmp/unpacked" && tar -xzf "$tmp/$asset" -C "$tmp/unpacked" tfops && [ -f "$tmp/unpacked/tfops" ] || {
    warn "$asset (checksum verified) holds no tfops at its top level: the release is broken"
    exit 1
  }
  mkdir -p "$bin_dir" && cp "$tmp/unpacked/tfops" "$dest.new" && chmod 755 "$dest.new" && mv -f "$dest.new" "$dest" || {
    rm -f "$dest.new"
    warn "could not write $dest"
    exit 1
  }
  have=$(version_of "$dest")
  if [ -z "$have" ]; then
    rm -f "$dest"
    warn "the downloaded tfops does not run on this machine"
    return 1
  fi
  say "installed $dest (tfops $have, sha256 verified against checksums.txt)"
  return 0
}

if install_release; then
  exit 0
fi

# 4. Build from source.
if command -v cargo >/dev/null 2>&1; then
  if [ ! -f "$root/Cargo.toml" ]; then
    warn "no release binary to use and no sources to build tfops from in $root: set TFOPS_BIN to a tfops binary"
    exit 1
  fi
  say "building tfops from source instead: cargo build --release --locked --bin tfops in $root (takes a few minutes)"
  (cd "$root" && CARGO_TARGET_DIR="$root/target" cargo build --release --locked --bin tfops) || {
    warn "the build failed; fix it and run 'helm plugin update tfops', or set TFOPS_BIN"
    exit 1
  }
  if ! link_checkout_build; then
    warn "could not link $dest to $root/target/release/tfops"
    exit 1
  fi
  say "built $root/target/release/tfops, linked as $dest"
  exit 0
fi

# 5. Nothing left.
warn "no tfops binary and no cargo to build one: set TFOPS_BIN to a tfops binary (offline install), or install Rust (https://rustup.rs) and run 'helm plugin update tfops'"
exit 1
