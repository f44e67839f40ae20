//! Shipping: the krew manifest and its template, the release archive, the
//! install paths, and the RBAC in `krew/rbac/`.
//!
//! ```text
//!  krew/.krew.yaml ──► rendered as the release bot does ──┐
//!  krew/release.sh ──► archive + manifest ────────────────┴► read as krew reads it
//!                  │                                          (kubectl's YAML 1.1 → JSON,
//!                  │                                           krew's Go types, krew's rules)
//!                  └─► archive unpacked onto PATH ──► kubectl mesh-upgrade version
//!  cargo install --path . ─────────────────────────► kubectl mesh-upgrade version
//!  krew/rbac/*.yaml ──► a mesh-sim token with those rules ──► every verb
//!                   └─► each logged request checked against the YAML (groups,
//!                       namespaces, resourceNames), and each rule used
//! ```
//!
//! A manifest is read the way krew reads it ([`manifest_problems`]): decoded
//! by the YAML library krew uses (through `kubectl patch --local`, see
//! [`decode_like_krew`]), every field held to the type of krew's Go structs,
//! then `krew_problems` applies the rules krew enforces when it reads a
//! manifest (its validation package) and the ones krew-index's CI adds
//! (supported os/arch pairs, no overlapping selectors, a licence file
//! installed, line lengths). `kubectl krew` is not installed here, so `kubectl
//! krew install --manifest --archive` itself is not run. The repository keeps
//! no manifest: one exists only for a version whose archives were built.
//!
//! mesh-sim's roles know verbs and resources but not API groups, namespaces or
//! resourceNames, so the YAML is enforced twice: the sim refuses what the
//! rules' verbs and resources do not allow (the plugin must work within them
//! and fail with the 403 sentence without them), and [`Grants`] checks every
//! request the token made against the full RBAC meaning of the YAML.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mesh_sim::resources::kinds;
use mesh_sim::world::WriteOptions;
use mesh_sim::{FaultRule, Faults, RequestRecord, Role, Sim};
use serde_json::Value;

use super::{Env, KUBECTL, PLUGIN, Run, canary, make_executable, path_with};

const HOMEPAGE: &str = "https://github.com/mesh-upgrade/kubectl-mesh-upgrade";
pub(super) const BIN: &str = "kubectl-mesh_upgrade";

pub(super) fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

/// `v` and the version in Cargo.toml: what every manifest must say.
pub(super) fn tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

// ---------------------------------------------------------------- krew's rules

/// Every (os, arch) krew can install for (krew-index's list).
const KREW_PLATFORMS: &[(&str, &str)] = &[
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];

/// File names Windows reserves: krew refuses them as plugin names.
const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Licence file names krew-index accepts (compared case-insensitively).
const LICENCE_NAMES: &[&str] = &[
    "license",
    "license.txt",
    "license.md",
    "licenses",
    "licenses.txt",
    "licenses.md",
    "copying",
    "copying.txt",
];

/// Strict semantic versioning with krew's leading `v`: `v1.2.3`, optionally
/// `-pre.release` and `+build`, no leading zeros in numeric parts.
fn is_strict_semver_with_v(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let (rest, build) = match rest.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (rest, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let identifier =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|pre| {
            pre.split('.')
                .all(|p| identifier(p) && (!p.bytes().all(|b| b.is_ascii_digit()) || numeric(p)))
        })
        && build.is_none_or(|b| b.split('.').all(identifier))
}

fn is_lowercase_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_safe_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !WINDOWS_RESERVED
            .iter()
            .any(|reserved| reserved.eq_ignore_ascii_case(name))
}

/// One platform of a manifest, as krew reads it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Platform {
    pub(super) os: String,
    pub(super) arch: String,
    pub(super) uri: String,
    pub(super) sha256: String,
    pub(super) bin: String,
}

