//! What proxy a pod actually runs, read from the facts `snapshot` extracted.
//!
//! A pod's proxy is identified two ways, because neither is always there:
//! the `istio-proxy` image tag gives the Istio version (unless the image is
//! pinned by digest), and the `revision` of the `sidecar.istio.io/status`
//! annotation (or, for older injectors, the pod label `istio.io/rev`) gives
//! the revision that injected it. Staleness compares whichever is known.
//!
//! Versions are compared as semver after stripping the `-distroless`/`-debug`
//! image variants, so `1.22.3-distroless` equals `1.22.3`, and pre-releases
//! follow semver's rules (the `semver` crate): numeric identifiers compare as
//! numbers, so `1.22.0-beta.2` < `1.22.0-beta.10` < `1.22.0`. `1.22` and
//! `v1.22.3` are read as `1.22.0` and `1.22.3`. Tags that are not versions
//! (`latest`, a commit hash) compare as plain strings and never count as
//! skewed.

use std::cmp::Ordering;
use std::fmt;

use crate::snapshot::{
    InjectorConfigInfo, Labels, PROXY_IMAGE_ANNOTATION, PROXY_IMAGE_TYPE_ANNOTATION, PodInfo,
    SharedStr, SidecarPlacement,
};

/// The pod label that names the revision (set by the injector, or chosen by the user).
pub const REV_LABEL: &str = "istio.io/rev";

/// The parts of an image reference the model uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Everything before the tag/digest: `reg:5000/istio/proxyv2`.
    pub repository: String,
    /// The tag after the last `:` of the last path segment, if any.
    pub tag: Option<String>,
    /// The `@sha256:...` digest, if any.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `[registry[:port]/]path[:tag][@digest]`. A `:` before the last
    /// `/` belongs to the registry's port, not to a tag.
    pub fn parse(image: &str) -> ImageRef {
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) => (name, Some(digest.to_string())),
            None => (image, None),
        };
        let last_segment_start = name.rfind('/').map_or(0, |i| i + 1);
        match name[last_segment_start..].rfind(':') {
            Some(colon) => {
                let split = last_segment_start + colon;
                ImageRef {
                    repository: name[..split].to_string(),
                    tag: Some(name[split + 1..].to_string()).filter(|t| !t.is_empty()),
                    digest,
                }
            }
            None => ImageRef {
                repository: name.to_string(),
                tag: None,
                digest,
            },
        }
    }

    /// The Istio version the tag names, with image variants stripped.
    pub fn version(&self) -> Option<String> {
        self.tag.as_deref().map(strip_variant).map(str::to_string)
    }
}

/// `1.22.3-distroless` → `1.22.3`; `1.22.3-debug` → `1.22.3`.
pub fn strip_variant(tag: &str) -> &str {
    tag.strip_suffix("-distroless")
        .or_else(|| tag.strip_suffix("-debug"))
        .unwrap_or(tag)
}

/// The version an image tag names (`None` when the image is pinned by digest only).
pub fn image_version(image: &str) -> Option<String> {
    ImageRef::parse(image).version()
}

/// The image variants Istio publishes (`KnownImageTypes` in
/// `pkg/kube/inject/inject.go`).
const KNOWN_IMAGE_TYPES: [&str; 2] = ["distroless", "debug"];

/// The `values` of an injector ConfigMap that name the proxy image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyImageValues {
    /// `global.hub`.
    pub hub: Option<String>,
    /// `global.tag`.
    pub tag: Option<String>,
    /// `global.proxy.image` (`proxyv2` when unset).
    pub image: Option<String>,
    /// `global.variant`.
    pub variant: Option<String>,
}

impl ProxyImageValues {
    /// The image settings of an injector ConfigMap.
    pub fn of(config: &InjectorConfigInfo) -> Self {
        ProxyImageValues {
            hub: config.hub.clone(),
            tag: config.tag.clone(),
            image: config.proxy_image.clone(),
            variant: config.variant.clone(),
        }
    }

