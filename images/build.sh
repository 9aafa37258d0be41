#!/bin/bash
# Build the edge Raspberry Pi OS Lite (arm64) image with pi-gen: `make image` runs this.
#
#   images/build.sh               check prerequisites, stage, build (takes 30-90 min)
#   images/build.sh --check       only check prerequisites and the recipe
#   images/build.sh --stage-only DIR   only stage the pi-gen stage (wheel, units, scripts) into DIR
#
# Needs: a pi-gen checkout on its arm64 branch (PI_GEN_DIR, default images/work/pi-gen):
#   git clone --branch arm64 --depth 1 https://github.com/RPi-Distro/pi-gen images/work/pi-gen
# and either Docker (pi-gen's build-docker.sh; binfmt for arm64 on the host) or a Debian host as
# root with pi-gen's dependencies (its `depends` file) and qemu-user-static for a native build;
# about 20 GB free; EDGE_TECH_PASSWORD (the `tech` account) and EDGE_TECH_SSH_KEY (a .pub file).
# The result: PI_GEN_DIR/deploy/image_*-edge.img.xz. See docs/deployment.md.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
PI_GEN_DIR=${PI_GEN_DIR:-$HERE/work/pi-gen}
PYTHON=${PYTHON:-python3}
STAGE_NAME=stage-edge
MIN_FREE_GB=20

missing=()
need() { missing+=("$1"); }

check_recipe() {
	local f
	for f in "$HERE/pi-gen/$STAGE_NAME/prerun.sh" "$HERE"/pi-gen/$STAGE_NAME/*/[0-9][0-9]-run*.sh; do
		[ -x "$f" ] || need "recipe: $f is not executable (pi-gen skips it silently)"
		bash -n "$f" || need "recipe: $f has a shell syntax error"
	done
	[ -f "$HERE/pi-gen/$STAGE_NAME/EXPORT_IMAGE" ] || need "recipe: $STAGE_NAME/EXPORT_IMAGE is missing (no image would be written)"
}

check_host() {
	[ "$(uname -s)" = Linux ] || need "a Linux build host (found $(uname -s))"
	if [ ! -x "$PI_GEN_DIR/build.sh" ] || [ ! -d "$PI_GEN_DIR/stage2" ]; then
		need "a pi-gen checkout at $PI_GEN_DIR: git clone --branch arm64 --depth 1 https://github.com/RPi-Distro/pi-gen $PI_GEN_DIR (or set PI_GEN_DIR)"
	elif [ -d "$PI_GEN_DIR/.git" ]; then
		local branch
		branch=$(git -C "$PI_GEN_DIR" rev-parse --abbrev-ref HEAD 2>/dev/null || echo '?')
		[ "$branch" = arm64 ] || echo "build.sh: note: pi-gen is on branch '$branch'; the 64-bit image is built from 'arm64'" >&2
	fi
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		BUILDER=docker
	elif [ "$(id -u)" = 0 ] && [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && command -v debootstrap >/dev/null 2>&1; then
		BUILDER=native
	else
		BUILDER=none
		need "a builder: Docker with a running daemon, or root with qemu-user-static (binfmt qemu-aarch64 registered) and debootstrap"
	fi
	local dir=$PI_GEN_DIR
	[ -d "$dir" ] || dir=$HERE
	local free_gb
	free_gb=$(df -Pk "$dir" | awk 'NR==2 {print int($4 / 1048576)}')
	[ "${free_gb:-0}" -ge "$MIN_FREE_GB" ] || need "$MIN_FREE_GB GB free under $dir (found ${free_gb} GB)"
	[ -n "${EDGE_TECH_PASSWORD:-}" ] || need "EDGE_TECH_PASSWORD: the password of the technician account 'tech'"
	if [ -z "${EDGE_TECH_SSH_KEY:-}" ] || [ ! -f "${EDGE_TECH_SSH_KEY}" ]; then
		need "EDGE_TECH_SSH_KEY: the path of the technician's SSH public key (.pub); password login over SSH is off"
	fi
	"$PYTHON" -m pip --version >/dev/null 2>&1 || need "$PYTHON with pip, to build the edge wheel"
}

# Copy the stage and fill its files/ with what 00-run.sh installs.
stage() {
	local out=$1
	rm -rf "$out"
	mkdir -p "$(dirname "$out")"
	cp -a "$HERE/pi-gen/$STAGE_NAME" "$out"
	local files=$out/01-edge/files
	mkdir -p "$files/wheels" "$files/systemd"
	# Build from a copy so the source tree gets no build/ or egg-info.
	local src
	src=$(mktemp -d)
	cp "$REPO/pyproject.toml" "$REPO/README.md" "$src/"
	cp -a "$REPO/edge" "$src/edge"
	find "$src/edge" -name __pycache__ -prune -exec rm -rf {} +
	"$PYTHON" -m pip wheel --no-deps --quiet --wheel-dir "$files/wheels" "$src" >&2
	rm -rf "$src"
	cp "$HERE/files/edge-firstboot" "$HERE/files/edge-update" "$files/"
	cp "$REPO"/systemd/*.service "$files/systemd/"
	cp -a "$REPO/systemd/system.conf.d" "$REPO/systemd/journald.conf.d" "$files/systemd/"
	cp "$REPO/docs/deployment.md" "$files/deployment.md"
	cp -a "$REPO/hw-tests" "$files/hw-tests"
	find "$files/hw-tests" -name __pycache__ -prune -exec rm -rf {} +
	echo "build.sh: staged $(ls "$files/wheels") and the edge units in $out" >&2
}

case "${1:-}" in
	--stage-only)
		[ -n "${2:-}" ] || { echo "usage: $0 --stage-only DIR" >&2; exit 2; }
		check_recipe
		if [ ${#missing[@]} -gt 0 ]; then printf 'build.sh: %s\n' "${missing[@]}" >&2; exit 1; fi
		stage "$2"
		exit 0 ;;
	--check | "") ;;
	*) echo "usage: $0 [--check | --stage-only DIR]" >&2; exit 2 ;;
esac

BUILDER=none
check_recipe
check_host
if [ ${#missing[@]} -gt 0 ]; then
	{
		echo "make image: cannot build the Raspberry Pi image on this machine. Missing:"
		printf '  - %s\n' "${missing[@]}"
		echo "What can be checked here is checked by the tests (tests/deploy: wheel, units, first boot,"
		echo "update/rollback, recipe). Build steps: docs/deployment.md, section 'Building the image'."
	} >&2
	exit 2
fi
[ "${1:-}" = --check ] && { echo "build.sh: ready to build with $BUILDER" >&2; exit 0; }

stage "$PI_GEN_DIR/$STAGE_NAME"
touch "$PI_GEN_DIR/stage2/SKIP_IMAGES"   # export only the edge image, not a plain Lite one
config=$PI_GEN_DIR/config.edge
{
	cat "$HERE/pi-gen/config"
	printf 'FIRST_USER_PASS=%q\n' "$EDGE_TECH_PASSWORD"
	printf 'PUBKEY_SSH_FIRST_USER=%q\n' "$(cat "$EDGE_TECH_SSH_KEY")"
	printf 'STAGE_LIST="stage0 stage1 stage2 %s"\n' "$STAGE_NAME"
} >"$config"
chmod 600 "$config"
cd "$PI_GEN_DIR"
if [ "$BUILDER" = docker ]; then
	./build-docker.sh -c config.edge
else
	./build.sh -c config.edge
fi
ls -l "$PI_GEN_DIR"/deploy/*edge* 2>/dev/null || true