pub(super) fn platforms(manifest: &Value) -> Vec<Platform> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    manifest["spec"]["platforms"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| Platform {
                    os: text(&p["selector"]["matchLabels"]["os"]),
                    arch: text(&p["selector"]["matchLabels"]["arch"]),
                    uri: text(&p["uri"]),
                    sha256: text(&p["sha256"]),
                    bin: text(&p["bin"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What krew (and krew-index's CI) would reject in `manifest`, one sentence
/// each; `version` is the version it must carry.
fn krew_problems(manifest: &Value, version: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |p: String| problems.push(p);
    let spec = &manifest["spec"];
    if manifest["apiVersion"] != "krew.googlecontainertools.github.com/v1alpha2" {
        problem(format!("apiVersion is {}", manifest["apiVersion"]));
    }
    if manifest["kind"] != "Plugin" {
        problem(format!("kind is {}", manifest["kind"]));
    }
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    if !is_safe_plugin_name(name) {
        problem(format!(
            "name {name:?} does not match ^[\\w-]+$ or is reserved on Windows"
        ));
    }
    let plugin_version = spec["version"].as_str().unwrap_or_default();
    if !is_strict_semver_with_v(plugin_version) {
        problem(format!(
            "version {plugin_version:?} is not v-prefixed strict semver"
        ));
    }
    if plugin_version != version {
        problem(format!(
            "version {plugin_version:?} is not {version:?} (Cargo.toml)"
        ));
    }
    let short = spec["shortDescription"].as_str().unwrap_or_default();
    if short.trim().is_empty() || short.contains(['\r', '\n']) || short.chars().count() > 50 {
        problem(format!(
            "shortDescription {short:?} must be one line of 1 to 50 characters"
        ));
    }
    for field in ["description", "caveats"] {
        let text = spec[field].as_str().unwrap_or_default();
        if field == "description" && text.trim().is_empty() {
            problem("description is empty".to_string());
        }
        for line in text.lines() {
            if line.chars().count() > 80 {
                problem(format!("{field} has a line over 80 columns: {line:?}"));
            }
        }
    }
    if spec["homepage"].as_str().is_none_or(str::is_empty) {
        problem("homepage is missing".to_string());
    }
    let Some(list) = spec["platforms"].as_array().filter(|l| !l.is_empty()) else {
        problem("no platforms".to_string());
        return problems;
    };
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, platform) in list.iter().enumerate() {
        let selector = &platform["selector"];
        let labels = selector["matchLabels"].as_object();
        if labels.is_none_or(|l| l.is_empty()) || selector.get("matchExpressions").is_some() {
            problem(format!(
                "platform {i}: the selector must be non-empty matchLabels"
            ));
        }
        for key in labels.into_iter().flat_map(|l| l.keys()) {
            if key != "os" && key != "arch" {
                problem(format!(
                    "platform {i}: selector key {key:?} is not os or arch"
                ));
            }
        }
        let os = selector["matchLabels"]["os"].as_str().unwrap_or_default();
        let arch = selector["matchLabels"]["arch"].as_str().unwrap_or_default();
        if !KREW_PLATFORMS.contains(&(os, arch)) {
            problem(format!(
                "platform {i}: {os}/{arch} is not a platform krew supports"
            ));
        }
        if let Some(first) = seen.insert((os.to_string(), arch.to_string()), i) {
            problem(format!("platforms {first} and {i} both select {os}/{arch}"));
        }
        if platform["uri"]
            .as_str()
            .is_none_or(|u| !u.starts_with("https://"))
        {
            problem(format!(
                "platform {i}: uri {} is not https",
                platform["uri"]
            ));
        }
        let sha = platform["sha256"].as_str().unwrap_or_default();
        if !is_lowercase_sha256(sha) {
            problem(format!(
                "platform {i}: sha256 {sha:?} is not 64 lowercase hex digits"
            ));
        }
        if platform["bin"].as_str().is_none_or(str::is_empty) {
            problem(format!("platform {i}: bin is missing"));
        }
        if let Some(files) = platform.get("files") {
            let ok = files.as_array().is_some_and(|f| {
                !f.is_empty()
                    && f.iter().all(|op| {
                        op["from"].as_str().is_some_and(|s| !s.is_empty())
                            && op["to"].as_str().is_some_and(|s| !s.is_empty())
                    })
            });
            if !ok {
                problem(format!(
                    "platform {i}: files must be non-empty, each with from and to"
                ));
            }
        }
    }
    problems
}

/// The platforms this plugin ships, with the archive each one downloads.
pub(super) fn expected_platforms(tag: &str) -> Vec<(String, String, String, String)> {
    [
        ("linux", "amd64", "tar.gz"),
        ("linux", "arm64", "tar.gz"),
        ("darwin", "amd64", "tar.gz"),
        ("darwin", "arm64", "tar.gz"),
        ("windows", "amd64", "zip"),
    ]
    .into_iter()
    .map(|(os, arch, format)| {
        let bin = if os == "windows" {
            format!("{BIN}.exe")
        } else {
            BIN.to_string()
        };
        let uri = format!("{HOMEPAGE}/releases/download/{tag}/{BIN}-{tag}-{os}-{arch}.{format}");
        (os.to_string(), arch.to_string(), uri, bin)
    })
    .collect()
}

fn assert_ships_every_platform(manifest: &Value, tag: &str) {
    let found: Vec<(String, String, String, String)> = platforms(manifest)
        .into_iter()
        .map(|p| (p.os, p.arch, p.uri, p.bin))
        .collect();
    assert_eq!(found, expected_platforms(tag), "{manifest:#}");
    assert_eq!(manifest["metadata"]["name"], "mesh-upgrade");
    assert_eq!(manifest["spec"]["homepage"], HOMEPAGE);
}

/// krew-release-bot's rendering: `{{ .TagName }}` is the tag, and
/// `{{addURIAndSha "<url>" .TagName }}` becomes `uri: <url>` and, on the next
/// line indented by four spaces, `sha256: <what sha_of says for that url>`.
fn render_like_the_release_bot(
    template: &str,
    tag: &str,
    sha_of: impl Fn(&str) -> String,
) -> String {
    const CALL: &str = "{{addURIAndSha \"";
    let mut out = String::new();
    for line in template.lines() {
        let rendered = match line.find(CALL) {
            Some(start) => {
                let rest = &line[start + CALL.len()..];
                let end = rest.find('"').expect("the URL is quoted");
                let after = rest[end + 1..].trim();
                assert_eq!(after, ".TagName }}", "addURIAndSha takes .TagName: {line}");
                let url = rest[..end].replace("{{ .TagName }}", tag);
                format!("{}uri: {url}\n    sha256: {}", &line[..start], sha_of(&url))
            }
            None => line.replace("{{ .TagName }}", tag),
        };
        out.push_str(&rendered);
        out.push('\n');
    }
    assert!(!out.contains("{{"), "an action was left unrendered:\n{out}");
    out
}

/// A made-up checksum per URL, distinct for each.
fn fake_sha(url: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    url.hash(&mut hasher);
    format!("{:016x}", hasher.finish()).repeat(4)
}

// ---------------------------------------------------------------- reading a manifest as krew does

/// A field's type in krew's Go structs (`pkg/index/types.go` in
/// kubernetes-sigs/krew), as encoding/json holds a decoded manifest to it.
enum Go {
    String,
    /// `map[string]string`
    StringMap,
    List(&'static Go),
    /// A struct's name (for messages) and its JSON fields.
    Struct(&'static str, &'static [(&'static str, Go)]),
}

const FILE_OPERATION: Go = Go::Struct("FileOperation", &[("from", Go::String), ("to", Go::String)]);

const SELECTOR_REQUIREMENT: Go = Go::Struct(
    "LabelSelectorRequirement",
    &[
        ("key", Go::String),
        ("operator", Go::String),
        ("values", Go::List(&Go::String)),
    ],
);

const PLATFORM: Go = Go::Struct(
    "Platform",
    &[
        ("uri", Go::String),
        ("sha256", Go::String),
        (
            "selector",
            Go::Struct(
                "LabelSelector",
                &[
                    ("matchLabels", Go::StringMap),
                    ("matchExpressions", Go::List(&SELECTOR_REQUIREMENT)),
                ],
            ),
        ),
        ("files", Go::List(&FILE_OPERATION)),
        ("bin", Go::String),
    ],
);

/// `Plugin`: TypeMeta inlined, ObjectMeta (of which krew reads the name), spec.
const PLUGIN_MANIFEST: Go = Go::Struct(
    "Plugin",
    &[
        ("apiVersion", Go::String),
        ("kind", Go::String),
        (
            "metadata",
            Go::Struct("ObjectMeta", &[("name", Go::String)]),
        ),
        (
            "spec",
            Go::Struct(
                "PluginSpec",
                &[
                    ("version", Go::String),
                    ("homepage", Go::String),
                    ("shortDescription", Go::String),
                    ("description", Go::String),
                    ("caveats", Go::String),
                    ("platforms", Go::List(&PLATFORM)),
                ],
            ),
        ),
    ],
);

fn json_kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// Where `value` does not fit `go`: one sentence per field, named by its path.
/// encoding/json fails on a mismatched type; a null or an unknown field it
/// lets through, but in a manifest of ours either is a mistake.
fn go_type_problems(value: &Value, go: &Go, path: &str, problems: &mut Vec<String>) {
    let mut wrong = |expected: &str| {
        problems.push(format!(
            "{path} is {}, but krew's Go field is {expected}, so krew cannot read the manifest",
            json_kind(value)
        ))
    };
    match (go, value) {
        (_, Value::Null) => problems.push(format!("{path} is null")),
        (Go::String, Value::String(_)) => {}
        (Go::String, _) => wrong("a string"),
        (Go::StringMap, Value::Object(map)) => {
            for (key, item) in map {
                go_type_problems(item, &Go::String, &format!("{path}.{key}"), problems);
            }
        }
        (Go::StringMap, _) => wrong("a map of strings"),
        (Go::List(item), Value::Array(items)) => {
            for (i, element) in items.iter().enumerate() {
                go_type_problems(element, item, &format!("{path}[{i}]"), problems);
            }
        }
        (Go::List(_), _) => wrong("a list"),
        (Go::Struct(_, fields), Value::Object(map)) => {
            for (key, field) in map {
                let field_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match fields.iter().find(|(name, _)| name == key) {
                    Some((_, go)) => go_type_problems(field, go, &field_path, problems),
                    None => problems.push(format!("{field_path} is not a field krew reads")),
                }
            }
        }
        (Go::Struct(name, _), _) => wrong(&format!("a {name}")),
    }
}

/// The manifest at `path` as krew decodes it. krew reads a manifest with
/// sigs.k8s.io/yaml, which turns YAML into JSON by go-yaml's YAML 1.1 rules
/// (an unquoted run of digits is a number, `0123` an octal one, `yes` and `on`
/// booleans) before encoding/json fills the structs above. kubectl reads `-f`
/// files through the same library, and `kubectl patch --local` prints that
/// JSON without a cluster. serde_yaml is no stand-in: it keeps digits with a
/// leading zero as a string, which is how 64 unquoted zeros once went unseen.
fn decode_like_krew(path: &Path) -> Result<Value, String> {
    let file = path.to_str().expect("a UTF-8 path");
    let run = Env::new().run(
        KUBECTL,
        &[
            "patch", "--local", "-f", file, "-p", "{}", "--type", "merge", "-o", "json",
        ],
    );
    if run.code != 0 {
        return Err(format!(
            "kubectl cannot decode {file}: {}",
            run.stderr.trim()
        ));
    }
    serde_json::from_str(&run.stdout)
        .map_err(|e| format!("kubectl printed no JSON ({e}): {run:#?}"))
}

/// The manifest at `path` as krew reads it, and what krew (and krew-index)
/// would stumble on: a field of the wrong type, then krew's rules.
pub(super) fn manifest_problems(path: &Path, version: &str) -> (Value, Vec<String>) {
    match decode_like_krew(path) {
        Err(problem) => (Value::Null, vec![problem]),
        Ok(manifest) => {
            let mut problems = Vec::new();
            go_type_problems(&manifest, &PLUGIN_MANIFEST, "", &mut problems);
            problems.extend(krew_problems(&manifest, version));
            (manifest, problems)
        }
    }
}

/// `manifest_problems` of a manifest given as text.
fn text_problems(text: &str, version: &str) -> (Value, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plugin.yaml");
    std::fs::write(&path, text).unwrap();
    manifest_problems(&path, version)
}

#[test]
fn no_manifest_in_the_repository_claims_that_an_unreleased_version_is_installable() {
    // A manifest exists only for a built version: krew/release.sh writes it
    // beside the archives it checksums, and the release publishes it.
    assert!(
        !repo().join("plugin.yaml").exists(),
        "plugin.yaml at the root would name archives that were never built"
    );
    let mut candidates = Vec::new();
    for dir in [repo().to_path_buf(), repo().join("krew")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) {
                candidates.push(path);
            }
        }
    }
    for path in candidates {
        let text = std::fs::read_to_string(&path).unwrap();
        if text.lines().any(|l| l.trim() == "kind: Plugin") {
            assert!(
                text.contains("{{addURIAndSha"),
                "{} is a krew manifest; only the release bot's template may be kept",
                path.display()
            );
        }
    }
}

#[test]
fn the_release_bot_template_renders_a_manifest_krew_accepts() {
    let template = read("krew/.krew.yaml");
    let rendered = render_like_the_release_bot(&template, &tag(), fake_sha);
    let (manifest, problems) = text_problems(&rendered, &tag());
    assert!(problems.is_empty(), "{problems:#?}\n{rendered}");
    assert_ships_every_platform(&manifest, &tag());
    for platform in platforms(&manifest) {
        assert_eq!(platform.sha256, fake_sha(&platform.uri));
    }

    // The tag reaches the version and every URL; a tag that is not the
    // crate's version is caught.
    let (other, problems) = text_problems(
        &render_like_the_release_bot(&template, "v7.8.9-rc.1", fake_sha),
        &tag(),
    );
    assert_eq!(other["spec"]["version"], "v7.8.9-rc.1");
    assert_ships_every_platform(&other, "v7.8.9-rc.1");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("(Cargo.toml)"), "{problems:#?}");
}

/// Issue 14: the root plugin.yaml held `sha256: 0000…` (64 zeros, unquoted).
/// YAML 1.1 reads that as the integer 0, krew's sha256 is a string, and krew
/// rejected the manifest before it could compare a checksum.
#[test]
fn unquoted_zeros_as_checksums_are_numbers_to_krew_and_are_reported() {
    let zeros = "0".repeat(64);
    let rendered = render_like_the_release_bot(&read("krew/.krew.yaml"), &tag(), |_| zeros.clone());
    let (manifest, problems) = text_problems(&rendered, &tag());
    assert_eq!(
        manifest["spec"]["platforms"][0]["sha256"], 0,
        "{manifest:#}"
    );
    let numbers: Vec<&String> = problems
        .iter()
        .filter(|p| p.contains(".sha256 is the number 0, but krew's Go field is a string"))
        .collect();
    assert_eq!(numbers.len(), 5, "one per platform: {problems:#?}");
    assert!(
        problems[0].starts_with("spec.platforms[0].sha256 is the number 0"),
        "{problems:#?}"
    );

    // Quoted, as krew/release.sh writes checksums, the same digits are a string.
    let quoted = rendered.replace(&format!("sha256: {zeros}"), &format!("sha256: \"{zeros}\""));
    let (manifest, problems) = text_problems(&quoted, &tag());
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(manifest["spec"]["platforms"][0]["sha256"], zeros.as_str());
}

#[test]
fn every_field_is_held_to_the_type_of_krews_go_struct() {
    let good = render_like_the_release_bot(&read("krew/.krew.yaml"), &tag(), fake_sha);
    // The first line that starts with `start`, replaced by `line`.
    let edit = |start: &str, line: &str| {
        let mut done = false;
        let mut text = String::new();
        for original in good.lines() {
            if !done && original.starts_with(start) {
                text.push_str(line);
                done = true;
            } else {
                text.push_str(original);
            }
            text.push('\n');
        }
        assert!(done, "the template has a line starting {start:?}");
        text
    };
    let cases = [
        (
            edit("  shortDescription: ", "  shortDescription: yes"),
            "spec.shortDescription is the boolean true, but krew's Go field is a string",
        ),
        (
            edit("  homepage: ", "  homepage: on"),
            "spec.homepage is the boolean true",
        ),
        (
            edit("    bin: ", "    bin: 0123"),
            "spec.platforms[0].bin is the number 83",
        ),
        (
            edit("  shortDescription: ", "  shortDesc: Upgrade Istio"),
            "spec.shortDesc is not a field krew reads",
        ),
        (
            edit("    bin: ", "    files: {from: '*', to: .}"),
            "spec.platforms[0].files is a mapping, but krew's Go field is a list",
        ),
        (
            edit("        os: ", "        os: [linux]"),
            "spec.platforms[0].selector.matchLabels.os is a list, but krew's Go field is a string",
        ),
        (
            edit("    uri: ", "    uri:"),
            "spec.platforms[0].uri is null",
        ),
    ];
    for (text, expected) in cases {
        let (_, problems) = text_problems(&text, &tag());
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "expected a problem starting {expected:?}, got {problems:#?}"
        );
    }
    // Without a string apiVersion and kind, kubectl (unlike krew) decodes
    // nothing: one problem, not a panic.
    let (_, problems) = text_problems("apiVersion: 1\nkind: Plugin\n", &tag());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("cannot unmarshal number"),
        "{problems:#?}"
    );
}

#[test]
fn the_manifest_checks_catch_what_krew_rejects() {
    let good = yaml(&render_like_the_release_bot(
        &read("krew/.krew.yaml"),
        &tag(),
        fake_sha,
    ));
    assert!(krew_problems(&good, &tag()).is_empty());
    let broken = |edit: &dyn Fn(&mut Value), expected: &str| {
        let mut manifest = good.clone();
        edit(&mut manifest);
        let problems = krew_problems(&manifest, &tag());
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected a problem containing {expected:?}, got {problems:#?}"
        );
    };
    broken(
        &|m| m["metadata"]["name"] = "LPT1".into(),
        "reserved on Windows",
    );
    broken(
        &|m| m["metadata"]["name"] = "mesh upgrade".into(),
        "^[\\w-]+$",
    );
    broken(&|m| m["spec"]["version"] = "0.1.0".into(), "strict semver");
    broken(&|m| m["spec"]["version"] = "v0.1".into(), "strict semver");
    broken(
        &|m| m["spec"]["version"] = "v01.1.0".into(),
        "strict semver",
    );
    broken(
        &|m| m["spec"]["shortDescription"] = "x".repeat(51).into(),
        "1 to 50 characters",
    );
    broken(
        &|m| m["spec"]["description"] = format!("{}\n", "word ".repeat(17)).into(),
        "over 80 columns",
    );
    broken(
        &|m| m["spec"]["platforms"][0]["sha256"] = fake_sha("x").to_uppercase().into(),
        "lowercase hex",
    );
    broken(
        &|m| m["spec"]["platforms"][1]["selector"]["matchLabels"]["arch"] = "amd64".into(),
        "both select linux/amd64",
    );
    broken(
        &|m| m["spec"]["platforms"][0]["selector"]["matchLabels"]["os"] = "plan9".into(),
        "not a platform krew supports",
    );
    broken(
        &|m| m["spec"]["platforms"][0]["selector"] = serde_json::json!({}),
        "non-empty matchLabels",
    );
    broken(
        &|m| m["spec"]["platforms"][0]["bin"] = "".into(),
        "bin is missing",
    );
    assert!(is_strict_semver_with_v("v1.0.0-rc.1+build.5"));
    assert!(!is_strict_semver_with_v("v1.0.0-01"));
}

// ---------------------------------------------------------------- the release archive

pub(super) fn release_script(env: &Env, args: &[&str]) -> Run {
    let script = repo().join("krew/release.sh");
    let mut all = vec![script.to_str().expect("a UTF-8 path")];
    all.extend_from_slice(args);
    env.run("bash", &all)
}

/// krew's name for this machine's platform.
pub(super) fn host_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    (os, arch)
}

pub(super) fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a checksum")
        .to_string()
}

/// The test build of the plugin without its debug info: the same program,
/// a tenth of the size, so packing it takes a second rather than twenty.
pub(super) fn small_copy_of_the_plugin(dir: &Path) -> PathBuf {
    let copy = dir.join(BIN);
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(PLUGIN)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(PLUGIN, &copy).expect("copying the plugin");
    }
    make_executable(&copy);
    copy
}