    /// The `istio-proxy` image istiod renders for a pod with `annotations`,
    /// as the injection template and `ProxyImage` in Istio's
    /// `pkg/kube/inject/inject.go` compute it:
    /// - `sidecar.istio.io/proxyImage` on the pod, else `global.proxy.image`:
    ///   when it contains a `/` it is the whole reference (hub and tag unused);
    /// - otherwise `<hub>/<global.proxy.image or proxyv2>:<tag>` with the
    ///   image type (`sidecar.istio.io/proxyImageType` on the pod, else
    ///   `global.variant`) replacing any `-distroless`/`-debug` on the tag,
    ///   `default` meaning none. (A `proxyImage` annotation without a `/` is
    ///   ignored by the template.)
    ///
    /// `None` when hub or tag is unknown. The mesh config's
    /// `defaultConfig.image.imageType` and ProxyConfig resources, which come
    /// before `global.variant` in Istio, are not read.
    pub fn render(&self, annotations: &Labels) -> Option<String> {
        let name = self.image.as_deref().unwrap_or("proxyv2");
        let chosen = annotations
            .get(PROXY_IMAGE_ANNOTATION)
            .map(String::as_str)
            .unwrap_or(name);
        if chosen.contains('/') {
            return Some(chosen.to_string());
        }
        let hub = self.hub.as_deref()?;
        let tag = self.tag.as_deref()?;
        let image_type = annotations
            .get(PROXY_IMAGE_TYPE_ANNOTATION)
            .or(self.variant.as_ref())
            .map(String::as_str)
            .unwrap_or("");
        Some(format!("{hub}/{name}:{}", with_image_type(tag, image_type)))
    }
}

/// `updateImageTypeIfPresent`: an image type replaces a known one already on
/// the tag; `default` removes it; no type leaves the tag as written.
fn with_image_type(tag: &str, image_type: &str) -> String {
    if image_type.is_empty() {
        return tag.to_string();
    }
    let base = KNOWN_IMAGE_TYPES
        .iter()
        .find_map(|t| tag.strip_suffix(&format!("-{t}")))
        .unwrap_or(tag);
    if image_type == "default" {
        base.to_string()
    } else {
        format!("{base}-{image_type}")
    }
}

/// Whether a `sidecar.istio.io/proxyImage` value chooses the image: the
/// template uses it only when it contains a `/`.
pub fn is_custom_image(annotation: &str) -> bool {
    annotation.contains('/')
}

/// A parsed `major.minor[.patch][-pre]` version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// What follows the first `-` (`beta.1`), empty for a release.
    pub pre: semver::Prerelease,
}

impl Version {
    /// Parses `1.22.3`, `1.22`, `v1.22.3`, `1.22.3-beta.1` (variants stripped
    /// first). A pre-release that is not semver's (`1.22.3-rc..1`) makes the
    /// text no version.
    pub fn parse(text: &str) -> Option<Version> {
        let text = strip_variant(text.trim());
        let text = text.strip_prefix('v').unwrap_or(text);
        let (numbers, pre) = match text.split_once('-') {
            Some((numbers, pre)) => (numbers, semver::Prerelease::new(pre).ok()?),
            None => (text, semver::Prerelease::EMPTY),
        };
        let mut parts = numbers.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// How many minor versions `self` is behind `other` (0 when not behind or
    /// on a different major, where minor counts say nothing).
    pub fn minors_behind(&self, other: &Version) -> u64 {
        if self.major != other.major {
            return 0;
        }
        other.minor.saturating_sub(self.minor)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            // semver's order: a pre-release sorts before its release, and
            // numeric identifiers compare as numbers.
            .then_with(|| self.pre.cmp(&other.pre))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

/// Whether two version strings name the same version (variants ignored).
pub fn same_version(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Some(a), Some(b)) => a == b,
        _ => strip_variant(a) == strip_variant(b),
    }
}

/// Whether `proxy` is more than one minor version behind `control_plane`
/// (Istio supports a data plane one minor behind its control plane).
pub fn is_skewed(proxy: &str, control_plane: &str) -> bool {
    match (Version::parse(proxy), Version::parse(control_plane)) {
        (Some(p), Some(c)) => p.minors_behind(&c) > 1,
        _ => false,
    }
}

/// The proxy a pod runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningProxy {
    /// The `istio-proxy` image as written in the pod.
    pub image: String,
    pub placement: SidecarPlacement,
    /// The version from the image tag; `None` for a digest-only image.
    pub version: Option<SharedStr>,
    /// The revision that injected it: the status annotation's `revision`,
    /// else the pod label `istio.io/rev`. May name a tag for old injectors;
    /// the model resolves tags before comparing.
    pub revision: Option<String>,
    /// `sidecar.istio.io/proxyImage` chose this image on purpose.
    pub custom_image: bool,
}

