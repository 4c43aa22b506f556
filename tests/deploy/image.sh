#!/usr/bin/env bash
# Build routewarden's image from the Containerfile and check it, without a registry:
#   1. a static binary (glibc, crt-static) built on the host for the Rust target
#      given (default x86_64-unknown-linux-gnu; the target and its linker must be
#      installed for any other);
#   2. `buildah bud --platform linux/<arch> --build-arg TARGET=<target>` (vfs
#      storage in a private directory, so nothing else on the machine is touched);
#   3. the image's config: the target's architecture, user 65534, entrypoint
#      /routewarden, cmd serve, the OpenShift labels with the crate's version;
#   4. its filesystem holds /routewarden only, the very binary built for the
#      target (the Containerfile follows TARGET), and `/routewarden --version`
#      runs from it as UID/GID 65534 (chroot --userspec; podman run does not work
#      here) when the machine can run that architecture.
# Removes the container, the image and the storage it created, even on failure.
# Installs buildah (Debian) if missing. Exits non-zero on any failure and ends with
# "N passed, M failed".
#
# usage: image.sh [RUST_TARGET]     e.g. image.sh aarch64-unknown-linux-gnu
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
TARGET=${1:-x86_64-unknown-linux-gnu}
BINARY=target/$TARGET/release/routewarden
LABELS=(name summary description io.k8s.display-name io.k8s.description io.openshift.tags
        maintainer version)
work=$(mktemp -d)
tag=localhost/routewarden-imagetest:$$
standin_tag=localhost/routewarden-imagetest-standin:$$
container=""
standin=""
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
    if [ -n "$standin" ]; then
        bah umount "$standin" >/dev/null 2>&1
        bah rm "$standin" >/dev/null
    fi
    bah rmi -f "$tag" "$standin_tag" >/dev/null 2>&1
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

# oci_arch TARGET: the image architecture (GOARCH names) of a Rust target triple.
oci_arch() {
    case ${1%%-*} in
        x86_64) echo amd64 ;;
        aarch64) echo arm64 ;;
        powerpc64le) echo ppc64le ;;
        s390x) echo s390x ;;
        *) echo "image.sh: no image architecture known for the Rust target $1" >&2; return 1 ;;
    esac
}

# elf_machine FILE: the ELF header's machine, in the same names.
elf_machine() {
    case $(readelf --file-header "$1" | sed -n 's/^ *Machine: *//p') in
        *X86-64*) echo amd64 ;;
        AArch64) echo arm64 ;;
        PowerPC64*) echo ppc64le ;;
        *S/390*) echo s390x ;;
        *) echo unknown ;;
    esac
}

build_binary() {
    echo "== static binary for $TARGET: $BINARY"
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target "$TARGET" 2>&1 | tail -2
    check "binary is static (no program interpreter)" is_static "$BINARY"
    check "binary is built for $arch ($(elf_machine "$BINARY"))" test "$(elf_machine "$BINARY")" = "$arch"
}

build_image() {
    echo "== buildah bud -f Containerfile --platform linux/$arch --build-arg TARGET=$TARGET -t $tag (vfs)"
    bah bud --quiet -f Containerfile --platform "linux/$arch" --build-arg "TARGET=$TARGET" \
        --build-arg "VERSION=$version" -t "$tag" . >"$work/bud.log" 2>&1 ||
        { cat "$work/bud.log"; return 1; }
    echo "   built $(bah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -F "$tag ")"
}

# The Containerfile copies target/<TARGET>/release/routewarden for the TARGET it
# is given: a build context holding only a stand-in file for another target.
check_target_argument() {
    local other=riscv64gc-unknown-linux-gnu ctx=$work/standin-context root
    echo "== the Containerfile follows --build-arg TARGET (a stand-in for $other)"
    mkdir -p "$ctx/target/$other/release"
    echo "stand-in binary for $other" >"$ctx/target/$other/release/routewarden"
    if ! bah bud --quiet -f "$repo/Containerfile" --build-arg "TARGET=$other" -t "$standin_tag" \
        "$ctx" >"$work/bud-standin.log" 2>&1; then
        sed 's/^/   /' "$work/bud-standin.log"
        check "TARGET=$other builds from target/$other/release/routewarden" false
        return
    fi
    standin=$(bah from "$standin_tag")
    root=$(bah mount "$standin")
    check "TARGET=$other copies target/$other/release/routewarden" \
        cmp -s "$root/routewarden" "$ctx/target/$other/release/routewarden"
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
    check "architecture $arch, os linux" test "$(image_platform)" = "linux/$arch"
    check "runs as user 65534" test "${user%%:*}" = 65534
    check 'entrypoint ["/routewarden"]' test "$entrypoint" = '["/routewarden"]'
    check 'cmd ["serve"]' test "$cmd" = '["serve"]'
    for label in "${LABELS[@]}"; do
        value=$(config label "$label")
        check "label $label=${value:0:60}" test -n "$value"
    done
    check "label version is the crate's ($version)" test "$(config label version)" = "$version"
}

# os/architecture of the image (the OCI image config's fields).
image_platform() {
    python3 -c 'import json, sys
o = json.load(open(sys.argv[1]))["OCIv1"]
print(o.get("os", "") + "/" + o.get("architecture", ""))' "$work/inspect.json"
}

run_from_image() {
    echo "== run from the image's filesystem as 65534:65534"
    container=$(bah from "$tag")
    local root files out
    root=$(bah mount "$container")
    files=$(cd "$root" && find . -mindepth 1 -not -type d | sort | tr '\n' ' ')
    echo "   files: $files"
    check "the image holds /routewarden only" test "$files" = "./routewarden "
    check "/routewarden is the binary built for $TARGET" cmp -s "$root/routewarden" "$BINARY"
    if [ "$arch" != "$(oci_arch "$(uname -m)-host")" ]; then
        echo "   (not run: this machine is $(uname -m), the image $arch)"
        return
    fi
    out=$(chroot --userspec=65534:65534 "$root" /routewarden --version)
    echo "   /routewarden --version: $out"
    check "--version prints \"routewarden $version\"" test "$out" = "routewarden $version"
}

main() {
    cd "$repo"
    arch=$(oci_arch "$TARGET")
    ensure_buildah
    version=$(crate_version)
    check_target_argument
    build_binary
    build_image
    inspect_image
    run_from_image
    echo
    echo "image checks: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

main "$@"