#[test]
fn the_release_archive_holds_the_binary_and_licence_and_kubectl_runs_it_from_path() {
    let (os, arch) = host_platform();
    let work = tempfile::tempdir().unwrap();
    let binary = small_copy_of_the_plugin(work.path());
    let dist = work.path().join("dist");
    // The entries' date is pinned: by default it is the last commit's, which
    // moves while other work is committed.
    let env = Env::new()
        .var("MESH_UPGRADE_BIN", binary.to_str().unwrap())
        .var("SOURCE_DATE_EPOCH", "1767225600");
    let started = Instant::now();
    let run = release_script(&env, &["--dist", dist.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{run:#?}");
    eprintln!("release.sh packed the archive in {:.1?}", started.elapsed());

    let name = format!("{BIN}-{}-{os}-{arch}.tar.gz", tag());
    let archive = dist.join(&name);
    assert!(archive.is_file(), "{name} not in dist: {run:#?}");

    // Exactly the binary and the licence, regular files at the root.
    let listing = Env::new().run("tar", &["-tvzf", archive.to_str().unwrap()]);
    assert_eq!(listing.code, 0, "{listing:#?}");
    let mut entries: Vec<(char, String)> = listing
        .stdout
        .lines()
        .map(|line| {
            let kind = line.chars().next().unwrap_or('?');
            let name = line
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_string();
            (kind, name)
        })
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [('-', "LICENSE".to_string()), ('-', BIN.to_string())],
        "only regular files, no directories or symlinks:\n{}",
        listing.stdout
    );

    // The manifest written beside it installs exactly this archive.
    let checksum = sha256_of(&archive);
    let sidecar = std::fs::read_to_string(dist.join(format!("{name}.sha256"))).unwrap();
    assert_eq!(sidecar, format!("{checksum}  {name}\n"));
    let (manifest, problems) = manifest_problems(&dist.join("mesh-upgrade.yaml"), &tag());
    assert!(problems.is_empty(), "{problems:#?}");
    let listed = platforms(&manifest);
    assert_eq!(
        listed.len(),
        1,
        "only the archive that was built: {listed:#?}"
    );
    assert_eq!((listed[0].os.as_str(), listed[0].arch.as_str()), (os, arch));
    assert_eq!(listed[0].sha256, checksum);
    assert!(
        listed[0].uri.ends_with(&format!("/{}/{name}", tag())),
        "{listed:#?}"
    );
    assert!(
        entries.iter().any(|(_, entry)| *entry == listed[0].bin),
        "bin {} is in the archive",
        listed[0].bin
    );
    assert!(
        entries
            .iter()
            .any(|(_, entry)| LICENCE_NAMES.contains(&entry.to_ascii_lowercase().as_str())),
        "krew-index needs a licence file in the archive"
    );

    // The same binary packs to the same bytes.
    let again = release_script(
        &env,
        &["--dist", work.path().join("again").to_str().unwrap()],
    );
    assert_eq!(again.code, 0, "{again:#?}");
    assert_eq!(sha256_of(&work.path().join("again").join(&name)), checksum);

    // --all insists on every platform's archive.
    let all = release_script(
        &Env::new(),
        &[
            "--manifest-only",
            "--all",
            "--dist",
            dist.to_str().unwrap(),
            "--output",
            work.path().join("all.yaml").to_str().unwrap(),
        ],
    );
    assert_eq!(all.code, 1, "{all:#?}");
    assert!(
        all.stderr.contains(&format!(
            "{BIN}-{}-darwin-arm64.tar.gz is not in dist/",
            tag()
        )),
        "{all:#?}"
    );

    // Unpacked onto PATH, kubectl finds it.
    let bin_dir = work.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let unpack = Env::new().run(
        "tar",
        &[
            "-xzf",
            archive.to_str().unwrap(),
            "-C",
            bin_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(unpack.code, 0, "{unpack:#?}");
    assert_eq!(
        std::fs::read_to_string(bin_dir.join("LICENSE")).unwrap(),
        read("LICENSE")
    );
    let sim = canary();
    let env = Env::new()
        .kubeconfig(sim.kubeconfig_path())
        .var("PATH", &path_with(&bin_dir));
    let run = env.run(KUBECTL, &["mesh-upgrade", "version"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stdout
            .starts_with(&format!("kubectl mesh-upgrade {}\n", tag())),
        "{run:#?}"
    );
    assert!(run.stdout.contains("Server: Kubernetes v"), "{run:#?}");
}

/// The workspace's target directory (the test binary lives in its `debug/`).
fn workspace_target_dir() -> PathBuf {
    Path::new(PLUGIN)
        .ancestors()
        .nth(2)
        .expect("PLUGIN is <target>/debug/<binary>")
        .to_path_buf()
}

#[test]
fn cargo_install_puts_a_plugin_on_path_that_kubectl_runs() {
    let root = tempfile::tempdir().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let started = Instant::now();
    // A shell's environment (toolchain, registry cache), not the test's:
    // cargo exports variables to tests that, passed on, would change the
    // fingerprints of dependencies this build shares with `cargo test` and
    // make each rebuild the other's. Offline, into the workspace's target
    // directory, so only what changed is built.
    let mut command = Command::new(&cargo);
    command.env_clear();
    for key in [
        "HOME",
        "PATH",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
    ] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    let output = command
        .args(["install", "--path"])
        .arg(repo())
        .args(["--root"])
        .arg(root.path())
        .args(["--debug", "--locked", "--offline", "--quiet"])
        .env("CARGO_TARGET_DIR", workspace_target_dir())
        .output()
        .expect("cargo runs");
    eprintln!("cargo install --debug took {:.1?}", started.elapsed());
    assert!(
        output.status.success(),
        "cargo install failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let installed = root.path().join("bin").join(BIN);
    assert!(
        installed.is_file(),
        "{} was not installed",
        installed.display()
    );

    let env = Env::new().var("PATH", &path_with(&root.path().join("bin")));
    let run = env.run(KUBECTL, &["mesh-upgrade", "version"]);
    assert_eq!(run.code, 0, "{run:#?}");
    // Built from this checkout, it names the same commit as the test build.
    let commit = option_env!("MESH_UPGRADE_GIT_COMMIT")
        .map(|c| format!("Commit: {c}\n"))
        .unwrap_or_default();
    assert_eq!(
        run.stdout,
        format!("kubectl mesh-upgrade {}\n{commit}", tag())
    );
}

// ---------------------------------------------------------------- RBAC

/// One RBAC rule, with where it applies.
#[derive(Debug, Clone)]
struct Grant {
    /// The Role's namespace; `None` for a ClusterRole (cluster-wide).
    namespace: Option<String>,
    role: String,
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    resource_names: Vec<String>,
}

/// One request, as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ApiCall {
    verb: String,
    group: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
}

impl ApiCall {
    /// `None` for requests that are not about resources (`/version`, discovery).
    fn of(record: &RequestRecord) -> Option<ApiCall> {
        let segments: Vec<&str> = record.path.trim_matches('/').split('/').collect();
        let (group, rest) = match segments.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
                (Some(namespace.to_string()), rest)
            }
            _ => (None, rest),
        };
        let (resource, name, subresource) = match rest {
            [resource] => (*resource, None, None),
            [resource, name] => (*resource, Some(name.to_string()), None),
            [resource, name, sub] => (*resource, Some(name.to_string()), Some(*sub)),
            _ => return None,
        };
        let watching = record
            .query_param("watch")
            .is_some_and(|w| w == "true" || w == "1");
        let verb = match (record.method.as_str(), name.is_some()) {
            ("GET", _) if watching => "watch",
            ("GET", true) => "get",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => return None,
        };
        Some(ApiCall {
            verb: verb.to_string(),
            group: group.to_string(),
            resource: match subresource {
                Some(sub) => format!("{resource}/{sub}"),
                None => resource.to_string(),
            },
            namespace,
            name,
        })
    }
}

/// The rules of some RBAC YAML files, with their full meaning.
#[derive(Debug, Clone)]
struct Grants(Vec<Grant>);

impl Grants {
    /// The rules of every ClusterRole and Role in `text` (multi-document
    /// YAML); bindings are checked to name a role defined alongside.
    fn parse(text: &str) -> Grants {
        let documents: Vec<Value> = serde_yaml::Deserializer::from_str(text)
            .map(|doc| serde::Deserialize::deserialize(doc).expect("a YAML document"))
            .collect();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut grants = Vec::new();
        let mut roles = BTreeSet::new();
        for doc in &documents {
            let kind = doc["kind"].as_str().unwrap_or_default();
            if kind != "ClusterRole" && kind != "Role" {
                continue;
            }
            let role = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let namespace = doc["metadata"]["namespace"].as_str().map(String::from);
            assert_eq!(
                kind == "Role",
                namespace.is_some(),
                "{role}: a Role has a namespace, a ClusterRole none"
            );
            roles.insert((kind.to_string(), role.clone()));
            for rule in doc["rules"].as_array().expect("rules") {
                grants.push(Grant {
                    namespace: namespace.clone(),
                    role: role.clone(),
                    groups: strings(&rule["apiGroups"]),
                    resources: strings(&rule["resources"]),
                    verbs: strings(&rule["verbs"]),
                    resource_names: strings(&rule["resourceNames"]),
                });
            }
        }
        for doc in &documents {
            let kind = doc["kind"].as_str().unwrap_or_default();
            if kind == "ClusterRoleBinding" || kind == "RoleBinding" {
                let target = (
                    doc["roleRef"]["kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    doc["roleRef"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                assert!(
                    roles.is_empty() || roles.contains(&target),
                    "{kind} {} binds {target:?}, which is not defined here",
                    doc["metadata"]["name"]
                );
                assert!(
                    doc["subjects"].as_array().is_some_and(|s| !s.is_empty()),
                    "{kind} {} has no subjects",
                    doc["metadata"]["name"]
                );
            }
        }
        Grants(grants)
    }

    /// Keep only the rules of the roles named.
    fn of_roles(&self, names: &[&str]) -> Grants {
        Grants(
            self.0
                .iter()
                .filter(|g| names.contains(&g.role.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// Drop `verb` on `group`/`resource` from every rule.
    fn without(&self, group: &str, resource: &str, verb: &str) -> Grants {
        let mut grants = self.clone();
        let mut removed = false;
        let mut extra = Vec::new();
        for grant in &mut grants.0 {
            let matches = grant.groups.iter().any(|g| g == group)
                && grant.resources.iter().any(|r| r == resource)
                && grant.verbs.iter().any(|v| v == verb);
            if !matches {
                continue;
            }
            removed = true;
            // Split the rule: the other resources keep the verb.
            let others: Vec<String> = grant
                .resources
                .iter()
                .filter(|r| *r != resource)
                .cloned()
                .collect();
            if !others.is_empty() {
                let mut kept = grant.clone();
                kept.resources = others;
                extra.push(kept);
            }
            grant.resources = vec![resource.to_string()];
            grant.verbs.retain(|v| v != verb);
        }
        assert!(removed, "no rule grants {verb} on {group}/{resource}");
        grants.0.extend(extra);
        grants
    }

    /// The mesh-sim role these rules amount to (it knows no groups,
    /// namespaces or resourceNames: those are checked by [`Grants::permits`]).
    fn sim_role(&self) -> Role {
        self.0.iter().fold(Role::new(), |role, grant| {
            let verbs: Vec<&str> = grant.verbs.iter().map(String::as_str).collect();
            let resources: Vec<&str> = grant.resources.iter().map(String::as_str).collect();
            role.allow(&verbs, &resources)
        })
    }

    /// Whether Kubernetes RBAC would allow `call` under these rules.
    fn permits(&self, call: &ApiCall) -> bool {
        self.0.iter().any(|grant| {
            let scope = match (&grant.namespace, &call.namespace) {
                (None, _) => true,
                (Some(role_ns), Some(ns)) => role_ns == ns,
                // A Role never grants cluster-scoped resources.
                (Some(_), None) => false,
            };
            let any = |list: &[String], value: &str| list.iter().any(|x| x == "*" || x == value);
            scope
                && any(&grant.verbs, &call.verb)
                && any(&grant.groups, &call.group)
                && any(&grant.resources, &call.resource)
                && (grant.resource_names.is_empty()
                    || call
                        .name
                        .as_ref()
                        .is_some_and(|n| grant.resource_names.contains(n)))
        })
    }

    /// Every (verb, group, resource) the rules name.
    fn triples(&self) -> BTreeSet<(String, String, String)> {
        let mut out = BTreeSet::new();
        for grant in &self.0 {
            for verb in &grant.verbs {
                for group in &grant.groups {
                    for resource in &grant.resources {
                        out.insert((verb.clone(), group.clone(), resource.clone()));
                    }
                }
            }
        }
        out
    }
}

/// The requests `user` made, as RBAC sees them, with their status.
fn calls_by(sim: &Sim, user: &str) -> Vec<(ApiCall, u16)> {
    sim.requests()
        .iter()
        .filter(|r| r.user == user)
        .filter_map(|r| ApiCall::of(r).map(|call| (call, r.status)))
        .collect()
}

fn assert_all_permitted(grants: &Grants, calls: &[(ApiCall, u16)]) {
    let refused: Vec<&ApiCall> = calls
        .iter()
        .filter(|(call, _)| !grants.permits(call))
        .map(|(call, _)| call)
        .collect();
    assert!(
        refused.is_empty(),
        "requests the RBAC YAML does not allow: {refused:#?}"
    );
}

fn run_as(kubeconfig: &Path, args: &[&str]) -> Run {
    Env::new().kubeconfig(kubeconfig).plugin(args)
}

/// `status <args> --watch` as `user`, until it watches every list it made
/// (a refused LIST, read another way, is not watched); then Ctrl-C. The view itself is tested in `status_watch.rs`: here only
/// its requests count.
fn watch_status_as(sim: &Sim, kubeconfig: &Path, user: &str, args: &[&str]) -> Run {
    let before = calls_by(sim, user).len();
    let args: Vec<&str> = std::iter::once("status")
        .chain(args.iter().copied())
        .chain(["--watch"])
        .collect();
    let mut child = Env::new()
        .kubeconfig(kubeconfig)
        .command(PLUGIN, &args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts");
    let key = |c: &ApiCall| (c.group.clone(), c.resource.clone(), c.namespace.clone());
    wait_for("a watch of every list", || {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                std::io::Read::read_to_string(&mut pipe, &mut stderr).ok();
            }
            panic!("status --watch ended ({status}) before watching: {stderr}");
        }
        let calls: Vec<ApiCall> = calls_by(sim, user)
            .into_iter()
            .skip(before)
            .filter(|(_, status)| *status < 400)
            .map(|(call, _)| call)
            .collect();
        let watched: BTreeSet<_> = calls
            .iter()
            .filter(|c| c.verb == "watch")
            .map(key)
            .collect();
        let listed: BTreeSet<_> = calls.iter().filter(|c| c.verb == "list").map(key).collect();
        !listed.is_empty() && listed.is_subset(&watched)
    });
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let output = child.wait_with_output().expect("the view ends");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A RollingUpdate StatefulSet in `shop`: canary has only an OnDelete one,
/// and restart-sidecars patches (and re-reads) StatefulSets too.
const ROLLING_STATEFUL_SET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: audit
  namespace: shop
  labels:
    app: audit
spec:
  replicas: 1
  serviceName: audit
  selector:
    matchLabels:
      app: audit
  template:
    metadata:
      labels:
        app: audit
    spec:
      containers:
      - name: audit
        image: ghcr.io/example/audit:1.0
"#;

/// An Argo Rollout in `shop` (injected by shop's revision): restart-sidecars
/// patches, watches and (after a conflict) reads Rollouts too.
const ROLLOUT: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: reviews
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: reviews
  template:
    metadata:
      labels:
        app: reviews
    spec:
      containers:
      - name: reviews
        image: ghcr.io/example/reviews:2.0
  strategy:
    canary: {}
"#;

#[test]
fn the_error_for_a_403_names_a_directory_that_holds_the_cluster_role() {
    let sentence = kubectl_mesh_upgrade::error::Error::Forbidden {
        verb: "patch".into(),
        resource: "namespaces".into(),
        scope: "cluster-wide".into(),
        user: "alice".into(),
    }
    .to_string();
    let (_, after) = sentence
        .split_once("ClusterRole (")
        .unwrap_or_else(|| panic!("{sentence}"));
    let (directory, url) = after
        .trim_end_matches(')')
        .split_once(" in ")
        .unwrap_or_else(|| panic!("{sentence}"));
    assert_eq!(url, HOMEPAGE);
    let directory = repo().join(directory);
    assert!(directory.is_dir(), "{} does not exist", directory.display());
    let grants = Grants::parse(&read("krew/rbac/clusterrole.yaml"));
    assert!(
        !grants.of_roles(&["mesh-upgrade"]).0.is_empty(),
        "krew/rbac/clusterrole.yaml defines the mesh-upgrade ClusterRole"
    );
}

#[test]
fn every_verb_runs_with_only_the_mesh_upgrade_cluster_role_and_uses_every_rule() {
    let text = read("krew/rbac/clusterrole.yaml");
    Grants::parse(&read("krew/rbac/clusterrolebinding.yaml"));
    let grants = Grants::parse(&text).of_roles(&["mesh-upgrade"]);
    let sim = canary();
    sim.apply_yaml(ROLLING_STATEFUL_SET)
        .expect("the StatefulSet applies");
    sim.apply_yaml(ROLLOUT).expect("the Rollout applies");
    // A 1.28 revision: `tag set` writes a tag's Service only from 1.28 on.
    sim.apply_yaml(&mesh_sim::inject::istio_revision_manifests(
        Some("1-28-1"),
        "1.28.1",
        &mesh_sim::inject::RevisionOptions::default(),
    ))
    .expect("the 1.28 revision applies");
    sim.settle();
    let kubeconfig = sim.add_user("mesh-operator", grants.sim_role());
    sim.clear_requests();

    let step = |args: &[&str], faults: Option<Faults>| {
        match faults {
            Some(faults) => sim.set_faults(faults),
            None => sim.clear_faults(),
        }
        let run = run_as(&kubeconfig, args);
        assert_eq!(run.code, 0, "{args:?} as mesh-operator: {run:#?}");
        run
    };
    step(&["status", "-A"], None);
    let watched = watch_status_as(&sim, &kubeconfig, "mesh-operator", &["-A"]);
    assert_eq!(
        watched.code, 130,
        "status -A --watch as mesh-operator: {watched:#?}"
    );
    // A conflict on the first namespace patch: relabel reads it again.
    let conflict_once = |resource: &str| FaultRule::on("patch", resource).conflict().next(1);
    step(
        &["relabel", "-n", "shop", "--to", "1-22-3", "--yes"],
        Some(Faults::new().rule(conflict_once("namespaces"))),
    );
    // shop's workloads (the Deployments, log-agent, audit, the reviews
    // Rollout) are now stale, and pay's were already: one conflict per
    // kind, and --delete-pods for the OnDelete ledger.
    step(
        &[
            "restart-sidecars",
            "-n",
            "shop,pay",
            "--delete-pods",
            "--yes",
        ],
        Some(
            Faults::new()
                .rule(conflict_once("deployments"))
                .rule(conflict_once("statefulsets"))
                .rule(conflict_once("daemonsets"))
                .rule(conflict_once("rollouts")),
        ),
    );
    step(&["relabel", "-n", "shop", "--undo", "--yes"], None);
    sim.clear_faults();
    let run = switch_that_has_to_wait(&sim, &kubeconfig, "mesh-operator", true);
    assert_eq!(run.code, 0, "gateway-switch as mesh-operator: {run:#?}");
    step(
        &[
            "gateway-switch",
            "-n",
            "istio-gateways",
            "--rollback",
            "--yes",
        ],
        None,
    );
    // After gateway-switch, whose wait looks for the first Service patch.
    // tag: list; a move whose patch is stored but answered 500 (the retry's
    // 409 is read again with get and found written); a tag created with its
    // Service, moved (both patched), and removed (both deleted); an undo.
    step(&["tag", "list"], None);
    step(
        &["tag", "set", "prod-stable", "--revision", "1-22-3", "--yes"],
        Some(
            Faults::new().rule(
                FaultRule::on("patch", "mutatingwebhookconfigurations")
                    .error_after_store(500, 0)
                    .next(1),
            ),
        ),
    );
    step(
        &["tag", "set", "prod-next", "--revision", "1-28-1", "--yes"],
        None,
    );
    step(
        &["tag", "set", "prod-next", "--revision", "1-22-3", "--yes"],
        None,
    );
    step(&["tag", "remove", "prod-next", "--yes"], None);
    step(&["tag", "set", "--undo", "prod-stable", "--yes"], None);
    // edge/public selects prod-stable: the two moves of the tag re-rendered
    // its Deployment twice. Let that rollout end first, as a person would
    // (the move's `rolled-out` precheck refuses a Gateway still rolling).
    assert!(sim.settle(), "the cluster settles");
    // A Gateway API Gateway moved, with a conflict on its first patch (it
    // reads the Gateway again), and moved back.
    step(
        &[
            "gateway-switch",
            "-n",
            "edge",
            "--gateway",
            "public",
            "--to",
            "1-22-3",
            "--yes",
        ],
        Some(Faults::new().rule(conflict_once("gateways"))),
    );
    step(
        &[
            "gateway-switch",
            "-n",
            "edge",
            "--gateway",
            "public",
            "--rollback",
            "--yes",
        ],
        None,
    );
    sim.clear_faults();

    // ztunnel-roll, on an ambient cluster: first the node holding ledger-0
    // while its budget allows no disruption (the roll watches the budget,
    // times out, and uncordons the node again), then every node.
    let ambient = Sim::start(mesh_sim::SimOptions::default().scenario("ambient"))
        .expect("the ambient scenario starts");
    let ambient_kubeconfig = ambient.add_user("mesh-operator", grants.sim_role());
    ambient
        .apply_yaml(&ledger_budget(0))
        .expect("the budget applies");
    ambient.settle();
    let ledger_node = ambient
        .get(kinds::pods(), "payments", "ledger-0")
        .expect("ledger-0")["spec"]["nodeName"]
        .as_str()
        .unwrap()
        .to_string();
    let run = run_as(
        &ambient_kubeconfig,
        &["ztunnel-roll", &ledger_node, "--yes", "--timeout", "2s"],
    );
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(run.stdout.contains("uncordoned again"), "{run:#?}");
    ambient
        .apply_yaml(&ledger_budget(1))
        .expect("the budget applies");
    ambient.settle();
    let run = run_as(&ambient_kubeconfig, &["ztunnel-roll", "--yes"]);
    assert_eq!(run.code, 0, "ztunnel-roll as mesh-operator: {run:#?}");

    let mut calls = calls_by(&sim, "mesh-operator");
    calls.extend(calls_by(&ambient, "mesh-operator"));
    assert!(!calls.is_empty());
    let forbidden: Vec<&ApiCall> = calls
        .iter()
        .filter(|(_, status)| *status == 403)
        .map(|(call, _)| call)
        .collect();
    assert!(forbidden.is_empty(), "refused requests: {forbidden:#?}");
    assert_all_permitted(&grants, &calls);

    // Exactly what is needed: every rule was used by some request.
    let used: BTreeSet<(String, String, String)> = calls
        .iter()
        .map(|(c, _)| (c.verb.clone(), c.group.clone(), c.resource.clone()))
        .collect();
    let unused: Vec<_> = grants.triples().difference(&used).cloned().collect();
    assert!(
        unused.is_empty(),
        "the ClusterRole grants what no verb used: {unused:#?}"
    );
}

#[test]
fn the_status_cluster_role_serves_status_and_refuses_writes_with_the_403_sentence() {
    let grants =
        Grants::parse(&read("krew/rbac/clusterrole.yaml")).of_roles(&["mesh-upgrade-status"]);
    let sim = canary();
    let kubeconfig = sim.add_user("viewer", grants.sim_role());
    sim.clear_requests();
    let run = run_as(&kubeconfig, &["status", "-A", "-o", "json"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stderr.is_empty(), "nothing was left unread: {run:#?}");
    let listed = calls_by(&sim, "viewer").len();
    let watched = watch_status_as(&sim, &kubeconfig, "viewer", &["-A", "-o", "json"]);
    assert_eq!(watched.code, 130, "{watched:#?}");
    assert!(watched.stderr.is_empty(), "{watched:#?}");
    let calls = calls_by(&sim, "viewer");
    assert_all_permitted(&grants, &calls);
    let verbs = |calls: &[(ApiCall, u16)]| -> BTreeSet<String> {
        calls.iter().map(|(c, _)| c.verb.clone()).collect()
    };
    assert_eq!(
        verbs(&calls[..listed]),
        BTreeSet::from(["list".to_string()]),
        "status LISTs only"
    );
    let used: BTreeSet<_> = calls
        .iter()
        .map(|(c, _)| (c.verb.clone(), c.group.clone(), c.resource.clone()))
        .collect();
    assert_eq!(
        used,
        grants.triples(),
        "status and status --watch use each rule: LISTs, then watches of the same kinds"
    );

    let run = run_as(
        &kubeconfig,
        &["relabel", "-n", "shop", "--to", "1-22-3", "--yes"],
    );
    assert_ne!(run.code, 0, "{run:#?}");
    // The report wraps the sentence at 100 columns.
    let words = run
        .combined()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains(
            "forbidden: cannot patch namespaces/shop cluster-wide as viewer; ask a cluster admin to bind the mesh-upgrade ClusterRole (krew/rbac/ in https://github.com/mesh-upgrade/kubectl-mesh-upgrade)"
        ),
        "{run:#?}"
    );
}

/// The `ledger` PodDisruptionBudget of the ambient scenario, allowing
/// `max_unavailable` pods down.
fn ledger_budget(max_unavailable: u32) -> String {
    format!(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: ledger, namespace: payments}}\nspec:\n  maxUnavailable: {max_unavailable}\n  selector:\n    matchLabels: {{app: ledger}}\n"
    )
}

/// The verbs, each failing with the API server's refusal named in one
/// sentence once one rule it needs is gone.
#[test]
fn without_a_rule_it_needs_each_verb_fails_with_the_403_sentence() {
    let full = Grants::parse(&read("krew/rbac/clusterrole.yaml")).of_roles(&["mesh-upgrade"]);
    let cases: &[(&str, &str, &str, &[&str], &str)] = &[
        (
            "",
            "pods",
            "list",
            &["status", "-A"],
            "forbidden: cannot list pods in all namespaces as",
        ),
        (
            "",
            "pods",
            "watch",
            &["status", "-A", "--watch"],
            "forbidden: cannot watch pods in all namespaces as",
        ),
        // A kind status --watch follows beyond the apps ones, cluster-scoped.
        (
            "",
            "nodes",
            "watch",
            &["status", "-A", "--watch"],
            "forbidden: cannot watch nodes cluster-wide as",
        ),
        (
            "",
            "namespaces",
            "patch",
            &["relabel", "-n", "shop", "--to", "1-22-3", "--yes"],
            "forbidden: cannot patch namespaces",
        ),
        (
            "apps",
            "deployments",
            "patch",
            &["restart-sidecars", "-n", "pay", "--yes"],
            "forbidden: cannot patch deployments",
        ),
        (
            "",
            "pods",
            "delete",
            &["restart-sidecars", "-n", "pay", "--delete-pods", "--yes"],
            "forbidden: cannot delete pods",
        ),
        (
            "argoproj.io",
            "rollouts",
            "patch",
            &[
                "restart-sidecars",
                "-n",
                "pay",
                "--kind",
                "rollout",
                "--yes",
            ],
            "forbidden: cannot patch rollouts",
        ),
        (
            "",
            "services",
            "patch",
            &[
                "gateway-switch",
                "-n",
                "istio-gateways",
                "--to",
                "1-22-3",
                "--yes",
            ],
            "forbidden: cannot patch services",
        ),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "patch",
            &["tag", "set", "prod-stable", "--revision", "1-22-3", "--yes"],
            "forbidden: cannot patch mutatingwebhookconfigurations",
        ),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "create",
            &["tag", "set", "prod-next", "--revision", "1-22-3", "--yes"],
            "forbidden: cannot create mutatingwebhookconfigurations",
        ),
        (
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "delete",
            &["tag", "remove", "prod-canary", "--force", "--yes"],
            "forbidden: cannot delete mutatingwebhookconfigurations",
        ),
        (
            "gateway.networking.k8s.io",
            "gateways",
            "patch",
            &[
                "gateway-switch",
                "-n",
                "edge",
                "--gateway",
                "public",
                "--to",
                "1-22-3",
                "--yes",
            ],
            "forbidden: cannot patch gateways",
        ),
    ];
    for (group, resource, verb, args, expected) in cases {
        let sim = canary();
        if *resource == "rollouts" {
            // A stale Rollout in pay: made while pay was on the default
            // revision, which it then left.
            let pay = |labels: &str| {
                format!(
                    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: pay\n  labels: {{{labels}}}\n"
                )
            };
            sim.apply_yaml(&pay("istio-injection: enabled"))
                .expect("pay on the default revision");
            sim.apply_yaml(&ROLLOUT.replace("namespace: shop", "namespace: pay"))
                .expect("the Rollout applies");
            sim.apply_yaml(&pay("istio.io/rev: 1-22-3"))
                .expect("pay on the canary");
            sim.settle();
        }
        let grants = full.without(group, resource, verb);
        let kubeconfig = sim.add_user("operator", grants.sim_role());
        let run = run_as(&kubeconfig, args);
        assert_ne!(run.code, 0, "{args:?} without {verb} {resource}: {run:#?}");
        assert!(
            run.combined().contains(expected)
                && run.combined().contains("bind the mesh-upgrade ClusterRole"),
            "{args:?} without {verb} {resource} should say {expected:?}: {run:#?}"
        );
    }

    // ztunnel-roll without patching nodes: its first write, the cordon, is
    // refused with the sentence, and nothing else is written.
    let sim = Sim::start(mesh_sim::SimOptions::default().scenario("ambient"))
        .expect("the ambient scenario starts");
    let grants = full.without("", "nodes", "patch");
    let kubeconfig = sim.add_user("operator", grants.sim_role());
    sim.clear_requests();
    let run = run_as(&kubeconfig, &["ztunnel-roll", "--yes"]);
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(
        run.combined()
            .contains("forbidden: cannot patch nodes/sim-node-")
            && run.combined().contains("bind the mesh-upgrade ClusterRole"),
        "{run:#?}"
    );
    let written: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && r.status < 300)
        .map(|r| r.path.clone())
        .collect();
    assert!(written.is_empty(), "{written:?}");

    // Without watching EndpointSlices, gateway-switch can only list them
    // again, gives up after a few refused watches if they have not converged
    // by then, and switches the Service back (exit 4).
    let sim = canary();
    let grants = full.without("discovery.k8s.io", "endpointslices", "watch");
    let kubeconfig = sim.add_user("operator", grants.sim_role());
    let run = switch_that_has_to_wait(&sim, &kubeconfig, "operator", false);
    assert_eq!(run.code, 4, "{run:#?}");
    assert!(
        run.stderr.contains(
            "forbidden: cannot watch endpointslices in namespace istio-gateways as operator"
        ) && run
            .stderr
            .contains("switched back to istio=ingressgateway,version=1-21-2"),
        "{run:#?}"
    );
}

const GATEWAYS: &str = "istio-gateways";
const GREEN: &str = "istio-ingressgateway-1-22-3";

/// The requests of `user` so far that match `wanted`.
fn logged(sim: &Sim, user: &str, wanted: impl Fn(&ApiCall) -> bool) -> bool {
    calls_by(sim, user).iter().any(|(call, _)| wanted(call))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `gateway-switch -n istio-gateways --to 1-22-3 --yes` as `user`, made to
/// wait for its endpoints: on mesh-sim they converge the instant the Service
/// is patched, so the verb's first LIST would already see them and its WATCH
/// would never run. Here the clock stops, the LIST is slowed down, and one
/// green pod is deleted right after the patch: its replacement cannot become
/// Ready until the clock runs again, which happens (with `resume`) once the
/// verb is watching.
fn switch_that_has_to_wait(sim: &Sim, kubeconfig: &Path, user: &str, resume: bool) -> Run {
    sim.pause_clock();
    sim.set_faults(
        Faults::new()
            .rule(FaultRule::on("list", "endpointslices").latency(Duration::from_millis(3000))),
    );
    let child = Env::new()
        .kubeconfig(kubeconfig)
        .command(
            PLUGIN,
            &["gateway-switch", "-n", GATEWAYS, "--to", "1-22-3", "--yes"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the plugin starts");
    wait_for("the Service patch", || {
        logged(sim, user, |c| c.verb == "patch" && c.resource == "services")
    });
    sim.with_world(|world| {
        let green = world
            .store
            .list(kinds::pods(), Some(GATEWAYS))
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .find(|name| name.starts_with(GREEN))
            .expect("a green gateway pod");
        world
            .delete(kinds::pods(), GATEWAYS, &green, &WriteOptions::default())
            .expect("the pod is deleted");
    });
    if resume {
        wait_for("the EndpointSlice watch", || {
            logged(sim, user, |c| {
                c.verb == "watch" && c.resource == "endpointslices"
            })
        });
        sim.set_clock_speed(50.0);
    }
    let output = child.wait_with_output().expect("the plugin ends");
    sim.set_clock_speed(50.0);
    sim.clear_faults();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn the_namespaced_variant_runs_status_and_restart_sidecars_in_its_namespace_only() {
    // The example is written for `shop`; instantiate it for `pay`, whose
    // workloads are stale in the canary scenario.
    let text = read("krew/rbac/namespaced.yaml")
        .replace("namespace: shop", "namespace: pay")
        .replace("[shop, istio-system]", "[pay, istio-system]")
        .replace("team-shop", "team-pay")
        .replace("mesh-upgrade-shop-lookup", "mesh-upgrade-pay-lookup");
    let grants = Grants::parse(&text);
    let sim = canary();
    let kubeconfig = sim.add_user("team-pay", grants.sim_role());
    sim.clear_requests();

    let run = run_as(&kubeconfig, &["status", "-n", "pay"]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        run.stderr
            .contains("read the 2 selected namespaces one by one"),
        "{run:#?}"
    );
    let run = watch_status_as(&sim, &kubeconfig, "team-pay", &["-n", "pay"]);
    assert_eq!(run.code, 130, "{run:#?}");
    assert!(
        run.stderr.contains("namespaces cannot be watched"),
        "{run:#?}"
    );
    let run = run_as(
        &kubeconfig,
        &["restart-sidecars", "-n", "pay", "--delete-pods", "--yes"],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let calls = calls_by(&sim, "team-pay");
    assert_all_permitted(
        &grants,
        &calls
            .iter()
            .filter(|(_, status)| *status != 403)
            .cloned()
            .collect::<Vec<_>>(),
    );
    let refused: Vec<&ApiCall> = calls
        .iter()
        .filter(|(_, status)| *status == 403)
        .map(|(call, _)| call)
        .collect();
    assert!(
        refused
            .iter()
            .all(|c| c.verb == "list" && c.resource == "namespaces"),
        "only the namespace LIST is refused (and read by name instead): {refused:#?}"
    );

    // Another namespace is outside the YAML's grants (mesh-sim's roles are
    // namespace-blind, so the check is on the requests made).
    sim.clear_requests();
    let run = run_as(&kubeconfig, &["status", "-n", "shop"]);
    assert_eq!(run.code, 0, "mesh-sim lets it through: {run:#?}");
    let outside: Vec<ApiCall> = calls_by(&sim, "team-pay")
        .into_iter()
        .map(|(call, _)| call)
        .filter(|call| !grants.permits(call))
        .collect();
    assert!(
        outside
            .iter()
            .any(|c| c.namespace.as_deref() == Some("shop")),
        "a cluster would refuse reading shop: {outside:#?}"
    );

    // -A and relabel are refused in one sentence.
    for (args, expected) in [
        (
            &["status", "-A"][..],
            "forbidden: cannot list namespaces cluster-wide as team-pay",
        ),
        (
            &["relabel", "-n", "pay", "--to", "1-21-2", "--yes"][..],
            "forbidden: cannot patch namespaces",
        ),
    ] {
        let run = run_as(&kubeconfig, args);
        assert_ne!(run.code, 0, "{args:?}: {run:#?}");
        assert!(run.combined().contains(expected), "{args:?}: {run:#?}");
    }
}
