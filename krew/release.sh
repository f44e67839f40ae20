#!/usr/bin/env bash
# Build the release archive of kubectl mesh-upgrade for one target and write
# the krew manifest that installs it.
#
#   krew/release.sh                      # host target: dist/<archive> + dist/mesh-upgrade.yaml
#   krew/release.sh --target aarch64-apple-darwin   # on a macOS arm64 runner
#   krew/release.sh --manifest-only --all --output dist/plugin.yaml
#                                        # release: every platform's archive is in dist/
#
# The release workflow (.github/workflows/release.yml) calls it twice on a
# `v*` tag: once per target with --target on a runner of that platform (the
# per-target mode), then, with every job's archives downloaded into dist/, with
# --manifest-only --all to write the plugin.yaml it publishes beside them. No
# manifest is kept in the repository: one exists only for a version whose
# archives were built, and it carries their checksums.
#
# What it makes
#   dist/kubectl-mesh_upgrade-<tag>-<os>-<arch>.tar.gz  (.zip for windows), holding
#   exactly two regular files at its root, no directory and no symlink:
#     kubectl-mesh_upgrade (kubectl-mesh_upgrade.exe on windows)   the binary
#     LICENSE                                                      krew-index wants one
#   dist/<archive>.sha256       `sha256sum` format, lowercase hex
#   the manifest (--output, default dist/mesh-upgrade.yaml), rendered from
#   krew/.krew.yaml the way krew-release-bot renders it: `{{ .TagName }}` is the
#   tag and each `{{addURIAndSha "<url>" .TagName }}` becomes `uri:` and the
#   `sha256:` of the archive of that name found in dist/. Platforms whose
#   archive is not in dist/ are left out (--all: an error instead). Unlike the
#   bot, the checksum is quoted: krew reads manifests with YAML 1.1 rules, under
#   which a hex string made only of digits (or digits, `e` and digits) would be
#   a number, and krew's sha256 field is a string.
#
# Targets (--target; default: the host). Each is built with
# `cargo build --release --locked --target <triple>` (the host without
# --target, into target/release) on a runner of that platform, which is how the
# release workflow is meant to run it; a cross build needs that target's
# standard library (rustup target add) and linker:
#   x86_64-unknown-linux-gnu    linux/amd64     .tar.gz
#   aarch64-unknown-linux-gnu   linux/arm64     .tar.gz
#   x86_64-apple-darwin         darwin/amd64    .tar.gz
#   aarch64-apple-darwin        darwin/arm64    .tar.gz
#   x86_64-pc-windows-msvc      windows/amd64   .zip (built on Windows in Git Bash, zipped
#                                               with zip, or 7z where zip is missing)
# Only the host target (linux/amd64) has been built by this repository's tests;
# they pack the archives of all five targets, from a stand-in binary for the
# other four, the way the release workflow's steps call this script.
#
# Reproducibility: the archive's entries are sorted, owned by 0:0 and dated
# SOURCE_DATE_EPOCH (default: the last commit's time), and gzip stores no name
# or time, so the same binary always gives the same sha256. The binary itself
# is not bit-for-bit reproducible across machines, which is why each release's
# sha256 values come from the archives actually uploaded (--all), never from a
# local build.
#
# Options
#   --target TRIPLE     build for TRIPLE (default: the host)
#   --dist DIR          where archives and checksums go (default: dist)
#   --output PATH       where the manifest goes (default: DIR/mesh-upgrade.yaml)
#   --tag TAG           release tag (default: v + the version in Cargo.toml)
#   --manifest-only     build nothing; render the manifest from what is in DIR
#   --all               every platform of the template must have its archive in DIR
# Environment
#   MESH_UPGRADE_BIN    package this already-built binary instead of running cargo
#                       (the tests use their debug build; a release never does)
#   SOURCE_DATE_EPOCH   timestamp of the archive entries
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
template="$repo/krew/.krew.yaml"

die() {
    echo "release: $*" >&2
    exit 1
}

target=""
dist="dist"
output=""
tag=""
manifest_only=false
require_all=false
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target="${2:?--target needs a value}"; shift 2 ;;
        --dist) dist="${2:?--dist needs a value}"; shift 2 ;;
        --output) output="${2:?--output needs a value}"; shift 2 ;;
        --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
        --manifest-only) manifest_only=true; shift ;;
        --all) require_all=true; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

