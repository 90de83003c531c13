#!/usr/bin/env bash
# Builds the osprey-agent packages: target/packages/osprey-agent_<version>-1_<arch>.deb
# (cargo-deb) and target/packages/osprey-agent-<version>-1.<arch>.rpm (cargo-generate-rpm).
# The version is the workspace version (Cargo.toml). Installs the two cargo tools if missing.
#
#   packaging/build.sh            # release build, both packages
#   packaging/build.sh --check    # also run lintian on the .deb and rpm -qpl/--scripts on the .rpm
#   PACKAGE_BINARY=target/debug/osprey-agent packaging/build.sh --check
#                                 # package an already built binary (stripped) instead of
#                                 # building the release one: CI checks the packaging this way
#                                 # without paying the ~5-8 min fat-LTO release build
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
CARGO_GENERATE_RPM_VERSION=0.21.1
check=0
[ "${1:-}" = "--check" ] && check=1

log() { printf '\n==> %s\n' "$*"; }

# The tools are built without optimisation: they run once per build, and an optimised build of
# cargo-generate-rpm (it pulls in an OpenPGP stack) took 683 s here against 300 s at -O0.
install_tool() {
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/cargo-install" \
    cargo install "$1" --locked --version "$2"
}
command -v cargo-deb >/dev/null || install_tool cargo-deb "$CARGO_DEB_VERSION"
command -v cargo-generate-rpm >/dev/null || install_tool cargo-generate-rpm "$CARGO_GENERATE_RPM_VERSION"

target=${CARGO_TARGET_DIR:-target}
out="$target/packages"
mkdir -p "$out"

if [ -n "${PACKAGE_BINARY:-}" ]; then
  # cargo-deb and cargo-generate-rpm take the binary from <target-dir>/release/.
  bin_dir=$(mktemp -d)
  trap 'rm -rf "$bin_dir"' EXIT
  mkdir -p "$bin_dir/release"
  strip -o "$bin_dir/release/osprey-agent" "$PACKAGE_BINARY"
  log "packaging $PACKAGE_BINARY (stripped)"
else
  bin_dir=$target
  log "cargo build --release -p exporters --bin osprey-agent"
  cargo build --release --locked -p exporters --bin osprey-agent
fi

gzip -9n <packaging/osprey-agent.1 >"$bin_dir/release/osprey-agent.1.gz"

log "cargo deb"
deb=$(CARGO_TARGET_DIR="$bin_dir" cargo deb -p exporters --no-build --no-strip --output "$out" | tail -n 1)
log "cargo generate-rpm"
cargo generate-rpm -p exporters --target-dir "$bin_dir" -o "$out/"
rpm=$(ls -t "$out"/osprey-agent-*.rpm | head -n 1)
echo "built: $deb"
echo "built: $rpm"

if [ "$check" = 1 ]; then
  log "lintian $deb"
  lintian --fail-on error,warning --suppress-tags-from-file packaging/lintian-suppress.txt --tag-display-limit 0 "$deb"
  log "rpm -qpil $rpm"
  rpm -qpil "$rpm"
  log "rpm -qp --scripts $rpm"
  rpm -qp --scripts "$rpm"
  log "rpm -qpR $rpm"
  rpm -qpR "$rpm"

  log "rpmlint $rpm"
  # Findings cargo-generate-rpm cannot address are accepted with reasons in
  # packaging/rpmlint-accepted.txt; anything else fails.
  findings=$(rpmlint -c packaging/rpmlint.toml "$rpm" 2>&1 | grep -E '^osprey-agent[^:]*: [EW]: ' | sed 's/^[^:]*: //' || true)
  unexpected=$(grep -vxF -f <(grep -v '^#' packaging/rpmlint-accepted.txt | cut -f1 | sed '/^$/d') <<<"$findings" || true)
  echo "$findings"
  [ -z "$unexpected" ] || { echo "unexpected rpmlint findings:" >&2; echo "$unexpected" >&2; exit 1; }

  log "asserting package contents"
  fail() { echo "packaging check failed: $*" >&2; exit 1; }
  ctl=$(mktemp -d)
  dpkg-deb -e "$deb" "$ctl"
  # Listings are captured first: `producer | grep -q` fails under pipefail when grep exits early.
  deb_files=$(dpkg-deb -c "$deb" | awk '{print $6}')
  rpm_files=$(rpm -qpl "$rpm")
  rpm_config=$(rpm -qpc "$rpm")
  rpm_flags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpm")
  for f in /etc/osprey/agent.toml /etc/default/osprey-agent; do
    grep -qx "$f" "$ctl/conffiles" || fail "$f is not a conffile of the .deb"
    grep -qx "$f" <<<"$rpm_config" || fail "$f is not %config in the .rpm"
  done
  grep -q '^/etc/osprey/agent.toml cn$' <<<"$rpm_flags" || fail "agent.toml is not %config(noreplace)"
  for f in ./usr/share/man/man1/osprey-agent.1.gz ./usr/bin/osprey-agent ./usr/lib/systemd/system/osprey-agent.service \
           ./usr/lib/sysusers.d/osprey-agent.conf ./usr/lib/tmpfiles.d/osprey-agent.conf; do
    grep -qx "$f" <<<"$deb_files" || fail "$f missing from the .deb"
    grep -qx "${f#.}" <<<"$rpm_files" || fail "${f#.} missing from the .rpm"
  done
  grep -q 'systemd-sysusers' "$ctl/postinst" || fail "deb postinst does not create the user"
  grep -q 'deb-systemd-helper enable osprey-agent.service' "$ctl/postinst" || fail "deb postinst does not enable"
  grep -q 'deb-systemd-invoke $_dh_action osprey-agent.service' "$ctl/postinst" || fail "deb postinst does not start"
  grep -q 'deb-systemd-invoke stop osprey-agent.service' "$ctl/prerm" || fail "deb prerm does not stop"
  grep -q 'rm -rf /var/lib/osprey' "$ctl/postrm" || fail "deb purge keeps /var/lib/osprey"
  scripts=$(rpm -qp --scripts "$rpm")
  for s in 'systemd-sysusers' 'enable --now osprey-agent.service' 'disable --now osprey-agent.service' 'try-restart osprey-agent.service'; do
    grep -qF -- "$s" <<<"$scripts" || fail "rpm scripts lack: $s"
  done
  version=$(cargo metadata --no-deps --format-version 1 | sed -n 's/.*"name":"exporters","version":"\([^"]*\)".*/\1/p')
  [[ "$(dpkg-deb -f "$deb" Version)" == "$version-"* ]] || fail "deb version is not the workspace version $version"
  [ "$(rpm -qp --qf '%{VERSION}' "$rpm")" = "$version" ] || fail "rpm version is not the workspace version $version"
  rm -rf "$ctl"
  echo "ok: deb and rpm carry the binary, unit, sysusers, tmpfiles, conffiles and scripts (version $version)"
fi
