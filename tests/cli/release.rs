//! The release as the project's home (GitHub) runs it, checked here, where it
//! cannot run: the CI and release workflows, and the commit `version` names.
//!
//! ```text
//!  .github/workflows/ci.yml ─────► Rust, kubectl at /usr/bin/kubectl, then .ci/run
//!  .github/workflows/release.yml
//!    build ──► its krew/release.sh step, run once per matrix target in a scratch
//!    │         checkout (MESH_UPGRADE_BIN in place of cargo) ──► what upload-artifact takes
//!    release ─► those files "downloaded" into dist/, every run step executed with a
//!    │         stand-in `gh` ──► plugin.yaml read as krew reads it; gh got every asset
//!    krew-index ─► krew-release-bot with krew/.krew.yaml, after the release
//!  build.rs ──► compiled and run in scratch directories (a git checkout, a packed
//!               branch, a detached HEAD, no git, a vendored copy, git not on PATH)
//! ```
//!
//! The workflows' shell steps are executed, not pattern-matched: only the
//! `${{ … }}` expressions are filled in (an unknown one fails the test) and
//! the actions (`uses:`) are simulated by what they are documented to do.
//! What stays untested: the runners themselves, cross-compiling, the upload,
//! and the bot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::packaging::{
    BIN, expected_platforms, host_platform, manifest_problems, platforms, read, repo, sha256_of,
    small_copy_of_the_plugin, tag,
};
use super::{Env, KUBECTL, Run};

/// The release targets: Rust triple, krew's os and arch.
const TARGETS: &[(&str, &str, &str)] = &[
    ("x86_64-unknown-linux-gnu", "linux", "amd64"),
    ("aarch64-unknown-linux-gnu", "linux", "arm64"),
    ("x86_64-apple-darwin", "darwin", "amd64"),
    ("aarch64-apple-darwin", "darwin", "arm64"),
    ("x86_64-pc-windows-msvc", "windows", "amd64"),
];

