#!/bin/sh
# ensure-deps.sh - make sure the Debian packages distmgr builds with are here.
#
# Installs only what is missing (checked with pkg-config for libraries and
# with command -v for tools), says what it installs, and when it is not
# root and cannot install, prints the exact command to run and fails.
#
#   scripts/ensure-deps.sh            build and test dependencies
#   scripts/ensure-deps.sh fuzz       plus clang's libFuzzer runtime
#   scripts/ensure-deps.sh bench      plus the peers make bench compares with
set -eu

missing=""

need_pc() {		# need_pc PKGCONFIG-MODULE DEBIAN-PACKAGE
	if ! command -v pkg-config >/dev/null 2>&1 ||
	    ! pkg-config --exists "$1" 2>/dev/null; then
		add "$2"
	fi
}

need_cmd() {		# need_cmd COMMAND DEBIAN-PACKAGE
	command -v "$1" >/dev/null 2>&1 || add "$2"
}

need_file() {		# need_file PATH-GLOB DEBIAN-PACKAGE
	for f in $1; do
		[ -e "$f" ] && return 0
	done
	add "$2"
}

add() {
	case " $missing " in
	*" $1 "*) ;;
	*) missing="$missing $1" ;;
	esac
}

need_cmd cc gcc
need_cmd make make
need_cmd pkg-config pkg-config
need_pc libevent libevent-dev
need_pc libevent_extra libevent-dev
need_pc libevent_openssl libevent-dev
need_pc jansson libjansson-dev
need_pc openssl libssl-dev
need_pc check check
need_cmd mandoc mandoc
# The reporters' tests: the JUnit schema check, TAP read by prove, and
# the dashboard opened in a real browser.
need_cmd xmllint libxml2-utils
need_cmd prove perl
need_cmd python3 python3
need_cmd chromium chromium
need_cmd curl curl
# The farm's tests: a real OpenSSH server on a loopback port, network
# namespaces with veth pairs and netem delays (iproute2).
need_file /usr/sbin/sshd openssh-server
need_cmd ssh openssh-client
need_cmd ssh-keygen openssh-client
need_file /usr/sbin/ip iproute2
need_file /usr/sbin/tc iproute2
# Their certificates (contrib/make-certs.sh).
need_cmd openssl openssl

for what in "$@"; do
	case "$what" in
	fuzz)
		need_cmd clang clang
		need_file "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" \
		    libclang-rt-14-dev
		;;
	bench)
		need_file "/usr/include/criterion/criterion.h" libcriterion-dev
		need_cmd hyperfine hyperfine
		if ! python3 -c 'import xdist' >/dev/null 2>&1 &&
		    ! /usr/bin/python3 -c 'import xdist' >/dev/null 2>&1; then
			add python3-pytest-xdist
		fi
		;;
	*)
		echo "ensure-deps: unknown set '$what' (known: fuzz, bench)" >&2
		exit 4
		;;
	esac
done

[ -z "$missing" ] && exit 0

echo "ensure-deps: missing Debian packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "ensure-deps: not root, so not installing them. Run:" >&2
	echo "    sudo apt-get install -y$missing" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-deps: no apt-get here; install the equivalents of:$missing" >&2
	exit 1
fi
echo "ensure-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet; update once, quietly.
apt-get update -qq >/dev/null 2>&1 || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "ensure-deps: installed:$missing"
