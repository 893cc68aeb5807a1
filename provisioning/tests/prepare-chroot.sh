#!/bin/sh
# Builds what the provisioning tests need from the network, so the tests themselves can
# run offline (make test runs pytest inside `unshare -n`):
#   $CACHE/base/        a Debian 12 minbase chroot (debootstrap) from the same apt mirror this
#                       machine uses, with the .debs the roles install already downloaded into
#                       its apt cache (the roles install them, offline, at converge time);
#   $CACHE/wheelhouse/  wheels for the project's runtime dependencies plus the build backend,
#                       so the chroot's pip installs with --no-index --find-links.
# Each part carries a stamp of its inputs and is rebuilt only when they change.
# Usage: prepare-chroot.sh [REPO_DIR]   (env: EVR_TEST_CACHE, EVR_TEST_PYTHON)
set -eu

REPO=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
CACHE=${EVR_TEST_CACHE:-/var/cache/evr-test}
PYTHON=${EVR_TEST_PYTHON:-$REPO/.venv/bin/python}
SUITE=bookworm
# What any Debian 12 server has that minbase lacks: Python for Ansible, systemd (so the
# rendered units can be verified against a real unit tree).
BASE_INCLUDE=python3,python3-apt,systemd,systemd-sysv,iproute2
# Everything the roles install with apt; keep in step with the roles' *_packages defaults.
ROLE_PACKAGES="python3 python3-venv python3-packaging python3-cryptography openssl ca-certificates logrotate fonts-dejavu-core \
coturn nftables prometheus-node-exporter"

[ "$(id -u)" = 0 ] || { echo "prepare-chroot.sh: must run as root (debootstrap, chroot)" >&2; exit 1; }
mkdir -p "$CACHE"

# The mirror this machine is configured with (deb822 first, then one-line format).
mirror=$(awk '/^URIs:/ {u=$2} /^Suites:/ && u && $0 ~ /'$SUITE'( |$)/ {print u; exit}' \
  /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
  mirror=$(awk '$1=="deb" && $3=="'$SUITE'" {print $2; exit}' /etc/apt/sources.list \
    /etc/apt/sources.list.d/*.list 2>/dev/null || true)
fi
security=$(awk '/^URIs:/ {u=$2} /^Suites:/ && u && /'$SUITE'-security/ {print u; exit}' \
  /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || { echo "prepare-chroot.sh: no $SUITE mirror in /etc/apt/sources.list*" >&2; exit 1; }

base_key=$(printf '%s\n' "$mirror" "$security" "$BASE_INCLUDE" "$ROLE_PACKAGES" "v2" | sha256sum | cut -c1-16)
if [ "$(cat "$CACHE/base.stamp" 2>/dev/null)" != "$base_key" ]; then
  echo "prepare-chroot.sh: debootstrap $SUITE from $mirror"
  rm -rf "$CACHE/base" "$CACHE/base.tmp" "$CACHE/base.stamp"
  start=$(date +%s)
  debootstrap --variant=minbase --include="$BASE_INCLUDE" "$SUITE" "$CACHE/base.tmp" "$mirror"
  {
    echo "deb $mirror $SUITE main"
    echo "deb $mirror $SUITE-updates main"
    [ -z "$security" ] || echo "deb $security $SUITE-security main"
  } > "$CACHE/base.tmp/etc/apt/sources.list"
  # Package scripts must not start services in a chroot.
  printf '#!/bin/sh\nexit 101\n' > "$CACHE/base.tmp/usr/sbin/policy-rc.d"
  chmod 0755 "$CACHE/base.tmp/usr/sbin/policy-rc.d"
  chroot "$CACHE/base.tmp" apt-get update -qq
  # Upgrade from -updates/-security, then fetch (not install) what the roles install.
  chroot "$CACHE/base.tmp" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq dist-upgrade
  # shellcheck disable=SC2086
  chroot "$CACHE/base.tmp" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --download-only --no-install-recommends $ROLE_PACKAGES
  mv "$CACHE/base.tmp" "$CACHE/base"
  echo "$base_key" > "$CACHE/base.stamp"
  echo "prepare-chroot.sh: base chroot ready in $(( $(date +%s) - start )) s"
fi

wheel_key=$( (cat "$REPO/pyproject.toml"; "$PYTHON" -c 'import sys; print(sys.version_info[:2])') \
  | sha256sum | cut -c1-16)
if [ "$(cat "$CACHE/wheelhouse.stamp" 2>/dev/null)" != "$wheel_key" ]; then
  echo "prepare-chroot.sh: wheelhouse from the configured package index"
  rm -rf "$CACHE/wheelhouse" "$CACHE/wheelhouse.stamp"
  mkdir -p "$CACHE/wheelhouse"
  deps=$("$PYTHON" - "$REPO/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
)
  echo "$deps" > "$CACHE/requirements.txt"
  "$PYTHON" -m pip download --quiet --only-binary=:all: --dest "$CACHE/wheelhouse" \
    -r "$CACHE/requirements.txt" "setuptools>=77" wheel pip
  echo "$wheel_key" > "$CACHE/wheelhouse.stamp"
fi
echo "prepare-chroot.sh: cache ready in $CACHE"