fn workflow(name: &str) -> Value {
    let relative = format!(".github/workflows/{name}");
    serde_yaml::from_str(&read(&relative)).unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn steps(job: &Value) -> &[Value] {
    job["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `needs:` is one job or a list of them.
fn needs(job: &Value) -> Vec<&str> {
    match &job["needs"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().map(text).collect(),
        _ => Vec::new(),
    }
}

fn uses<'a>(job: &'a Value, action: &str) -> Vec<&'a Value> {
    steps(job)
        .iter()
        .filter(|s| text(&s["uses"]).starts_with(&format!("{action}@")))
        .collect()
}

/// `text` with each `${{ expression }}` replaced by its value in `vars`.
fn expand(text: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .unwrap_or_else(|| panic!("an unclosed expression in {text:?}"))
            + start;
        let expression = rest[start + 3..end].trim();
        let value = vars.get(expression).unwrap_or_else(|| {
            panic!("the test does not know ${{{{ {expression} }}}} in {text:?}")
        });
        out.push_str(value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A `*`-only glob, as actions match file and artifact names.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == name;
    }
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// The files under `dir` that an action's `path:` glob (`dist/name-*`) takes.
fn files_matching(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let (folder, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join(folder))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && glob_matches(name, &file_name(p)))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What a fresh checkout holds that the release steps read: Cargo.toml (the
/// version), LICENSE and krew/.
fn scratch_checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a scratch checkout");
    std::fs::create_dir(dir.path().join("krew")).unwrap();
    for file in [
        "Cargo.toml",
        "LICENSE",
        "krew/release.sh",
        "krew/.krew.yaml",
    ] {
        // fs::copy keeps the executable bit.
        std::fs::copy(repo().join(file), dir.path().join(file))
            .unwrap_or_else(|e| panic!("copying {file}: {e}"));
    }
    dir
}

/// A `run:` step as the runner runs it (`bash --noprofile --norc -eo
/// pipefail`), in `dir`, with the step's `env:` and `extra` variables.
fn run_step(
    dir: &Path,
    step: &Value,
    vars: &BTreeMap<&str, String>,
    extra: &[(&str, String)],
) -> Run {
    let script = expand(text(&step["run"]), vars);
    let mut env = Env::new();
    if let Some(variables) = step["env"].as_object() {
        for (key, value) in variables {
            env = env.var(key, &expand(text(value), vars));
        }
    }
    for (key, value) in extra {
        env = env.var(key, value);
    }
    let output = env
        .command(
            "bash",
            &["--noprofile", "--norc", "-eo", "pipefail", "-c", &script],
        )
        .current_dir(dir)
        .output()
        .expect("bash runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Whether a runner label builds `target` natively, or (macOS) with Apple's
/// toolchain, which links both architectures.
fn runner_builds(runner: &str, target: &str) -> bool {
    match target {
        "x86_64-unknown-linux-gnu" => runner.starts_with("ubuntu-") && !runner.ends_with("-arm"),
        "aarch64-unknown-linux-gnu" => runner.starts_with("ubuntu-") && runner.ends_with("-arm"),
        "x86_64-apple-darwin" | "aarch64-apple-darwin" => runner.starts_with("macos-"),
        "x86_64-pc-windows-msvc" => runner.starts_with("windows-") && !runner.contains("arm"),
        _ => false,
    }
}

// ---------------------------------------------------------------- ci.yml

#[test]
fn the_ci_workflow_installs_rust_and_kubectl_then_runs_the_ci_script() {
    let ci = workflow("ci.yml");
    for trigger in ["push", "pull_request", "workflow_call"] {
        assert!(
            ci["on"].get(trigger).is_some(),
            "ci.yml runs on {trigger}: {:#}",
            ci["on"]
        );
    }
    let jobs = ci["jobs"].as_object().expect("jobs");
    assert_eq!(jobs.len(), 1, "one gate job: {jobs:#?}");
    let job = jobs.values().next().unwrap();
    assert!(text(&job["runs-on"]).starts_with("ubuntu-"), "{job:#}");

    let position = |what: &str, found: &dyn Fn(&Value) -> bool| {
        steps(job)
            .iter()
            .position(found)
            .unwrap_or_else(|| panic!("ci.yml has no step that {what}: {job:#}"))
    };
    let checkout = position("checks out", &|s| {
        text(&s["uses"]).starts_with("actions/checkout@")
    });
    let rust = position("installs Rust with rustfmt and clippy", &|s| {
        let components = text(&s["with"]["components"]);
        text(&s["uses"]).starts_with("dtolnay/rust-toolchain@")
            && components.contains("rustfmt")
            && components.contains("clippy")
    });
    let kubectl = position("installs the kubectl the tests run", &|s| {
        let run = text(&s["run"]);
        run.contains(&format!(
            "install -m 0755 \"$RUNNER_TEMP/kubectl\" {KUBECTL}"
        )) && run.contains("sha256sum --check")
    });
    let gate = position("runs .ci/run", &|s| text(&s["run"]).trim() == ".ci/run");
    assert!(checkout < rust && rust < gate && kubectl < gate, "{job:#}");
    assert_eq!(gate, steps(job).len() - 1, ".ci/run is the last step");
    assert!(
        text(&job["env"]["KUBECTL_VERSION"]).starts_with("v1."),
        "kubectl's version is pinned: {job:#}"
    );

    // The script it runs is the gate the README gives.
    let script = read(".ci/run");
    for command in [
        "cargo fmt --all -- --check",
        "cargo clippy --workspace --all-targets --locked -- -D warnings",
        "cargo test --workspace --locked",
    ] {
        assert!(
            script.lines().any(|l| l.trim() == command),
            ".ci/run runs {command}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(repo().join(".ci/run"))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, ".ci/run is executable");
    }
}

// ---------------------------------------------------------------- release.yml

#[test]
fn the_release_workflow_runs_on_a_version_tag_after_the_ci_gate() {
    let release = workflow("release.yml");
    assert_eq!(
        release["on"],
        serde_json::json!({"push": {"tags": ["v*"]}}),
        "only a v* tag releases"
    );
    assert_eq!(release["defaults"]["run"]["shell"], "bash", "Windows too");
    let jobs = &release["jobs"];
    assert_eq!(jobs["ci"]["uses"], "./.github/workflows/ci.yml");
    assert_eq!(needs(&jobs["build"]), ["ci"]);
    assert_eq!(needs(&jobs["release"]), ["build"]);
    assert_eq!(needs(&jobs["krew-index"]), ["release"]);
    assert_eq!(release["permissions"]["contents"], "read");
    assert_eq!(jobs["release"]["permissions"]["contents"], "write");

    // krew-release-bot renders krew/.krew.yaml for the tag, from the checkout.
    let bot_job = &jobs["krew-index"];
    let bot = uses(bot_job, "rajatjindal/krew-release-bot");
    assert_eq!(bot.len(), 1, "{bot_job:#}");
    assert_eq!(bot[0]["with"]["krew_template_file"], "krew/.krew.yaml");
    assert!(repo().join("krew/.krew.yaml").is_file());
    assert!(!uses(bot_job, "actions/checkout").is_empty(), "{bot_job:#}");
    assert!(
        text(&bot_job["if"]).contains("!contains(github.ref_name, '-')"),
        "pre-releases stay out of krew-index: {bot_job:#}"
    );
}

#[test]
fn the_build_matrix_is_the_five_targets_each_on_a_runner_that_builds_it() {
    let release = workflow("release.yml");
    let build = &release["jobs"]["build"];
    assert_eq!(build["runs-on"], "${{ matrix.runner }}");
    let matrix: Vec<(&str, &str)> = build["strategy"]["matrix"]["include"]
        .as_array()
        .expect("a matrix of include entries")
        .iter()
        .map(|entry| (text(&entry["target"]), text(&entry["runner"])))
        .collect();
    let targets: BTreeSet<&str> = matrix.iter().map(|(target, _)| *target).collect();
    let expected: BTreeSet<&str> = TARGETS.iter().map(|(target, _, _)| *target).collect();
    assert_eq!(targets, expected);
    assert_eq!(matrix.len(), TARGETS.len(), "each target once: {matrix:?}");
    for (target, runner) in &matrix {
        assert!(
            runner_builds(runner, target),
            "{runner} does not build {target}"
        );
    }
    // Checked out with LF on Windows too: release.sh reads Cargo.toml and the
    // template with bash and awk.
    let autocrlf = steps(build)
        .iter()
        .position(|s| text(&s["run"]).trim() == "git config --global core.autocrlf false");
    let checkout = steps(build)
        .iter()
        .position(|s| text(&s["uses"]).starts_with("actions/checkout@"));
    assert!(
        autocrlf.is_some() && autocrlf < checkout,
        "core.autocrlf is off before the checkout: {build:#}"
    );
    // The toolchain has each target's standard library (the cross build of
    // darwin/amd64 needs it).
    let rust = uses(build, "dtolnay/rust-toolchain");
    assert_eq!(rust.len(), 1, "{build:#}");
    assert_eq!(rust[0]["with"]["targets"], "${{ matrix.target }}");
}

/// A runnable stand-in for the plugin on targets this machine cannot run:
/// release.sh asks only the host's binary for its version.
fn stand_in_binary(dir: &Path) -> PathBuf {
    let path = dir.join("not-a-plugin");
    std::fs::write(&path, "a binary for another platform\n").unwrap();
    path
}

/// The build job's krew/release.sh step.
fn pack_step(release: &Value) -> &Value {
    let packs: Vec<&Value> = steps(&release["jobs"]["build"])
        .iter()
        .filter(|s| text(&s["run"]).contains("krew/release.sh"))
        .collect();
    assert_eq!(packs.len(), 1, "one step packs the archive: {packs:#?}");
    packs[0]
}

fn build_vars(target: &str, runner: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("matrix.target", target.to_string()),
        ("matrix.runner", runner.to_string()),
        ("github.ref_name", tag()),
    ])
}

#[test]
fn the_release_workflows_commands_build_upload_and_publish_every_archive_and_plugin_yaml() {
    let release = workflow("release.yml");
    let build = &release["jobs"]["build"];
    let pack = pack_step(&release);
    let upload = uses(build, "actions/upload-artifact");
    assert_eq!(upload.len(), 1, "{build:#}");
    let (upload_name, upload_path) = (
        text(&upload[0]["with"]["name"]),
        text(&upload[0]["with"]["path"]),
    );
    assert!(
        steps(build).iter().position(|s| std::ptr::eq(s, pack))
            < steps(build).iter().position(|s| std::ptr::eq(s, upload[0])),
        "the archive is packed before it is uploaded"
    );
    let work = tempfile::tempdir().unwrap();
    let plugin = small_copy_of_the_plugin(work.path());
    let stand_in = stand_in_binary(work.path());
    let (host_os, host_arch) = host_platform();

    // Each matrix entry on its own runner: a fresh checkout, the step's
    // command, then what upload-artifact takes from it.
    let mut artifacts: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut checkouts = Vec::new();
    for (target, os, arch) in TARGETS {
        let vars = build_vars(target, "runner");
        let checkout = scratch_checkout();
        let binary = if (*os, *arch) == (host_os, host_arch) {
            &plugin
        } else {
            &stand_in
        };
        let run = run_step(
            checkout.path(),
            pack,
            &vars,
            &[
                ("GITHUB_REF_NAME", tag()),
                ("MESH_UPGRADE_BIN", binary.display().to_string()),
                ("SOURCE_DATE_EPOCH", "1767225600".to_string()),
            ],
        );
        assert_eq!(run.code, 0, "packing {target}: {run:#?}");
        let files = files_matching(checkout.path(), &expand(upload_path, &vars));
        let extension = if *os == "windows" { "zip" } else { "tar.gz" };
        let archive = format!("{BIN}-{}-{os}-{arch}.{extension}", tag());
        assert_eq!(
            files.iter().map(|f| file_name(f)).collect::<Vec<_>>(),
            [archive.clone(), format!("{archive}.sha256")],
            "{target}: what the upload takes"
        );
        artifacts.insert(expand(upload_name, &vars), files);
        checkouts.push(checkout);
    }
    assert_eq!(artifacts.len(), TARGETS.len(), "one artifact per target");

    // The Windows archive holds the .exe krew's manifest names.
    let zip = &artifacts[&expand(upload_name, &build_vars("x86_64-pc-windows-msvc", "runner"))][0];
    let listing = Env::new().run("unzip", &["-Z1", zip.to_str().unwrap()]);
    assert_eq!(listing.code, 0, "{listing:#?}");
    let mut entries: Vec<&str> = listing.stdout.lines().collect();
    entries.sort();
    assert_eq!(entries, ["LICENSE", "kubectl-mesh_upgrade.exe"]);

    // download-artifact: every artifact the pattern names, merged into one
    // folder.
    let job = &release["jobs"]["release"];
    let download = uses(job, "actions/download-artifact");
    assert_eq!(download.len(), 1, "{job:#}");
    let with = &download[0]["with"];
    assert_eq!(with["merge-multiple"], true);
    let checkout = scratch_checkout();
    let dist = checkout.path().join(text(&with["path"]));
    std::fs::create_dir_all(&dist).unwrap();
    for (name, files) in &artifacts {
        assert!(
            glob_matches(text(&with["pattern"]), name),
            "{name} is downloaded"
        );
        for file in files {
            std::fs::copy(file, dist.join(file_name(file))).unwrap();
        }
    }

    // Every shell step of the job, in order, with `gh` recording its arguments.
    let bin = tempfile::tempdir().unwrap();
    let gh_args = bin.path().join("gh-arguments");
    let gh = bin.path().join("gh");
    std::fs::write(
        &gh,
        format!(
            "#!/bin/sh\n[ -n \"$GH_TOKEN\" ] || exit 4\nprintf '%s\\n' \"$@\" > '{}'\n",
            gh_args.display()
        ),
    )
    .unwrap();
    super::make_executable(&gh);
    let vars = BTreeMap::from([
        ("github.ref_name", tag()),
        ("github.token", "a-token".to_string()),
    ]);
    let path = super::path_with(bin.path());
    for step in steps(job).iter().filter(|s| s.get("run").is_some()) {
        let run = run_step(
            checkout.path(),
            step,
            &vars,
            &[("GITHUB_REF_NAME", tag()), ("PATH", path.clone())],
        );
        assert_eq!(run.code, 0, "{}: {run:#?}", text(&step["name"]));
    }

    // The plugin.yaml it wrote is what krew reads, with the archives' checksums.
    let manifest_path = dist.join("plugin.yaml");
    let (manifest, problems) = manifest_problems(&manifest_path, &tag());
    assert!(problems.is_empty(), "{problems:#?}");
    let listed = platforms(&manifest);
    let uris: Vec<&str> = listed.iter().map(|p| p.uri.as_str()).collect();
    let expected: Vec<String> = expected_platforms(&tag())
        .into_iter()
        .map(|p| p.2)
        .collect();
    assert_eq!(uris, expected);
    for platform in &listed {
        let name = platform.uri.rsplit('/').next().unwrap();
        assert_eq!(platform.sha256, sha256_of(&dist.join(name)), "{name}");
    }

    // gh published the tag's release with every archive, checksum and the manifest.
    let arguments = std::fs::read_to_string(&gh_args).expect("gh ran");
    let arguments: Vec<&str> = arguments.lines().collect();
    assert_eq!(
        arguments[..3],
        ["release", "create", tag().as_str()],
        "{arguments:#?}"
    );
    let assets: BTreeSet<String> = arguments
        .iter()
        .filter(|a| a.starts_with("dist/"))
        .map(|a| a.to_string())
        .collect();
    let mut expected: BTreeSet<String> = artifacts
        .values()
        .flatten()
        .map(|f| format!("dist/{}", file_name(f)))
        .collect();
    expected.insert("dist/plugin.yaml".to_string());
    assert_eq!(assets, expected);
    assert!(
        !arguments.contains(&"--prerelease"),
        "{} is a release: {arguments:#?}",
        tag()
    );
}

#[test]
fn the_build_step_refuses_a_tag_that_is_not_the_crates_version() {
    let release = workflow("release.yml");
    let (target, _, _) = TARGETS[0];
    let checkout = scratch_checkout();
    let binary = stand_in_binary(checkout.path());
    let run = run_step(
        checkout.path(),
        pack_step(&release),
        &build_vars(target, "runner"),
        &[
            ("GITHUB_REF_NAME", "v9.9.9".to_string()),
            ("MESH_UPGRADE_BIN", binary.display().to_string()),
        ],
    );
    assert_eq!(run.code, 1, "{run:#?}");
    assert!(
        run.stderr.contains(&format!(
            "tag v9.9.9 does not match Cargo.toml's version {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{run:#?}"
    );
    assert!(
        !checkout
            .path()
            .join("dist")
            .join(format!("{BIN}-v9.9.9-linux-amd64.tar.gz"))
            .exists(),
        "nothing was packed"
    );
}

#[test]
fn globs_match_file_and_artifact_names_as_the_actions_do() {
    assert!(glob_matches(
        "kubectl-mesh_upgrade-*",
        "kubectl-mesh_upgrade-v1.tar.gz"
    ));
    assert!(glob_matches("archive-*", "archive-x86_64-apple-darwin"));
    assert!(glob_matches("a*b*c", "a-b-c"));
    assert!(!glob_matches("a*b*c", "a-c-b"));
    assert!(!glob_matches("archive-*", "mesh-upgrade.yaml"));
    assert!(!glob_matches("ab*ba", "aba"));
    assert!(glob_matches("plugin.yaml", "plugin.yaml"));
}

// ---------------------------------------------------------------- build.rs

/// The directory holding `git`, from the environment cargo test runs in.
fn git_dir() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| dir.join("git").is_file())
        .expect("these tests need git on PATH")
}

/// `git` with no user or system configuration of this machine.
fn git(dir: &Path, args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(git_dir().join("git"))
        .args([
            "-c",
            "user.name=Release Test",
            "-c",
            "user.email=release@example.com",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert_eq!(run.code, 0, "git {args:?}: {run:#?}");
    run
}

/// build.rs compiled on its own, as cargo compiles it.
fn compiled_build_script(dir: &Path) -> PathBuf {
    let rustc = std::env::var_os("CARGO")
        .map(|cargo| PathBuf::from(cargo).with_file_name("rustc"))
        .filter(|rustc| rustc.is_file())
        .unwrap_or_else(|| PathBuf::from("rustc"));
    let script = dir.join("build-script");
    let output = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "bin",
            "--crate-name",
            "build_script_build",
        ])
        .arg(repo().join("build.rs"))
        .arg("-o")
        .arg(&script)
        .output()
        .expect("rustc runs");
    assert!(
        output.status.success(),
        "build.rs does not compile:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    script
}

/// The script's directives for a package in `package`, with `path` as PATH.
fn directives(script: &Path, package: &Path, path: &str) -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(script)
        .env_clear()
        .env("CARGO_MANIFEST_DIR", package)
        .env("HOME", home.path())
        .env("PATH", path)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("the build script runs");
    assert!(output.status.success(), "{output:#?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn commit_directive(directives: &[String]) -> Option<&str> {
    directives
        .iter()
        .find_map(|d| d.strip_prefix("cargo:rustc-env=MESH_UPGRADE_GIT_COMMIT="))
}

fn watched(directives: &[String]) -> Vec<PathBuf> {
    directives
        .iter()
        .filter_map(|d| d.strip_prefix("cargo:rerun-if-changed="))
        .filter(|p| *p != "build.rs")
        .map(PathBuf::from)
        .collect()
}

#[test]
fn the_build_script_records_head_of_its_own_checkout_and_nothing_elsewhere() {
    let work = tempfile::tempdir().unwrap();
    let script = compiled_build_script(work.path());
    let path = format!("{}:/usr/bin:/bin", git_dir().display());

    // A checkout: HEAD's short commit, and reruns when the branch moves.
    let checkout = work.path().join("checkout");
    std::fs::create_dir(&checkout).unwrap();
    std::fs::write(checkout.join("Cargo.toml"), "[package]\n").unwrap();
    git(&checkout, &["init", "-q"]);
    git(&checkout, &["add", "Cargo.toml"]);
    git(&checkout, &["commit", "-q", "-m", "first"]);
    let head = git(&checkout, &["rev-parse", "--short", "HEAD"])
        .stdout
        .trim()
        .to_string();
    let said = directives(&script, &checkout, &path);
    assert_eq!(said[0], "cargo:rerun-if-changed=build.rs", "{said:#?}");
    assert_eq!(commit_directive(&said), Some(head.as_str()), "{said:#?}");
    let files = watched(&said);
    assert!(files.iter().all(|f| f.exists()), "{files:#?}");
    assert!(files.iter().any(|f| f.ends_with(".git/HEAD")), "{files:#?}");
    assert!(
        files.iter().any(|f| f.ends_with(".git/refs/heads/main")),
        "{files:#?}"
    );

    // A new commit is seen (cargo reruns the script on the ref file's change).
    std::fs::write(checkout.join("LICENSE"), "MIT\n").unwrap();
    git(&checkout, &["add", "LICENSE"]);
    git(&checkout, &["commit", "-q", "-m", "second"]);
    let second = git(&checkout, &["rev-parse", "--short", "HEAD"])
        .stdout
        .trim()
        .to_string();
    assert_ne!(second, head);
    assert_eq!(
        commit_directive(&directives(&script, &checkout, &path)),
        Some(second.as_str())
    );

    // The branch only in packed-refs (as after a clone): that file, and the
    // folder its next loose ref goes to.
    git(&checkout, &["pack-refs", "--all"]);
    let said = directives(&script, &checkout, &path);
    assert_eq!(commit_directive(&said), Some(second.as_str()));
    let files = watched(&said);
    assert!(
        files.iter().any(|f| f.ends_with(".git/packed-refs")),
        "{files:#?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with(".git/refs/heads")),
        "{files:#?}"
    );
    assert!(files.iter().all(|f| f.exists()), "{files:#?}");

    // A detached HEAD holds the commit itself.
    git(&checkout, &["checkout", "-q", "--detach", &head]);
    let said = directives(&script, &checkout, &path);
    assert_eq!(commit_directive(&said), Some(head.as_str()));
    assert_eq!(watched(&said).len(), 1, "HEAD alone: {said:#?}");

    // git not on PATH: nothing recorded, and the build goes on.
    let said = directives(&script, &checkout, "/nonexistent");
    assert_eq!(said, ["cargo:rerun-if-changed=build.rs"]);

    // An unpacked crate tarball: no repository at all.
    let tarball = work.path().join("kubectl-mesh-upgrade-0.1.0");
    std::fs::create_dir(&tarball).unwrap();
    std::fs::write(tarball.join("Cargo.toml"), "[package]\n").unwrap();
    assert_eq!(
        directives(&script, &tarball, &path),
        ["cargo:rerun-if-changed=build.rs"]
    );

    // The same sources vendored inside another repository: not its commit.
    let vendored = checkout.join("vendor").join("kubectl-mesh-upgrade");
    std::fs::create_dir_all(&vendored).unwrap();
    std::fs::write(vendored.join("Cargo.toml"), "[package]\n").unwrap();
    assert_eq!(
        directives(&script, &vendored, &path),
        ["cargo:rerun-if-changed=build.rs"]
    );
}

#[test]
fn version_names_the_commit_this_plugin_was_built_from() {
    let recorded = option_env!("MESH_UPGRADE_GIT_COMMIT");
    // Is this source tree a git checkout of its own? (A crate tarball is not.)
    let top = Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let checkout = top.is_some_and(|top| top.canonicalize().ok() == repo().canonicalize().ok());
    let run = Env::new().plugin(&["version"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let json = Env::new().plugin(&["version", "-o", "json"]);
    let json: Value = serde_json::from_str(&json.stdout).expect("JSON");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], format!("kubectl mesh-upgrade {}", tag()));
    if !checkout {
        assert_eq!(recorded, None);
        assert_eq!(lines.len(), 1, "{run:#?}");
        assert_eq!(json["clientVersion"]["gitCommit"], Value::Null);
        return;
    }
    let commit = recorded.expect("built from a git checkout, the build recorded its commit");
    assert_eq!(lines[1], format!("Commit: {commit}"), "{run:#?}");
    assert_eq!(json["clientVersion"]["gitCommit"], commit);
    // HEAD may have moved on since the build (a commit during the tests), but
    // the recorded commit is in its history.
    let ancestor = Command::new("git")
        .args(["merge-base", "--is-ancestor", commit, "HEAD"])
        .current_dir(repo())
        .status()
        .expect("git runs");
    assert!(
        ancestor.success(),
        "{commit} is not HEAD or an ancestor of it"
    );
}
