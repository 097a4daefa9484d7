#!/usr/bin/env bash
# Builds the Guestloop image without a Docker engine, from Debian's packages, as an OCI
# image layout (and the same as an oci-archive tar) tagged guestloop:<chart appVersion>.
#
# KEEP IN STEP WITH docker/Dockerfile, which stays the canonical recipe. This script does
# not copy the recipe, it reads it: the runtime stage's RUN commands are run verbatim in a
# chroot, and its COPY, LABEL, USER, ENV, EXPOSE and CMD become the image's layer and
# config; from the build stage it takes the ENV, the cargo command it checks for and the
# list of binaries. An instruction it does not know stops it, naming the instruction.
#
#   debian:<release>-slim  ->  Debian's own recipe for that image, from its own tool
#                              (debuerreotype: debootstrap --variant=minbase, the "slim"
#                              dpkg excludes, dist-upgrade from <release>-updates/-security),
#                              cached in ~/.cache/guestloop/image/base/<key>
#   RUN ... (runtime stage)   ->  the same shell command in a chroot of that root filesystem
#   cargo build (build stage) ->  the same command here, CARGO_TARGET_DIR kept between runs
#   COPY --from=build /out/   ->  one layer with the binaries (umoci insert)
#   LABEL/USER/ENV/EXPOSE/CMD ->  the image config (umoci config)
#
# Usage: bash scripts/build-image.sh [--check] [--refresh-base] [--skip-cargo]
#   --check         then run the image: bash scripts/run-image-check.sh
#   --refresh-base  rebuild the cached base even if it is fresh (it is rebuilt anyway when
#                   older than GUESTLOOP_IMAGE_BASE_MAX_AGE_DAYS, default 7, to take
#                   security updates, or when the release, RUN commands or recipe change)
#   --skip-cargo    use the release binaries already in CARGO_TARGET_DIR
# Needs root (debootstrap, chroot) and Debian's package mirror; installs debootstrap,
# debuerreotype, umoci, wget and python3 with apt-get when missing. No Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/image-lib.sh
source scripts/image-lib.sh

check=0 refresh_base=0 skip_cargo=0
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    --refresh-base) refresh_base=1 ;;
    --skip-cargo) skip_cargo=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg" ;;
  esac
done
[[ $EUID -eq 0 ]] || die "run as root: the root filesystem is made with debootstrap and chroot"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guestloop/target}"
MIRROR="${GUESTLOOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${GUESTLOOP_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
BASE_MAX_AGE_DAYS="${GUESTLOOP_IMAGE_BASE_MAX_AGE_DAYS:-7}"
# What debian:*-slim images set in their config.
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

need_pkgs debootstrap debuerreotype umoci wget python3 ca-certificates
mkdir -p "$IMAGE_CACHE"
WORK="$(mktemp -d "$IMAGE_CACHE/work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
DEBUERREOTYPE=/usr/share/debuerreotype/scripts

# --- read docker/Dockerfile ------------------------------------------------------------
# Writes $WORK/spec.json: the release, the build stage's env, cargo check and binaries, the
# runtime stage's RUN commands, COPY destination and config; and $WORK/config.args, the
# umoci config arguments (NUL-separated).
python3 - docker/Dockerfile "$WORK" "$BASE_PATH" <<'PY'
import json, re, shlex, sys

path, work, base_path = sys.argv[1:]
def fail(msg):
    sys.exit(f"build-image.sh: {path}: {msg} (update scripts/build-image.sh to follow it)")

# Logical lines: comments dropped, backslash continuations joined.
lines, cur = [], ""
for raw in open(path, encoding="utf-8").read().splitlines():
    s = raw.strip()
    if s.startswith("#") or (not s and not cur):
        continue
    if s.endswith("\\"):
        cur += s[:-1].strip() + " "
        continue
    lines.append((cur + s).strip())
    cur = ""

args, stages = {}, []
def subst(text):
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), text)

for line in lines:
    instr, _, rest = line.partition(" ")
    instr, rest = instr.upper(), rest.strip()
    if instr == "ARG":
        name, _, default = rest.partition("=")
        args.setdefault(name, default)
    elif instr == "FROM":
        m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
        if not m:
            fail(f"cannot read FROM {rest}")
        stages.append({"from": subst(m[1]), "name": m[2], "instrs": []})
    elif not stages:
        fail(f"{instr} before the first FROM")
    else:
        stages[-1]["instrs"].append((instr, rest))

if len(stages) != 2:
    fail(f"expected two stages (build, runtime), found {len(stages)}")
