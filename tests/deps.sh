#!/bin/sh
# Installs the Debian packages needed to build, test and demo (idempotent).
set -e
PKGS="build-essential clang libclang-rt-14-dev pkg-config librsync-dev libssh2-1-dev libxxhash-dev
libssl-dev zlib1g-dev libcmocka-dev libinih-dev openssh-server openssh-client rsync iproute2
inotify-tools procps psmisc valgrind gnuplot-nox cppcheck clang-tidy
systemd logrotate man-db groff-base dpkg-dev debhelper lintian fakeroot"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "missing packages:$missing (run as root or install them)" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
