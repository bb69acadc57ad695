#!/usr/bin/env bash
# Check that online adaptation gives the same final state hash on arm64 (Raspberry Pi OS = Debian
# arm64) as on this x86 host: build a Debian arm64 rootfs with debootstrap + qemu-user-static,
# install edge_evo there, run the same adapt stream on both sides and compare state_sha256.
#
#   sudo targets/pi/check_arm64.sh --build ROOT     # ~4 min, ~630 MB (needs debootstrap, qemu-user-static, binfmt-support)
#   sudo targets/pi/check_arm64.sh --root ROOT --check
#
# Emulated timings are meaningless (~15-200x slower); this checks bits, not speed.
# Facts and pitfalls: notes/arm64-emulation.md (binfmt registration, CA certificates, env -i).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
ROOT=""; BUILD=0; CHECK=0; CPU="${PI_CPU:-cortex-a72}"; SUITE="${SUITE:-bookworm}"
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=1; ROOT="$2"; shift 2;;
    --root) ROOT="$2"; shift 2;;
    --check) CHECK=1; shift;;
    --cpu) CPU="$2"; shift 2;;
    *) echo "usage: $0 [--build ROOT | --root ROOT] [--check] [--cpu cortex-a72|cortex-a76]" >&2; exit 2;;
  esac
done
[ -n "$ROOT" ] || { echo "error: give --build ROOT or --root ROOT" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "error: debootstrap/chroot need root (run with sudo)" >&2; exit 2; }

enable_binfmt() {
  [ -d /proc/sys/fs/binfmt_misc ] && [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
}

in_root() {  # clean environment: host PIP_* and friends must not leak in
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      QEMU_CPU="$CPU" NUMBA_CPU_NAME="$CPU" chroot "$ROOT" /bin/bash -c "$1"
}

if [ "$BUILD" = 1 ]; then
  for t in debootstrap qemu-aarch64-static update-binfmts; do
    command -v "$t" >/dev/null || { echo "error: $t missing: apt-get install debootstrap qemu-user-static binfmt-support" >&2; exit 2; }
  done
  enable_binfmt
  MIRROR="${MIRROR:-http://deb.debian.org/debian}"
  debootstrap --arch=arm64 --foreign --variant=minbase "$SUITE" "$ROOT" "$MIRROR"
  cp "$(command -v qemu-aarch64-static)" "$ROOT/usr/bin/"
  chroot "$ROOT" /debootstrap/debootstrap --second-stage
  cp -r /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null || true
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  in_root "apt-get update && apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates && update-ca-certificates"
  in_root "python3 -m venv /opt/ee && /opt/ee/bin/pip install 'numpy<2.5' numba"
fi

if [ "$CHECK" = 1 ]; then
  enable_binfmt
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  # install the package itself (as a Pi user would), not a copy of the source tree
  rm -rf "$ROOT/opt/edge_evo_src" && mkdir -p "$ROOT/opt/edge_evo_src"
  (cd "$REPO" && git ls-files -z edge_evo firmware_export targets pyproject.toml setup.py README.md \
     | xargs -0 cp --parents -t "$ROOT/opt/edge_evo_src/")
  in_root "/opt/ee/bin/pip install -q --no-deps /opt/edge_evo_src"
  python3 "$REPO/targets/pi/make_stream.py" "$ROOT/opt/stream.csv"
  HASH_CMD='from edge_evo.online import OnlineAdapter, AdaptConfig; from edge_evo.models.mlp import MLPSpec
a = OnlineAdapter(MLPSpec((8, 8, 3)), None, AdaptConfig(seed=7))
a.run(open(STREAM).read().splitlines()); print(a.state_hash())'
  # both sides run the same snapshot of the code (the copy installed in the rootfs)
  X86=$(cd "$ROOT/opt/edge_evo_src" && python3 -c "STREAM='$ROOT/opt/stream.csv'; $HASH_CMD")
  ARM=$(in_root "cd /opt && /opt/ee/bin/python -c \"STREAM='/opt/stream.csv'; $HASH_CMD\"")
  echo "x86   $X86"
  echo "arm64 $ARM ($(in_root 'uname -m'), $CPU)"
  if [ "$X86" = "$ARM" ]; then echo "MATCH"; else echo "MISMATCH"; exit 1; fi
fi