build, runtime = stages
release = args.get("DEBIAN_RELEASE") or fail("no ARG DEBIAN_RELEASE")
if runtime["from"] != f"debian:{release}-slim":
    fail(f"runtime stage is FROM {runtime['from']}, this script makes debian:{release}-slim")

def kv_pairs(rest, instr):
    pairs = []
    for word in shlex.split(rest):
        k, eq, v = word.partition("=")
        if not eq:
            fail(f"{instr} {rest}: only the KEY=VALUE form is supported")
        pairs.append((k, v))
    return pairs

spec = {"release": release, "rust_version": args.get("RUST_VERSION", ""), "build_env": [],
        "bins": [], "runs": [], "copy_dest": "", "config_history": []}
cargo_seen = False
for instr, rest in build["instrs"]:
    if instr == "ENV":
        spec["build_env"] += [f"{k}={v}" for k, v in kv_pairs(rest, instr)]
    elif instr == "RUN" and "cargo build" in rest:
        if "cargo build --release --locked --bins" not in rest:
            fail("the build stage's cargo command changed")
        cargo_seen = True
        m = re.search(r"for bin in ([^;]+); do", rest)
        if not m:
            fail("no `for bin in ...; do` list of binaries in the build stage")
        spec["bins"] = m[1].split()
    elif instr not in ("WORKDIR", "COPY"):
        fail(f"unsupported build-stage instruction {instr}")
if not cargo_seen:
    fail("no cargo build in the build stage")

config = []
for instr, rest in runtime["instrs"]:
    if instr == "RUN":
        if rest.startswith("["):
            fail("exec-form RUN is not supported")
        spec["runs"].append(rest)
    elif instr == "COPY":
        m = re.fullmatch(rf"--from={re.escape(build['name'] or '')}\s+/out/\s+(\S+)", rest)
        if not m:
            fail(f"unsupported COPY {rest}")
        spec["copy_dest"] = m[1].rstrip("/") or "/"
    elif instr == "LABEL":
        config += [a for k, v in kv_pairs(rest, instr) for a in ("--config.label", f"{k}={v}")]
    elif instr == "USER":
        config += ["--config.user", rest]
    elif instr == "ENV":
        config += [a for k, v in kv_pairs(rest, instr) for a in ("--config.env", f"{k}={v}")]
    elif instr == "EXPOSE":
        config += [a for p in rest.split() for a in ("--config.exposedports", p if "/" in p else f"{p}/tcp")]
    elif instr == "CMD":
        try:
            cmd = json.loads(rest)
        except ValueError:
            fail("only the exec (JSON) form of CMD is supported")
        config += [a for c in cmd for a in ("--config.cmd", c)]
    else:
        fail(f"unsupported runtime-stage instruction {instr}")
    if instr != "RUN" and instr != "COPY":
        spec["config_history"].append(f"{instr} {rest}")
if not spec["copy_dest"]:
    fail("no COPY --from=build /out/ ... in the runtime stage")

json.dump(spec, open(f"{work}/spec.json", "w"), indent=1)
with open(f"{work}/config.args", "wb") as f:
    f.write(b"\0".join(a.encode() for a in config) + b"\0")
PY

spec() {  # spec KEY: a value of spec.json, lists one item a line
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]
print("\n".join(v) if isinstance(v, list) else v)' "$WORK/spec.json" "$1"
}
RELEASE="$(spec release)"
mapfile -t BINS < <(spec bins)
mapfile -t RUNS < <(spec runs)
mapfile -t BUILD_ENV < <(spec build_env)
say "docker/Dockerfile: debian:$RELEASE-slim + ${#RUNS[@]} RUN, binaries: ${BINS[*]}"

# --- 1. the binaries: the build stage's command ----------------------------------------
if ((skip_cargo)); then
  say "skipping cargo (--skip-cargo)"
else
  rust_want="$(spec rust_version)"
  rust_have="$(rustc --version | awk '{print $2}')"
  [[ "$rust_have" == "$rust_want"* ]] \
    || say "note: rustc $rust_have here, the Dockerfile builds with rust:$rust_want"
  say "cargo build --release --locked --bins (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  env "${BUILD_ENV[@]}" cargo build --release --locked --bins
fi
mkdir -p "$WORK/out"
for bin in "${BINS[@]}"; do
  install -m 0755 -o 0 -g 0 "$CARGO_TARGET_DIR/release/$bin" "$WORK/out/"
done

