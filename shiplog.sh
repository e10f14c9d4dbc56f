#!/usr/bin/env bash
# The one entry point for a fresh Debian 12 machine: installs what is missing
# (apt-get), configures and builds, then runs the demo or the test suite.
#   ./shiplog.sh demo [options]   the main job (see --help)
#   ./shiplog.sh test             the whole test suite, normal and ASan+UBSan builds
#   ./shiplog.sh build            just install and build
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$top"

packages=(
	gcc libc6-dev pkg-config meson ninja-build
	liburing-dev libdpdk-dev liblz4-dev libcmocka-dev libinih-dev libsodium-dev
	librocksdb-dev
	iproute2 ethtool python3 python3-matplotlib
)

say() { printf 'shiplog.sh: %s\n' "$*" >&2; }

install_missing() {
	local missing=()
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		say "need root to install packages (run as root, or install them: ${missing[*]})"
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# build DIR [meson options...]
build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || {
			cat "$dir.setup.log" >&2
			exit 1
		}
	fi
	ninja -C "$dir" >&2
}

build_release() { build build; }
build_asan() {
	build build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all -Dbuildtype=debug
}

# Runs one build's suite; prints meson's per-test lines, leaves counts in $tally.
run_suite() {
	local dir=$1 log
	log=$(mktemp)
	set +e
	meson test -C "$dir" --print-errorlogs --num-processes 2 | tee "$log"
	local rc=${PIPESTATUS[0]}
	set -e
	local ok xfail fail skip timeout
	ok=$(sed -n 's/^Ok:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
	xfail=$(sed -n 's/^Expected Fail:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
	fail=$(sed -n 's/^Fail:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
	skip=$(sed -n 's/^Skipped:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
	timeout=$(sed -n 's/^Timeout:[[:space:]]*\([0-9]*\).*/\1/p' "$log" | tail -1)
	rm -f "$log"
	passed=$((passed + ${ok:-0} + ${xfail:-0}))
	failed=$((failed + ${fail:-0} + ${timeout:-0}))
	skipped=$((skipped + ${skip:-0}))
	[ "$rc" -eq 0 ] || [ "${fail:-0}" -gt 0 ] || failed=$((failed + 1))
}

cmd_test() {
	passed=0 failed=0 skipped=0
	build_release
	build_asan
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	say "test suite, release build"
	run_suite build
	say "test suite, ASan+UBSan build"
	run_suite build-asan
	echo "shiplog: $passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
demo)
	install_missing
	build_release
	exec ./build/app/shiplog-demo "$@"
	;;
test)
	install_missing
	cmd_test
	;;
build)
	install_missing
	build_release
	;;
-h | --help | "")
	sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
	[ -n "$cmd" ]
	;;
*)
	say "unknown command '$cmd' (demo, test, build)"
	exit 2
	;;
esac
