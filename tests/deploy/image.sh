#!/usr/bin/env bash
# Build routewarden's image from the Containerfile and check it, without a registry:
#   1. a static binary (glibc, crt-static) built on the host;
#   2. `buildah bud` (vfs storage in a private directory, so nothing else on the
#      machine is touched);
#   3. the image's config: user 65532, entrypoint /routewarden, cmd serve, the
#      OpenShift labels with the crate's version;
#   4. its filesystem holds /routewarden only, and `/routewarden --version` runs
#      from it as UID/GID 65532 (chroot --userspec; podman run does not work here).
# Removes the container, the image and the storage it created, even on failure.
# Installs buildah (Debian) if missing. Exits non-zero on any failure and ends with
# "N passed, M failed".
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
TARGET=x86_64-unknown-linux-gnu
BINARY=target/$TARGET/release/routewarden
LABELS=(name summary description io.k8s.display-name io.k8s.description io.openshift.tags
        maintainer version)
work=$(mktemp -d)
tag=localhost/routewarden-imagetest:$$
container=""
passed=0
failed=0

bah() {
    buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"
}

cleanup() {
    set +e
    if [ -n "$container" ]; then
        bah umount "$container" >/dev/null 2>&1
        bah rm "$container" >/dev/null
    fi
    bah rmi -f "$tag" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

check() {
    local what=$1
    shift
    if "$@"; then
        echo "   PASS $what"
        passed=$((passed + 1))
    else
        echo "   FAIL $what"
        failed=$((failed + 1))
    fi
}

ensure_buildah() {
    if ! command -v buildah >/dev/null; then
        echo "installing buildah (Debian)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq buildah >/dev/null
    fi
    echo "tools: $(buildah --version), $(cargo --version)"
}

crate_version() {
    python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"])'
}

# True when the ELF file has no PT_INTERP program header (no dynamic loader).
is_static() {
    ! readelf --program-headers --wide "$1" | grep -q INTERP
}

build_binary() {
    echo "== static binary: $BINARY"
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target "$TARGET" 2>&1 | tail -2
    check "binary is static (no program interpreter)" is_static "$BINARY"
}

build_image() {
    echo "== buildah bud -f Containerfile -t $tag (vfs)"
    bah bud --quiet -f Containerfile --build-arg "VERSION=$version" -t "$tag" . >"$work/bud.log" 2>&1 ||
        { cat "$work/bud.log"; return 1; }
    echo "   built $(bah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep routewarden-imagetest)"
}

# config KEY [LABEL]: the image config's KEY (JSON), or the value of one label.
config() {
    python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))["OCIv1"]["config"]
print(c.get("Labels", {}).get(sys.argv[3], "") if sys.argv[2] == "label" else json.dumps(c.get(sys.argv[2])))' \
        "$work/inspect.json" "$@"
}

inspect_image() {
    echo "== image config"
    local user entrypoint cmd label value
    bah inspect --type image "$tag" >"$work/inspect.json"
    user=$(config User | tr -d '"')
    entrypoint=$(config Entrypoint)
    cmd=$(config Cmd)
    echo "   user=$user entrypoint=$entrypoint cmd=$cmd"
    check "runs as user 65532" test "${user%%:*}" = 65532
    check 'entrypoint ["/routewarden"]' test "$entrypoint" = '["/routewarden"]'
    check 'cmd ["serve"]' test "$cmd" = '["serve"]'
    for label in "${LABELS[@]}"; do
        value=$(config label "$label")
        check "label $label=${value:0:60}" test -n "$value"
    done
    check "label version is the crate's ($version)" test "$(config label version)" = "$version"
}

run_from_image() {
    echo "== run from the image's filesystem as 65532:65532"
    container=$(bah from "$tag")
    local root files out
    root=$(bah mount "$container")
    files=$(cd "$root" && find . -mindepth 1 -not -type d | sort | tr '\n' ' ')
    echo "   files: $files"
    check "the image holds /routewarden only" test "$files" = "./routewarden "
    out=$(chroot --userspec=65532:65532 "$root" /routewarden --version)
    echo "   /routewarden --version: $out"
    check "--version prints \"routewarden $version\"" test "$out" = "routewarden $version"
}

main() {
    cd "$repo"
    ensure_buildah
    version=$(crate_version)
    build_binary
    build_image
    inspect_image
    run_from_image
    echo
    echo "image checks: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

main "$@"