# The version krew shows is the crate's, so the two cannot drift apart.
version="$(awk '
    /^\[package\]/ { in_package = 1; next }
    /^\[/ { in_package = 0 }
    in_package && $1 == "version" { gsub(/"/, "", $3); print $3; exit }
' "$repo/Cargo.toml")"
[ -n "$version" ] || die "no [package] version in Cargo.toml"
tag="${tag:-v$version}"
[ "$tag" = "v$version" ] || die "tag $tag does not match Cargo.toml's version $version (expected v$version)"

mkdir -p "$dist"
dist="$(cd "$dist" && pwd)"
output="${output:-$dist/mesh-upgrade.yaml}"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{ print tolower($1) }'
    else
        shasum -a 256 "$1" | awk '{ print tolower($1) }'
    fi
}

# ----------------------------------------------------------------- the archive

host_triple() {
    if command -v rustc >/dev/null 2>&1; then
        rustc -vV | sed -n 's/^host: //p'
        return
    fi
    # Without rustc (MESH_UPGRADE_BIN on a machine with only the binary).
    local arch os
    case "$(uname -m)" in
        x86_64 | amd64) arch="x86_64" ;;
        aarch64 | arm64) arch="aarch64" ;;
        *) die "unsupported machine $(uname -m)" ;;
    esac
    case "$(uname -s)" in
        Linux) os="unknown-linux-gnu" ;;
        Darwin) os="apple-darwin" ;;
        MINGW* | MSYS* | CYGWIN*) os="pc-windows-msvc" ;;
        *) die "unsupported system $(uname -s)" ;;
    esac
    echo "$arch-$os"
}

# krew's os/arch names and the archive format of a Rust target triple.
platform_of() {
    case "$1" in
        x86_64-unknown-linux-gnu) echo "linux amd64 tar.gz" ;;
        aarch64-unknown-linux-gnu) echo "linux arm64 tar.gz" ;;
        x86_64-apple-darwin) echo "darwin amd64 tar.gz" ;;
        aarch64-apple-darwin) echo "darwin arm64 tar.gz" ;;
        x86_64-pc-windows-msvc) echo "windows amd64 zip" ;;
        *) die "target $1 is not one of the release targets (see --help)" ;;
    esac
}

# GNU tar writes a reproducible archive; BSD tar (macOS) needs gtar for that.
gnu_tar() {
    local candidate
    for candidate in gtar tar; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" --version 2>/dev/null | grep -q "GNU tar"; then
            echo "$candidate"
            return
        fi
    done
}