# --- 2. the base: debian:<release>-slim and the runtime stage's RUN ---------------------
# Debian's own image recipe (what debian:*-slim is built with), from deb.debian.org
# instead of snapshot.debian.org: minbase debootstrap, the container apt/dpkg settings,
# sources with -updates and -security, dist-upgrade, slimify (no docs but copyright, man
# pages, info, locales; dpkg keeps excluding them on later installs), fixup.
write_sources() {  # what debian:*-slim ships, deb822
  rm -f "$1/etc/apt/sources.list"
  mkdir -p "$1/etc/apt/sources.list.d"
  cat >"$1/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $RELEASE $RELEASE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $RELEASE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}
# What an image layer should not carry (debuerreotype-tar excludes the same): apt's lists
# and caches, logs, the host's resolver, device nodes (the runtime provides /dev).
trim_rootfs() {
  local r=${1:?}
  "$DEBUERREOTYPE/debuerreotype-fixup" "$r"
  rm -rf "${r:?}"/var/lib/apt/lists/* "${r:?}"/var/cache/apt/*.bin \
    "${r:?}"/var/cache/apt/archives/*.deb "${r:?}"/var/cache/debconf/*-old "${r:?}"/var/lib/dpkg/*-old \
    "${r:?}"/var/log/apt/* "${r:?}"/etc/apt/apt.conf.d/01autoremove-kernels "${r:?}"/dev/* \
    "${r:?}"/proc/* "${r:?}"/sys/* "${r:?}"/tmp/* "${r:?}"/etc/resolv.conf
  mkdir -p "$r/var/lib/apt/lists/partial"
}
build_base() {  # build_base DIR: an OCI layout DIR/layout, tag "base", two layers
  local layout=$1/layout bundle=$WORK/bundle rootfs run
  umoci init --layout "$layout"
  umoci new --image "$layout:base"
  umoci unpack --image "$layout:base" "$bundle" >/dev/null
  rootfs=$bundle/rootfs
  say "debuerreotype-init: debootstrap --variant=minbase $RELEASE from $MIRROR"
  "$DEBUERREOTYPE/debuerreotype-init" --non-debian "$rootfs" "$RELEASE" "$MIRROR" \
    >"$1/debootstrap.log" 2>&1 || { tail -20 "$1/debootstrap.log" >&2; die "debootstrap failed"; }
  "$DEBUERREOTYPE/debuerreotype-minimizing-config" "$rootfs"
  write_sources "$rootfs"
  say "apt-get update && dist-upgrade from $RELEASE, -updates, -security"
  "$DEBUERREOTYPE/debuerreotype-apt-get" "$rootfs" update -qq
  "$DEBUERREOTYPE/debuerreotype-apt-get" "$rootfs" dist-upgrade -yqq \
    >>"$1/debootstrap.log" 2>&1 || { tail -20 "$1/debootstrap.log" >&2; die "dist-upgrade failed"; }
  "$DEBUERREOTYPE/debuerreotype-slimify" "$rootfs"
  trim_rootfs "$rootfs"
  umoci repack --image "$layout:base" --refresh-bundle --mask-path /debuerreotype-epoch \
    --history.created_by "debian:$RELEASE-slim equivalent: debuerreotype (minbase, slimify) from $MIRROR" \
    "$bundle"
  touch "$rootfs/etc/resolv.conf"  # debuerreotype-chroot mounts the host's over it
  for run in "${RUNS[@]}"; do
    say "RUN $run"
    "$DEBUERREOTYPE/debuerreotype-chroot" "$rootfs" /bin/sh -c "$run" >>"$1/run.log" 2>&1 \
      || { tail -20 "$1/run.log" >&2; die "the runtime stage's RUN failed (log: $1/run.log)"; }
  done
  trim_rootfs "$rootfs"
  umoci repack --image "$layout:base" --refresh-bundle --mask-path /debuerreotype-epoch \
    --history.created_by "RUN ${RUNS[*]}" "$bundle"
  umoci config --image "$layout:base" --no-history --config.env "PATH=$BASE_PATH"
  umoci gc --layout "$layout"
  # shellcheck disable=SC2016 # dpkg-query's format, not shell
  "$DEBUERREOTYPE/debuerreotype-chroot" "$rootfs" dpkg-query -W -f '${Package} ${Version}\n' \
    >"$1/packages.txt"
  rm -rf "$bundle"
}

# The cache key: the release, mirrors, the RUN commands and this recipe's own code.
base_key="$(
  { echo "$RELEASE $MIRROR $SECURITY_MIRROR $BASE_PATH"; printf '%s\n' "${RUNS[@]}"
    declare -f write_sources trim_rootfs build_base; } | sha256sum | cut -c1-16
)"
BASE="$IMAGE_CACHE/base/$RELEASE-$base_key"
if [[ -f "$BASE/layout/index.json" ]] && ((!refresh_base)) \
  && [[ -z "$(find "$BASE/layout/index.json" -mmin "+$((BASE_MAX_AGE_DAYS * 1440))")" ]]; then
  say "base: cached $BASE (built $(date -r "$BASE/layout/index.json" '+%F %R'))"
else
  say "base: building $BASE"
  rm -rf "$WORK/base"
  mkdir -p "$WORK/base"
  build_base "$WORK/base"
  # Older bases (another key) are of no more use.
  rm -rf "$IMAGE_CACHE/base"
  mkdir -p "$IMAGE_CACHE/base"
  mv "$WORK/base" "$BASE"
fi

# --- 3. the image: base + COPY of the binaries + the config -----------------------------
layout="$WORK/oci"
cp -a "$BASE/layout" "$layout"
umoci tag --image "$layout:base" "$IMAGE_REF"
umoci rm --image "$layout:base"
copy_dest="$(spec copy_dest)"
# unpack + copy + repack rather than `umoci insert`: Debian's umoci 0.4.7 writes insert
# layers without the tar end-of-archive blocks (GNU tar: "Unexpected EOF in archive").
umoci unpack --image "$layout:$IMAGE_REF" "$WORK/bundle" >/dev/null
mkdir -p "$WORK/bundle/rootfs$copy_dest"
cp -p "$WORK/out"/* "$WORK/bundle/rootfs$copy_dest/"
umoci repack --image "$layout:$IMAGE_REF" \
  --history.created_by "COPY --from=build /out/ $copy_dest/" "$WORK/bundle"
rm -rf "$WORK/bundle"
mapfile -d '' CONFIG_ARGS <"$WORK/config.args"
mapfile -t CONFIG_HISTORY < <(spec config_history)
history="$(printf '%s; ' "${CONFIG_HISTORY[@]}")"
umoci config --image "$layout:$IMAGE_REF" "${CONFIG_ARGS[@]}" --history.created_by "${history%; }"
umoci gc --layout "$layout"
rm -rf "$IMAGE_LAYOUT"
mv "$layout" "$IMAGE_LAYOUT"
tar --sort=name --numeric-owner --owner=0 --group=0 -C "$IMAGE_LAYOUT" -cf "$IMAGE_ARCHIVE.tmp" .
mv "$IMAGE_ARCHIVE.tmp" "$IMAGE_ARCHIVE"

# --- 4. what was made --------------------------------------------------------------------
python3 - "$IMAGE_LAYOUT" "$IMAGE_REF" <<'PY'
import gzip, json, sys, tarfile

layout, ref = sys.argv[1:]
blob = lambda d: f"{layout}/blobs/{d.replace(':', '/')}"
index = json.load(open(f"{layout}/index.json"))
desc = next(m for m in index["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)
manifest = json.load(open(blob(desc["digest"])))
files = {}  # path -> size, applying the layers in order (whiteouts remove)
compressed = 0
for i, layer in enumerate(manifest["layers"], 1):
    raw = 0
    with gzip.open(blob(layer["digest"])) as z, tarfile.open(fileobj=z, mode="r|") as t:
        for m in t:
            name = m.name.lstrip("./")
            base = name.rsplit("/", 1)[-1]
            if base == ".wh..wh..opq":
                d = name.rsplit("/", 1)[0] + "/"
                files = {k: v for k, v in files.items() if not k.startswith(d)}
            elif base.startswith(".wh."):
                gone = name[: -len(base)] + base[4:]
                files = {k: v for k, v in files.items() if k != gone and not k.startswith(gone + "/")}
            else:
                files[name] = m.size if m.isreg() else 0
                raw += m.size if m.isreg() else 0
    compressed += layer["size"]
    print(f"  layer {i}: {layer['size'] / 1e6:6.1f} MB compressed, {raw / 1e6:6.1f} MB of files  {layer['digest'][:19]}")
print(f"  image:   {compressed / 1e6:6.1f} MB compressed, {sum(files.values()) / 1e6:6.1f} MB unpacked ({len(files)} entries)")
print(f"  manifest {desc['digest']}")
PY
say "image $IMAGE_REF: layout $IMAGE_LAYOUT, oci-archive $IMAGE_ARCHIVE ($(du -m "$IMAGE_ARCHIVE" | cut -f1) MB)"
say "base packages: $(wc -l <"$BASE/packages.txt") (list: $BASE/packages.txt)"

if ((check)); then
  rm -rf "$WORK"
  bash scripts/run-image-check.sh
fi