/// What a pod runs: a proxy, or none.
pub fn pod_proxy(pod: &PodInfo) -> Option<RunningProxy> {
    let sidecar = pod.proxy.sidecar.as_ref()?;
    let revision = pod
        .proxy
        .status_revision
        .clone()
        .or_else(|| pod.labels.get(REV_LABEL).map(str::to_string))
        .filter(|r| !r.is_empty());
    Some(RunningProxy {
        image: sidecar.image.clone(),
        placement: sidecar.placement,
        version: image_version(&sidecar.image).map(SharedStr::from),
        revision,
        custom_image: pod
            .proxy
            .custom_image
            .as_deref()
            .is_some_and(is_custom_image),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::fixtures::PodFixture;

    #[test]
    fn image_with_registry_port_and_variant_yields_the_plain_version() {
        let image = ImageRef::parse("reg:5000/istio/proxyv2:1.22.3-distroless");
        assert_eq!(image.repository, "reg:5000/istio/proxyv2");
        assert_eq!(image.tag.as_deref(), Some("1.22.3-distroless"));
        assert_eq!(image.version().as_deref(), Some("1.22.3"));
        assert_eq!(
            image_version("docker.io/istio/proxyv2:1.21.2-debug").as_deref(),
            Some("1.21.2")
        );
    }

    #[test]
    fn registry_port_without_a_tag_is_not_taken_for_a_tag() {
        let image = ImageRef::parse("reg:5000/istio/proxyv2");
        assert_eq!(image.tag, None);
        assert_eq!(image.repository, "reg:5000/istio/proxyv2");
    }

    #[test]
    fn digest_only_image_has_no_version() {
        let image = ImageRef::parse("docker.io/istio/proxyv2@sha256:abcdef");
        assert_eq!(image.version(), None);
        assert_eq!(image.digest.as_deref(), Some("sha256:abcdef"));
        let both = ImageRef::parse("docker.io/istio/proxyv2:1.22.3@sha256:abcdef");
        assert_eq!(both.version().as_deref(), Some("1.22.3"));
    }

    #[test]
    fn versions_compare_numerically_not_as_text() {
        let a = Version::parse("1.9.7").unwrap();
        let b = Version::parse("1.10.0").unwrap();
        assert!(a < b);
        assert_eq!(a.minors_behind(&b), 1);
        assert!(Version::parse("1.22.0-beta.1").unwrap() < Version::parse("1.22.0").unwrap());
        assert_eq!(Version::parse("v1.22").unwrap().to_string(), "1.22.0");
        assert_eq!(Version::parse("latest"), None);
    }

    #[test]
    fn pre_releases_compare_by_semver_rules_so_beta_10_follows_beta_2() {
        let v = |text| Version::parse(text).unwrap();
        assert!(v("1.22.0-beta.2") < v("1.22.0-beta.10"));
        assert!(v("1.22.0-beta.10") < v("1.22.0"));
        assert!(v("1.22.0-alpha.5") < v("1.22.0-beta.1"));
        assert!(v("1.22.0-beta.1") < v("1.22.0-beta.1.1"));
        let mut sorted = [v("1.22.0"), v("1.22.0-beta.10"), v("1.22.0-beta.2")];
        sorted.sort();
        let texts: Vec<String> = sorted.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["1.22.0-beta.2", "1.22.0-beta.10", "1.22.0"]);
        assert_eq!(Version::parse("1.22.0-rc..1"), None);
    }

    #[test]
    fn image_variants_are_the_same_version() {
        assert!(same_version("1.22.3-distroless", "1.22.3"));
        assert!(!same_version("1.22.2", "1.22.3"));
        assert!(same_version("latest", "latest"));
    }

    #[test]
    fn more_than_one_minor_behind_is_skew_and_one_is_not() {
        assert!(!is_skewed("1.21.2", "1.22.3"));
        assert!(is_skewed("1.20.8", "1.22.3"));
        assert!(!is_skewed("1.23.0", "1.22.3"));
        assert!(!is_skewed("latest", "1.22.3"));
    }

    #[test]
    fn proxy_in_containers_is_found_with_revision_from_status_annotation() {
        let pod = PodFixture::new("shop", "a")
            .proxy("1-22-3", "docker.io/istio/proxyv2:1.22.3")
            .build();
        let proxy = pod_proxy(&pod).unwrap();
        assert_eq!(proxy.placement, SidecarPlacement::Container);
        assert_eq!(proxy.version.as_deref(), Some("1.22.3"));
        assert_eq!(proxy.revision.as_deref(), Some("1-22-3"));
    }

    #[test]
    fn native_sidecar_in_init_containers_counts_as_a_proxy() {
        let pod = PodFixture::new("shop", "a")
            .native_proxy("1-22-3", "docker.io/istio/proxyv2:1.22.3")
            .build();
        let proxy = pod_proxy(&pod).unwrap();
        assert_eq!(proxy.placement, SidecarPlacement::NativeSidecar);
    }

    #[test]
    fn old_injector_without_status_revision_falls_back_to_the_pod_label() {
        let pod = PodFixture::new("shop", "a")
            .proxy_without_status_revision("docker.io/istio/proxyv2:1.10.0")
            .label(REV_LABEL, "1-10-0")
            .build();
        assert_eq!(pod_proxy(&pod).unwrap().revision.as_deref(), Some("1-10-0"));
    }

    #[test]
    fn pod_without_istio_proxy_runs_no_proxy() {
        let pod = PodFixture::new("shop", "a").build();
        assert_eq!(pod_proxy(&pod), None);
    }

    fn values(
        hub: &str,
        tag: &str,
        image: Option<&str>,
        variant: Option<&str>,
    ) -> ProxyImageValues {
        ProxyImageValues {
            hub: Some(hub.into()),
            tag: Some(tag.into()),
            image: image.map(str::to_string),
            variant: variant.map(str::to_string),
        }
    }

    fn annotations(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[derive(serde::Deserialize)]
    struct ImageCase {
        name: String,
        values: serde_json::Value,
        #[serde(default)]
        annotations: Labels,
        image: String,
    }

    #[test]
    fn every_case_of_the_shared_image_table_renders_the_image_istio_renders() {
        let cases: Vec<ImageCase> =
            serde_yaml::from_str(include_str!("../../testdata/proxy-image-cases.yaml"))
                .expect("the image table parses");
        assert!(cases.len() > 10);
        for case in &cases {
            let cm: k8s_openapi::api::core::v1::ConfigMap =
                serde_json::from_value(serde_json::json!({
                    "metadata": {"name": "istio-sidecar-injector", "namespace": "istio-system"},
                    "data": {"values": serde_json::json!({"global": case.values}).to_string()},
                }))
                .expect("a ConfigMap");
            let values = ProxyImageValues::of(&InjectorConfigInfo::from(&cm));
            assert_eq!(
                values.render(&case.annotations).as_deref(),
                Some(case.image.as_str()),
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn the_rendered_image_is_hub_image_and_tag_with_the_variant() {
        let none = Labels::new();
        assert_eq!(
            values("docker.io/istio", "1.22.3", None, None)
                .render(&none)
                .as_deref(),
            Some("docker.io/istio/proxyv2:1.22.3")
        );
        assert_eq!(
            values(
                "gcr.io/istio-release",
                "1.22.3",
                Some("proxyv2"),
                Some("distroless")
            )
            .render(&none)
            .as_deref(),
            Some("gcr.io/istio-release/proxyv2:1.22.3-distroless")
        );
        // A variant replaces the one already on the tag; `default` removes it.
        assert_eq!(
            values("h", "1.22.3-debug", None, Some("distroless"))
                .render(&none)
                .as_deref(),
            Some("h/proxyv2:1.22.3-distroless")
        );
        assert_eq!(
            values("h", "1.22.3-distroless", None, Some("default"))
                .render(&none)
                .as_deref(),
            Some("h/proxyv2:1.22.3")
        );
        // Without a variant the tag stays as written.
        assert_eq!(
            values("h", "1.22.3-distroless", None, None)
                .render(&none)
                .as_deref(),
            Some("h/proxyv2:1.22.3-distroless")
        );
    }

    #[test]
    fn a_full_proxy_image_reference_ignores_hub_and_tag() {
        let v = values(
            "docker.io/istio",
            "1.22.3",
            Some("registry.example.com/mesh/proxyv2:1.22.4"),
            Some("distroless"),
        );
        assert_eq!(
            v.render(&Labels::new()).as_deref(),
            Some("registry.example.com/mesh/proxyv2:1.22.4")
        );
    }

    #[test]
    fn pod_annotations_choose_the_image_or_its_type() {
        let v = values("docker.io/istio", "1.22.3", None, Some("distroless"));
        assert_eq!(
            v.render(&annotations(&[(
                "sidecar.istio.io/proxyImage",
                "mirror.local/p:1"
            )]))
            .as_deref(),
            Some("mirror.local/p:1")
        );
        // Without a `/` the template ignores the annotation.
        assert_eq!(
            v.render(&annotations(&[(
                "sidecar.istio.io/proxyImage",
                "proxyv2:9"
            )]))
            .as_deref(),
            Some("docker.io/istio/proxyv2:1.22.3-distroless")
        );
        assert_eq!(
            v.render(&annotations(&[(
                "sidecar.istio.io/proxyImageType",
                "debug"
            )]))
            .as_deref(),
            Some("docker.io/istio/proxyv2:1.22.3-debug")
        );
        assert_eq!(ProxyImageValues::default().render(&Labels::new()), None);
    }

    #[test]
    fn proxy_image_annotation_marks_a_custom_image() {
        let pod = PodFixture::new("cart", "p")
            .proxy("1-21-2", "registry.example.com/istio/proxyv2:1.21.2-debug")
            .custom_image("registry.example.com/istio/proxyv2:1.21.2-debug")
            .build();
        assert!(pod_proxy(&pod).unwrap().custom_image);
    }
}
