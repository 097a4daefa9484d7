# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Shared by scripts/build-image.sh and scripts/run-image-check.sh (sourced, not run).
# Where the image goes, its tag, and installing the Debian packages a step needs.

IMAGE_CACHE="${GUESTLOOP_IMAGE_CACHE:-$HOME/.cache/guestloop/image}"
# The OCI image layout (a directory) and the same layout as one tar (an oci-archive).
IMAGE_LAYOUT="$IMAGE_CACHE/oci"
# The tag is the chart's appVersion, so the chart's default image is the one built here.
IMAGE_VERSION="$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}[[:space:]]*$/\1/p' \
  helm/guestloop/Chart.yaml)"
IMAGE_REF="guestloop:$IMAGE_VERSION"
IMAGE_ARCHIVE="$IMAGE_CACHE/guestloop-$IMAGE_VERSION.oci.tar"

say() { printf '[%s %5ss] %s\n' "${0##*/}" "$SECONDS" "$*" >&2; }
die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

[[ -n "$IMAGE_VERSION" ]] || die "no appVersion in helm/guestloop/Chart.yaml"

# need_pkgs PKG...: installs those of the Debian packages that are missing
# (apt-get install --no-install-recommends; apt-get update first).
need_pkgs() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  [[ $EUID -eq 0 ]] || die "needs the Debian packages ${missing[*]} (run as root to install them)"
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