build_archive() {
    local host triple os arch format exe binary name staging epoch tar_cmd archive
    host="$(host_triple)"
    triple="${target:-$host}"
    read -r os arch format <<<"$(platform_of "$triple")"
    exe=""
    [ "$os" = "windows" ] && exe=".exe"

    if [ -n "${MESH_UPGRADE_BIN:-}" ]; then
        binary="$MESH_UPGRADE_BIN"
        [ -f "$binary" ] || die "MESH_UPGRADE_BIN=$binary is not a file"
        echo "release: packaging $binary (MESH_UPGRADE_BIN) as $os/$arch" >&2
    else
        local target_dir
        command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH"
        # JSON escapes the backslashes of a Windows path (C:\\a\\target);
        # Git Bash then wants it as /c/a/target.
        target_dir="$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
            sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' | sed 's/\\\\/\\/g')"
        [ -n "$target_dir" ] || die "cargo metadata did not name the target directory"
        if command -v cygpath >/dev/null 2>&1; then
            target_dir="$(cygpath -u "$target_dir")"
        fi
        # The host target builds into target/release (shared with any other
        # release build); another target into target/<triple>/release.
        # (No arrays: macOS still ships bash 3.2, where an empty one trips set -u.)
        local target_flag="" out_dir="$target_dir/release"
        if [ "$triple" != "$host" ]; then
            target_flag="--target $triple"
            out_dir="$target_dir/$triple/release"
        fi
        echo "release: cargo build --release --locked $target_flag" >&2
        # shellcheck disable=SC2086 # target_flag is empty or two words
        (cd "$repo" && cargo build --release --locked $target_flag \
            -p kubectl-mesh-upgrade --bin kubectl-mesh_upgrade)
        binary="$out_dir/kubectl-mesh_upgrade$exe"
    fi

    # The binary must say the version the manifest will claim. Only a binary
    # this machine can run is asked, with no kubeconfig so no cluster is contacted.
    staging="$(mktemp -d)"
    trap 'rm -rf "$staging"' EXIT
    if [ "$triple" = "$host" ]; then
        local said
        mkdir "$staging/home"
        said="$(env -u KUBECONFIG HOME="$staging/home" "$binary" version 2>/dev/null | head -n 1)"
        rm -rf "$staging/home"
        [ "$said" = "kubectl mesh-upgrade $tag" ] ||
            die "$binary says \"$said\", expected \"kubectl mesh-upgrade $tag\""
    fi

    name="kubectl-mesh_upgrade-$tag-$os-$arch.$format"
    archive="$dist/$name"
    # Copies, never links: krew-index rejects archives with symlinks.
    cp "$binary" "$staging/kubectl-mesh_upgrade$exe"
    cp "$repo/LICENSE" "$staging/LICENSE"
    chmod 0755 "$staging/kubectl-mesh_upgrade$exe"
    chmod 0644 "$staging/LICENSE"
    epoch="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}"
    rm -f "$archive"
    if [ "$format" = "zip" ]; then
        touch -d "@$epoch" "$staging"/* 2>/dev/null || true
        if command -v zip >/dev/null 2>&1; then
            (cd "$staging" && zip -X -q "$archive" "kubectl-mesh_upgrade$exe" LICENSE)
        elif command -v 7z >/dev/null 2>&1; then
            # Windows runners have 7-Zip but no zip in Git Bash.
            (cd "$staging" && 7z a -tzip -bso0 -bsp0 "$archive" "kubectl-mesh_upgrade$exe" LICENSE)
        else
            die "neither zip nor 7z is on PATH"
        fi
    else
        tar_cmd="$(gnu_tar)"
        if [ -n "$tar_cmd" ]; then
            "$tar_cmd" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
                --format=gnu -C "$staging" -cf - "kubectl-mesh_upgrade$exe" LICENSE |
                gzip -n >"$archive"
        else
            echo "release: GNU tar not found (install gtar); the archive is valid but not reproducible" >&2
            tar -C "$staging" -cf - "kubectl-mesh_upgrade$exe" LICENSE | gzip -n >"$archive"
        fi
    fi
    rm -rf "$staging"
    trap - EXIT
    (cd "$dist" && echo "$(sha256_of "$name")  $name" >"$name.sha256")
    echo "release: wrote $archive" >&2
    echo "release: sha256 $(sha256_of "$archive")" >&2
}

# ----------------------------------------------------------------- the manifest

render_manifest() {
    local checksums header tmp
    checksums="$(mktemp)"
    tmp="$(mktemp)"
    # name<TAB>sha256 for every archive in dist/.
    for file in "$dist"/kubectl-mesh_upgrade-"$tag"-*; do
        case "$file" in
            *.tar.gz | *.zip) printf '%s\t%s\n' "$(basename "$file")" "$(sha256_of "$file")" >>"$checksums" ;;
        esac
    done

    header="# kubectl mesh-upgrade $tag for krew.
# Generated by krew/release.sh from krew/.krew.yaml; do not edit by hand.
# Each sha256 is that of the archive of the same name that was in dist/ when
# this file was written."

    awk -v tag="$tag" -v checksums="$checksums" -v require_all="$require_all" '
        BEGIN {
            while ((getline line < checksums) > 0) {
                split(line, parts, "\t")
                sha[parts[1]] = parts[2]
            }
        }
        function flush() {
            if (item != "" && keep) printf "%s", item
            item = ""
        }
        {
            line = $0
            gsub(/\{\{ *\.TagName *\}\}/, tag, line)
            if (line ~ /^ *\{\{ *addURIAndSha "[^"]*" +\.TagName *\}\} *$/) {
                indent = line
                sub(/[^ ].*$/, "", indent)
                uri = line
                sub(/^[^"]*"/, "", uri)
                sub(/".*$/, "", uri)
                name = uri
                sub(/^.*\//, "", name)
                checksum = ""
                if (name in sha) {
                    checksum = sha[name]
                } else if (require_all == "true") {
                    printf "release: %s is not in dist/ (--all needs every platform)\n", name > "/dev/stderr"
                    failed = 1
                } else {
                    keep = 0
                }
                found++
                line = indent "uri: " uri "\n" indent "sha256: \"" checksum "\""
            }
            if (in_platforms && line ~ /^  - /) {
                flush()
                keep = 1
            } else if (in_platforms && line !~ /^   / && line !~ /^  - /) {
                flush()
                in_platforms = 0
            }
            if (in_platforms) {
                item = item line "\n"
                next
            }
            print line
            if (line ~ /^  platforms:/) {
                in_platforms = 1
            }
        }
        END {
            flush()
            if (found == 0) {
                print "release: the template has no addURIAndSha line" > "/dev/stderr"
                exit 1
            }
            if (failed) exit 1
        }
    ' "$template" >"$tmp" || {
        rm -f "$checksums" "$tmp"
        die "could not render $template"
    }
    rm -f "$checksums"
    if ! grep -q '^    uri: ' "$tmp"; then
        rm -f "$tmp"
        die "no archive for $tag in $dist: nothing to put in the manifest"
    fi
    mkdir -p "$(dirname "$output")"
    { echo "$header"; cat "$tmp"; } >"$output"
    rm -f "$tmp"
    echo "release: wrote $output" >&2
}

if ! $manifest_only; then
    build_archive
fi
render_manifest
