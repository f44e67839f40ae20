//! Records the git commit the plugin is built from, for `kubectl mesh-upgrade
//! version`.
//!
//! ```text
//!  git rev-parse --short HEAD ──► MESH_UPGRADE_GIT_COMMIT ──► option_env! in commands/version.rs
//!   (only when git runs and this package's directory is the top of its work tree)
//! ```
//!
//! Built from a crate tarball, an unpacked archive or a tree git does not know,
//! or with no `git` on PATH, it records nothing and the binary prints no
//! commit: a missing commit never fails a build. A directory that merely sits
//! inside some other repository (a vendored copy) is not that repository's
//! commit either, hence the work-tree check.
//!
//! Cargo reruns the script when HEAD moves: it watches HEAD, the branch's ref
//! file (or, while the branch exists only in `packed-refs`, that file and the
//! directory its loose ref will be written to). Only paths that exist are
//! named, since Cargo would rerun the script on every build for a missing one.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) else {
        return;
    };
    if let Some(commit) = commit_of(&dir) {
        println!("cargo:rustc-env=MESH_UPGRADE_GIT_COMMIT={commit}");
        for path in watched(&dir) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// `git` in `dir`: its trimmed stdout when it ran and succeeded.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The short commit of HEAD, when `dir` is the top of a git work tree.
fn commit_of(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same(Path::new(&top), dir) {
        return None;
    }
    let commit = git(dir, &["rev-parse", "--short", "HEAD"])?;
    commit
        .bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then_some(commit)
}

/// The files whose change means HEAD may point elsewhere.
fn watched(dir: &Path) -> Vec<PathBuf> {
    let git_path = |name: &str| git(dir, &["rev-parse", "--git-path", name]).map(|p| dir.join(p));
    let mut paths: Vec<PathBuf> = git_path("HEAD").into_iter().collect();
    // A detached HEAD names its commit itself: HEAD alone is enough.
    let branch = git(dir, &["symbolic-ref", "-q", "HEAD"]);
    match branch.as_deref().and_then(git_path) {
        Some(loose) if loose.is_file() => paths.push(loose),
        Some(loose) => {
            paths.extend(git_path("packed-refs"));
            paths.extend(loose.parent().map(Path::to_path_buf));
        }
        None => {}
    }
    paths.retain(|p| p.exists());
    paths
}
