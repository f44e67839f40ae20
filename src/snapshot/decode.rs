//! Lean decoders: a LIST page's bytes straight into the snapshot structs.
//!
//! The `From<&K>` conversions in `snapshot.rs` need every object decoded
//! into its full k8s-openapi type first: every field of every container,
//! every annotation, `managedFields`, all as owned strings and maps, only to
//! keep a few of them. At 150,000 pods that decoding is most of what
//! `status` spends. The decoders here read the same fields with serde
//! structs that name only what the snapshot keeps (serde skips the rest
//! without building anything), borrow strings from the page where they are
//! only looked at (container names, images, condition types, timestamps),
//! and keep only the annotations a kind needs ([`Kept`]).
//!
//! They must give exactly what the `From<&K>` conversions give on the same
//! objects: the proxy rules are shared through
//! [`super::ContainerFields`], and the tests below decode the same fixtures
//! both ways and compare.
//!
//! Kinds with many objects get a decoder: pods, ReplicaSets, Deployments
//! (with istiod's facts), StatefulSets, DaemonSets and PodDisruptionBudgets
//! (one per workload in a large cluster). The few Namespaces, Services,
//! EndpointSlices, webhook configurations and ConfigMaps are decoded as
//! k8s-openapi objects ([`typed`]).
//!
//! The kinds with the most objects (pods, ReplicaSets, Deployments and
//! PodDisruptionBudgets: most of a large cluster's bytes) are also read in
//! Kubernetes' protobuf encoding (`protobuf`), into the same lean structs,
//! so both encodings give the same snapshot structs through one
//! conversion (`LeanPod::info`, `LeanDeployment::facts`, ...). A page says
//! which it is: protobuf begins with `k8s\0`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ResourceClaim, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, IgnoredAny, MapAccess, Visitor};
use smallvec::SmallVec;

use super::ambient::REDIRECTION_ANNOTATION;
use super::{
    AmbientPodFacts, ContainerFields, ContainerImage, ContainerPortInfo, DaemonSetInfo,
    DataPlaneContainer, DataPlaneFacts, DeploymentInfo, HELM_RELEASE_ANNOTATIONS, INJECT_KEY,
    Interner, IstiodInfo, LabelMap, LabelMatcher, Labels, OwnerRef, PROXY_IMAGE_ANNOTATION,
    PROXY_IMAGE_TYPE_ANNOTATION, PdbInfo, PodInfo, PodTemplateInfo, ProxyFacts, ReplicaSetInfo,
    SIDECAR_STATUS_ANNOTATION, Shared, SharedStr, StatefulSetInfo, controller_of, find_sidecar,
    helm_release_from, int_or_string, is_kept_template_annotation, to_chrono,
};

/// The annotation (pods, the ztunnel DaemonSet) or label (the istio-cni
/// DaemonSet) naming the revision a data-plane component belongs to.
const REV_KEY: &str = "istio.io/rev";

/// What a page decoder returns; the objects it keeps are pushed, in order,
/// onto the list the caller passes.
pub type Decoded = Result<(), serde_json::Error>;

mod protobuf;

/// The pods of a page, JSON or Kubernetes' protobuf (the LIST asks for
/// protobuf first, see [`crate::api::ListEncoding`], as it does for the
/// other kinds read both ways below); what pods share comes from `interner`.
pub fn pods(page: &[u8], interner: &Interner, out: &mut Vec<PodInfo>) -> Decoded {
    if crate::protobuf::is_protobuf(page) {
        return protobuf::pods(page, interner, out);
    }
    let mut previous = PreviousPod::default();
    each_item(page, |pod: LeanPod| {
        out.push(pod.info(interner, &mut previous))
    })
}

/// The ReplicaSets of a page.
pub fn replica_sets(page: &[u8], interner: &Interner, out: &mut Vec<ReplicaSetInfo>) -> Decoded {
    if crate::protobuf::is_protobuf(page) {
        return protobuf::replica_sets(page, interner, out);
    }
    each_item(page, |rs: LeanReplicaSet| out.push(rs.info(interner)))
}

/// The Deployments of a page, each with istiod's facts when it is an istiod
/// of `control_plane_namespace` (as `collect::deployment_facts` gives them).
pub fn deployments(
    page: &[u8],
    control_plane_namespace: &str,
    interner: &Interner,
    out: &mut Vec<(DeploymentInfo, Option<Box<IstiodInfo>>)>,
) -> Decoded {
    if crate::protobuf::is_protobuf(page) {
        return protobuf::deployments(page, control_plane_namespace, interner, out);
    }
    each_item(page, |d: LeanDeployment| {
        out.push(d.facts(control_plane_namespace, interner))
    })
}

/// The istiod Deployments of `control_plane_namespace` in a page.
pub fn istiods(page: &[u8], control_plane_namespace: &str, out: &mut Vec<IstiodInfo>) -> Decoded {
    let interner = Interner::default();
    if crate::protobuf::is_protobuf(page) {
        let mut facts = Vec::new();
        protobuf::deployments(page, control_plane_namespace, &interner, &mut facts)?;
        out.extend(
            facts
                .into_iter()
                .filter_map(|(_, istiod)| istiod.map(|i| *i)),
        );
        return Ok(());
    }
    each_item(page, |d: LeanDeployment| {
        out.extend(d.facts(control_plane_namespace, &interner).1.map(|i| *i))
    })
}

/// The StatefulSets of a page.
pub fn stateful_sets(page: &[u8], interner: &Interner, out: &mut Vec<StatefulSetInfo>) -> Decoded {
    each_item(page, |s: LeanStatefulSet| out.push(s.info(interner)))
}

/// The DaemonSets of a page.
pub fn daemon_sets(page: &[u8], interner: &Interner, out: &mut Vec<DaemonSetInfo>) -> Decoded {
    each_item(page, |d: LeanDaemonSet| out.push(d.info(interner)))
}

/// The PodDisruptionBudgets of a page.
pub fn pod_disruption_budgets(page: &[u8], out: &mut Vec<PdbInfo>) -> Decoded {
    if crate::protobuf::is_protobuf(page) {
        return protobuf::pod_disruption_budgets(page, out);
    }
    each_item(page, |p: LeanPdb| out.push(PdbInfo::from(p)))
}

/// A page decoder of the kinds above with `interner` bound, as the paging
/// loop takes one: every page of a read shares one interner.
pub fn sharing<T: 'static>(
    interner: &std::sync::Arc<Interner>,
    decode: fn(&[u8], &Interner, &mut Vec<T>) -> Decoded,
) -> impl Fn(&[u8], &mut Vec<T>) -> Decoded + Clone + Send + Sync + 'static {
    let interner = interner.clone();
    move |page, out| decode(page, &interner, out)
}

/// A decoder for a kind without a lean one: each item decoded as the
/// k8s-openapi type `K`, then `map`ped (dropped on `None`).
pub fn typed<K: DeserializeOwned, T>(
    map: impl Fn(K) -> Option<T> + Clone,
) -> impl Fn(&[u8], &mut Vec<T>) -> Decoded + Clone {
    move |page, out| each_item(page, |object: K| out.extend(map(object)))
}

/// Calls `f` with each of a list page's `items` as it is decoded, so no
/// page is ever held as a list of decoded objects (absent or `null` items:
/// none). The rest of the page (its metadata) is skipped.
fn each_item<'a, T: Deserialize<'a>>(page: &'a [u8], f: impl FnMut(T)) -> Decoded {
    use serde::de::{DeserializeSeed, SeqAccess};

    struct Page<F, T>(F, PhantomData<T>);
    struct Items<'f, F, T>(&'f mut F, PhantomData<T>);

    #[derive(Deserialize)]
    #[serde(field_identifier, rename_all = "lowercase")]
    enum Key {
        Items,
        #[serde(other)]
        Other,
    }

    impl<'de, F: FnMut(T), T: Deserialize<'de>> Visitor<'de> for Page<F, T> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::Items => map.next_value_seed(Items(&mut self.0, PhantomData))?,
                    Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(())
        }
    }

    impl<'de, F: FnMut(T), T: Deserialize<'de>> DeserializeSeed<'de> for Items<'_, F, T> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_option(self)
        }
    }

    impl<'de, F: FnMut(T), T: Deserialize<'de>> Visitor<'de> for Items<'_, F, T> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of items")
        }
        fn visit_none<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(item) = seq.next_element::<T>()? {
                (self.0)(item);
            }
            Ok(())
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(page);
    deserializer.deserialize_map(Page(f, PhantomData))?;
    deserializer.end()
}

/// A string borrowed from the page when it has no escapes, owned otherwise
/// (serde borrows a plain `Cow` field, but not one inside `Option` or a map).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

impl Str<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Str<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A `metav1.Time` as read: the RFC 3339 text of JSON, or the instant
/// protobuf carries (seconds and nanoseconds), kept as it is rather than
/// written out as text only to be parsed again.
enum Time<'a> {
    Text(Str<'a>),
    At(DateTime<Utc>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Time<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Str::deserialize(deserializer).map(Time::Text)
    }
}

impl Time<'_> {
    fn instant(&self) -> Option<DateTime<Utc>> {
        match self {
            Time::Text(text) => text
                .as_str()
                .parse::<k8s_openapi::jiff::Timestamp>()
                .ok()
                .and_then(|t| to_chrono(&t)),
            Time::At(at) => Some(*at),
        }
    }
}

/// A label map as read from the page: its entries borrowed, in page order,
/// until [`Interner::labels`] finds or makes the shared map.
#[derive(Clone, Default)]
struct LabelEntries<'a>(SmallVec<[(Str<'a>, Str<'a>); 8]>);

impl<'de: 'a, 'a> Deserialize<'de> for LabelEntries<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Made for `'a`, not `'de`: the inline array makes the entries
        // invariant over their lifetime.
        struct EntriesVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for EntriesVisitor<'a> {
            type Value = LabelEntries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = SmallVec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(entry) = map.next_entry::<Str<'a>, Str<'a>>()? {
                    entries.push(entry);
                }
                Ok(LabelEntries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl LabelEntries<'_> {
    /// The shared map of these entries.
    fn intern(mut self, interner: &Interner) -> LabelMap {
        interner.labels(&mut self.0)
    }
}

/// Which annotation (or other map) keys a kind keeps.
trait KeepKeys {
    fn keep(key: &str) -> bool;
}

/// A string map of which only the keys `F` keeps are read; the other
/// values are skipped unread.
struct Kept<F>(Labels, PhantomData<F>);

impl<F> Default for Kept<F> {
    fn default() -> Self {
        Kept(Labels::new(), PhantomData)
    }
}

impl<'de, F: KeepKeys> Deserialize<'de> for Kept<F> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeptVisitor<F>(PhantomData<F>);
        impl<'de, F: KeepKeys> Visitor<'de> for KeptVisitor<F> {
            type Value = Kept<F>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kept<F>, A::Error> {
                let mut kept = Labels::new();
                while let Some(key) = map.next_key::<Str<'de>>()? {
                    if F::keep(key.as_str()) {
                        let value: String = map.next_value()?;
                        kept.insert(key.0.into_owned(), value);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Kept(kept, PhantomData))
            }
        }
        deserializer.deserialize_map(KeptVisitor(PhantomData))
    }
}

/// Kinds that look at no annotation.
struct NoAnnotations;
impl KeepKeys for NoAnnotations {
    fn keep(_: &str) -> bool {
        false
    }
}

/// The pod annotations [`ProxyFacts::extract`] and [`AmbientPodFacts`] read.
struct PodAnnotations;
impl KeepKeys for PodAnnotations {
    fn keep(key: &str) -> bool {
        [
            SIDECAR_STATUS_ANNOTATION,
            PROXY_IMAGE_ANNOTATION,
            PROXY_IMAGE_TYPE_ANNOTATION,
            INJECT_KEY,
            REDIRECTION_ANNOTATION,
            REV_KEY,
        ]
        .contains(&key)
    }
}

/// The Deployment annotations kept: Helm's release (istiod's removal command).
struct DeploymentAnnotations;
impl KeepKeys for DeploymentAnnotations {
    fn keep(key: &str) -> bool {
        HELM_RELEASE_ANNOTATIONS.contains(&key)
    }
}

/// The DaemonSet annotation kept: the ztunnel chart's `istio.io/rev`.
struct DaemonSetAnnotations;
impl KeepKeys for DaemonSetAnnotations {
    fn keep(key: &str) -> bool {
        key == REV_KEY
    }
}

/// The template annotations [`PodTemplateInfo`] keeps.
struct TemplateAnnotations;
impl KeepKeys for TemplateAnnotations {
    fn keep(key: &str) -> bool {
        is_kept_template_annotation(key)
    }
}

/// The one ReplicaSet annotation kept.
const DEPLOYMENT_REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
struct ReplicaSetAnnotations;
impl KeepKeys for ReplicaSetAnnotations {
    fn keep(key: &str) -> bool {
        key == DEPLOYMENT_REVISION_ANNOTATION
    }
}

/// `metadata`, the fields the snapshot structs use; annotations as `F` keeps them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "F: KeepKeys"))]
struct Meta<'a, F> {
    // Borrowed from the page: a pod's name and uid go straight into one
    // shared `str` each, other kinds' into a `String`.
    #[serde(default, borrow)]
    name: Option<Str<'a>>,
    #[serde(default, borrow)]
    namespace: Option<Str<'a>>,
    #[serde(default, borrow)]
    uid: Option<Str<'a>>,
    #[serde(default, borrow)]
    labels: Option<LabelEntries<'a>>,
    #[serde(default = "Option::default")]
    annotations: Option<Kept<F>>,
    #[serde(default, borrow)]
    owner_references: Option<SmallVec<[Owner<'a>; 1]>>,
    #[serde(default)]
    deletion_timestamp: Option<IgnoredAny>,
    #[serde(default, borrow)]
    creation_timestamp: Option<Time<'a>>,
    #[serde(default)]
    generation: Option<i64>,
}

impl<F> Default for Meta<'_, F> {
    fn default() -> Self {
        Meta {
            name: None,
            namespace: None,
            uid: None,
            labels: None,
            annotations: None,
            owner_references: None,
            deletion_timestamp: None,
            creation_timestamp: None,
            generation: None,
        }
    }
}

impl<F> Meta<'_, F> {
    fn name(&mut self) -> String {
        self.name
            .take()
            .map(|n| n.0.into_owned())
            .unwrap_or_default()
    }
    fn shared_name(&self) -> SharedStr {
        SharedStr::from(self.name.as_ref().map_or("", Str::as_str))
    }
    fn namespace(&mut self) -> String {
        self.namespace
            .take()
            .map(|n| n.0.into_owned())
            .unwrap_or_default()
    }
    fn shared_namespace(&self, interner: &Interner) -> SharedStr {
        interner.str(self.namespace.as_ref().map_or("", Str::as_str))
    }
    fn uid(&mut self) -> String {
        self.uid
            .take()
            .map(|u| u.0.into_owned())
            .unwrap_or_default()
    }
    fn shared_uid(&self) -> SharedStr {
        SharedStr::from(self.uid.as_ref().map_or("", Str::as_str))
    }
    fn labels(&mut self, interner: &Interner) -> LabelMap {
        self.labels
            .take()
            .map(|l| l.intern(interner))
            .unwrap_or_default()
    }
    fn owners(&mut self) -> Vec<OwnerRef> {
        // Collected in place, the list would keep the decoded one's spare
        // capacity (room for four owners) for as long as the snapshot lives.
        let mut owners: Vec<OwnerRef> = self
            .owner_references
            .take()
            .map(|os| os.iter().map(OwnerRef::from).collect())
            .unwrap_or_default();
        owners.shrink_to_fit();
        owners
    }
    /// Whether these are the owners `owners` holds.
    fn same_owners(&self, owners: &[OwnerRef]) -> bool {
        let raw = self.owner_references.as_deref().unwrap_or_default();
        owners.len() == raw.len() && owners.iter().zip(raw).all(|(a, b)| b.is(a))
    }
    /// The owners, shared with every object read before that has the same
    /// ones; built only the first time (the pods of a ReplicaSet).
    fn shared_owners(&self, interner: &Interner) -> Shared<Vec<OwnerRef>> {
        let raw = self.owner_references.as_deref().unwrap_or_default();
        let hash = Interner::form_hash(raw.iter().flat_map(|o| {
            [
                o.uid.as_str(),
                o.name.as_str(),
                o.kind.as_str(),
                o.api_version.as_str(),
                if o.controller.unwrap_or(false) {
                    "c"
                } else {
                    ""
                },
            ]
        }));
        interner.shared_by_form(
            hash,
            |owners: &Vec<OwnerRef>| self.same_owners(owners),
            || raw.iter().map(OwnerRef::from).collect(),
        )
    }
    fn annotations(&mut self) -> Option<Labels> {
        self.annotations.take().map(|kept| kept.0)
    }
}

/// An owner reference as the page has it (borrowed).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Owner<'a> {
    #[serde(default, borrow)]
    kind: Str<'a>,
    #[serde(default, borrow)]
    api_version: Str<'a>,
    #[serde(default, borrow)]
    name: Str<'a>,
    #[serde(default, borrow)]
    uid: Str<'a>,
    #[serde(default)]
    controller: Option<bool>,
}

impl Owner<'_> {
    fn is(&self, owner: &OwnerRef) -> bool {
        owner.uid == self.uid.as_str()
            && owner.name == self.name.as_str()
            && owner.kind == self.kind.as_str()
            && owner.api_version == self.api_version.as_str()
            && owner.controller == self.controller.unwrap_or(false)
    }
}

impl From<&Owner<'_>> for OwnerRef {
    fn from(o: &Owner<'_>) -> Self {
        OwnerRef {
            kind: o.kind.as_str().to_string(),
            api_version: o.api_version.as_str().to_string(),
            name: o.name.as_str().to_string(),
            uid: o.uid.as_str().to_string(),
            controller: o.controller.unwrap_or(false),
        }
    }
}

/// A pod's containers (or init containers), most often one or two.
type PodContainers<'a> = SmallVec<[PodContainer<'a>; 2]>;

/// A pod's container: what proxy detection reads.
#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct PodContainer<'a> {
    #[serde(default, borrow)]
    name: Str<'a>,
    #[serde(default, borrow)]
    image: Option<Str<'a>>,
    #[serde(default, borrow)]
    restart_policy: Option<Str<'a>>,
    #[serde(default, borrow)]
    resources: Option<Resources<'a>>,
    #[serde(default, borrow)]
    env: Option<XdsAddress<'a>>,
}

/// A container's `env`, of which only the first literal `XDS_ADDRESS` is
/// kept (what a ztunnel pod's facts need); the other entries are read
/// without keeping anything.
#[derive(Default, PartialEq)]
struct XdsAddress<'a>(Option<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for XdsAddress<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::SeqAccess;
        struct EnvVisitor<'a>(PhantomData<&'a ()>);
        impl<'de> Visitor<'de> for EnvVisitor<'de> {
            type Value = XdsAddress<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of environment variables")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                while let Some(entry) = seq.next_element::<Env<'de>>()? {
                    if found.is_none() && entry.name.as_str() == "XDS_ADDRESS" {
                        found = entry.value;
                    }
                }
                Ok(XdsAddress(found))
            }
        }
        deserializer.deserialize_seq(EnvVisitor(PhantomData))
    }
}

impl PodContainer<'_> {
    fn data_plane(&self) -> DataPlaneContainer<'_> {
        DataPlaneContainer {
            name: self.name.as_str(),
            image: self.image.as_ref().map(Str::as_str),
            xds_address: self
                .env
                .as_ref()
                .and_then(|e| e.0.as_ref())
                .map(Str::as_str),
        }
    }
}

/// A container's `resources`, borrowed until the proxy's are needed.
#[derive(Deserialize, PartialEq)]
struct Resources<'a> {
    #[serde(default, borrow)]
    limits: Option<BTreeMap<Str<'a>, Str<'a>>>,
    #[serde(default, borrow)]
    requests: Option<BTreeMap<Str<'a>, Str<'a>>>,
    #[serde(default)]
    claims: Option<Vec<ResourceClaim>>,
}

impl Resources<'_> {
    fn to_api(&self) -> ResourceRequirements {
        let quantities = |map: &Option<BTreeMap<Str, Str>>| {
            map.as_ref().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.as_str().to_string(), Quantity(v.as_str().to_string())))
                    .collect()
            })
        };
        ResourceRequirements {
            claims: self.claims.clone(),
            limits: quantities(&self.limits),
            requests: quantities(&self.requests),
        }
    }
}

impl ContainerFields for PodContainer<'_> {
    fn name(&self) -> &str {
        self.name.as_str()
    }
    fn image(&self) -> Option<&str> {
        self.image.as_ref().map(Str::as_str)
    }
    fn restart_policy(&self) -> Option<&str> {
        self.restart_policy.as_ref().map(Str::as_str)
    }
    fn resources(&self) -> Option<Cow<'_, ResourceRequirements>> {
        self.resources.as_ref().map(|r| Cow::Owned(r.to_api()))
    }
}

#[derive(Deserialize)]
struct LeanPod<'a> {
    #[serde(default, borrow)]
    metadata: Option<Meta<'a, PodAnnotations>>,
    #[serde(default, borrow)]
    spec: Option<PodSpec<'a>>,
    #[serde(default, borrow)]
    status: Option<PodStatus<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec<'a> {
    #[serde(default, borrow)]
    containers: Option<PodContainers<'a>>,
    #[serde(default, borrow)]
    init_containers: Option<PodContainers<'a>>,
    #[serde(default)]
    host_network: Option<bool>,
    #[serde(default, borrow)]
    node_name: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct PodStatus<'a> {
    #[serde(default, borrow)]
    phase: Option<Str<'a>>,
    #[serde(default, rename = "conditions")]
    ready: PodReady,
}

/// Whether a pod's conditions hold `Ready` = `True`, decided while they
/// are read: a pod's four or five conditions are not kept in a vector of
/// their own.
#[derive(Default)]
struct PodReady(bool);

impl PodReady {
    fn of(condition: &Condition<'_>) -> bool {
        condition.type_.as_str() == "Ready" && condition.status.as_str() == "True"
    }
}

impl<'de> Deserialize<'de> for PodReady {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::SeqAccess;
        struct ConditionsVisitor;
        impl<'de> Visitor<'de> for ConditionsVisitor {
            type Value = PodReady;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of conditions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PodReady, A::Error> {
                let mut ready = false;
                while let Some(condition) = seq.next_element::<Condition<'de>>()? {
                    ready |= PodReady::of(&condition);
                }
                Ok(PodReady(ready))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<PodReady, E> {
                Ok(PodReady(false))
            }
        }
        deserializer.deserialize_any(ConditionsVisitor)
    }
}

/// A status condition: its type, status and reason.
#[derive(Deserialize)]
struct Condition<'a> {
    #[serde(default, borrow, rename = "type")]
    type_: Str<'a>,
    #[serde(default, borrow)]
    status: Str<'a>,
    #[serde(default, borrow)]
    reason: Option<Str<'a>>,
}

/// The revision of a ztunnel or istio-cni object: its `istio.io/rev`
/// annotation, else its label.
fn data_plane_revision(annotations: Option<&Labels>, labels: &LabelMap) -> Option<String> {
    annotations
        .and_then(|a| a.get(REV_KEY))
        .map(String::as_str)
        .or_else(|| labels.get(REV_KEY))
        .map(str::to_string)
}

/// The pod decoded just before, with what its inputs made. The next pod of
/// a page is most often another of the same ReplicaSet (a LIST is in name
/// order, and a ReplicaSet's pods are named after it), with the same
/// namespace, labels, owners, phase and proxy: comparing with the previous
/// pod's is cheaper than hashing them into the interner behind its lock,
/// and than reading the injection status annotation again. Any difference
/// falls back to the interner, so what a pod is read as does not depend on
/// its neighbour.
#[derive(Default)]
struct PreviousPod<'a> {
    made: Option<PodInfo>,
    /// What its proxy facts were extracted from.
    annotations: Option<Labels>,
    containers: PodContainers<'a>,
    init_containers: PodContainers<'a>,
    host_network: bool,
}

impl<'a> LeanPod<'a> {
    fn info(self, interner: &Interner, previous: &mut PreviousPod<'a>) -> PodInfo {
        let mut meta = self.metadata.unwrap_or_default();
        let has_spec = self.spec.is_some();
        let (containers, init_containers, host_network, node) = match self.spec {
            Some(spec) => (
                spec.containers.unwrap_or_default(),
                spec.init_containers.unwrap_or_default(),
                spec.host_network.unwrap_or(false),
                spec.node_name.filter(|n| !n.as_str().is_empty()),
            ),
            None => (SmallVec::new(), SmallVec::new(), false, None),
        };
        let status = self.status;
        let annotations = meta.annotations();
        let made = previous.made.as_ref();

        let namespace_text = meta.namespace.as_ref().map_or("", Str::as_str);
        let namespace = match made {
            Some(p) if p.namespace.as_str() == namespace_text => p.namespace.clone(),
            _ => meta.shared_namespace(interner),
        };
        let same_labels = made.is_some_and(|p| {
            let entries = meta
                .labels
                .as_ref()
                .map(|l| l.0.as_slice())
                .unwrap_or_default();
            p.labels.len() == entries.len()
                && p.labels
                    .iter()
                    .zip(entries)
                    .all(|((k, v), (lk, lv))| k == lk.as_str() && v == lv.as_str())
        });
        let labels = match made {
            Some(p) if same_labels => p.labels.clone(),
            _ => meta.labels(interner),
        };
        let owners = match made {
            Some(p) if meta.same_owners(&p.owners) => p.owners.clone(),
            _ => meta.shared_owners(interner),
        };
        let phase_text = status
            .as_ref()
            .and_then(|s| s.phase.as_ref())
            .map_or("Unknown", Str::as_str);
        let phase = match made {
            Some(p) if p.phase.as_str() == phase_text => p.phase.clone(),
            _ => interner.str(phase_text),
        };
        let same_proxy_inputs = made.is_some()
            && previous.host_network == host_network
            && previous.annotations == annotations
            && previous.containers == containers
            && previous.init_containers == init_containers;
        let proxy = match made {
            Some(p) if same_proxy_inputs => p.proxy.clone(),
            _ => interner.shared(ProxyFacts::extract(
                annotations.as_ref(),
                &containers,
                &init_containers,
                host_network,
            )),
        };
        // Only ztunnel and istio-cni pods (by their labels) have these; a
        // pod without a spec has no container to read.
        let data_plane = match made {
            Some(p) if same_labels && same_proxy_inputs => p.ambient.data_plane.clone(),
            _ => has_spec
                .then(|| {
                    let revision = data_plane_revision(annotations.as_ref(), &labels);
                    let containers: Vec<DataPlaneContainer> =
                        containers.iter().map(PodContainer::data_plane).collect();
                    DataPlaneFacts::from_parts(&labels, revision, &containers)
                })
                .flatten(),
        };
        let ambient = AmbientPodFacts {
            node: node.map(|n| n.as_str().to_string()),
            redirection: annotations
                .as_ref()
                .and_then(|a| a.get(REDIRECTION_ANNOTATION))
                .cloned(),
            data_plane,
        };
        let ambient = match made {
            Some(p) if *p.ambient == ambient => p.ambient.clone(),
            _ => interner.shared(ambient),
        };
        let info = PodInfo {
            namespace,
            name: meta.shared_name(),
            uid: meta.shared_uid(),
            labels,
            owners,
            phase,
            ready: status.as_ref().is_some_and(|s| s.ready.0),
            terminating: meta.deletion_timestamp.is_some(),
            created: meta.creation_timestamp.as_ref().and_then(Time::instant),
            proxy,
            ambient,
        };
        *previous = PreviousPod {
            made: Some(info.clone()),
            annotations,
            containers,
            init_containers,
            host_network,
        };
        info
    }
}

/// A template's container: name, image, ports, and (for istiod) literal env values.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateContainer<'a> {
    #[serde(default, borrow)]
    name: Str<'a>,
    #[serde(default, borrow)]
    image: Option<Str<'a>>,
    #[serde(default, borrow)]
    restart_policy: Option<Str<'a>>,
    #[serde(default)]
    ports: Option<Vec<Port>>,
    #[serde(default, borrow)]
    env: Option<Vec<Env<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Port {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    container_port: i32,
}

#[derive(Deserialize)]
struct Env<'a> {
    #[serde(default, borrow)]
    name: Str<'a>,
    #[serde(default, borrow)]
    value: Option<Str<'a>>,
}

impl TemplateContainer<'_> {
    fn data_plane(&self) -> DataPlaneContainer<'_> {
        DataPlaneContainer {
            name: self.name.as_str(),
            image: self.image.as_ref().map(Str::as_str),
            xds_address: self.env.iter().flatten().find_map(|e| {
                (e.name.as_str() == "XDS_ADDRESS")
                    .then(|| e.value.as_ref().map(Str::as_str))
                    .flatten()
            }),
        }
    }
}

impl ContainerFields for TemplateContainer<'_> {
    fn name(&self) -> &str {
        self.name.as_str()
    }
    fn image(&self) -> Option<&str> {
        self.image.as_ref().map(Str::as_str)
    }
    fn restart_policy(&self) -> Option<&str> {
        self.restart_policy.as_ref().map(Str::as_str)
    }
    fn resources(&self) -> Option<Cow<'_, ResourceRequirements>> {
        None
    }
}

#[derive(Deserialize, Default)]
struct Template<'a> {
    #[serde(default, borrow)]
    metadata: Option<TemplateMeta<'a>>,
    #[serde(default, borrow)]
    spec: Option<TemplateSpec<'a>>,
}

#[derive(Deserialize, Default)]
struct TemplateMeta<'a> {
    #[serde(default, borrow)]
    labels: Option<LabelEntries<'a>>,
    #[serde(default = "Option::default")]
    annotations: Option<Kept<TemplateAnnotations>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateSpec<'a> {
    #[serde(default, borrow)]
    containers: Option<Vec<TemplateContainer<'a>>>,
    #[serde(default, borrow)]
    init_containers: Option<Vec<TemplateContainer<'a>>>,
    #[serde(default)]
    host_network: Option<bool>,
}

impl Template<'_> {
    fn containers(&self) -> &[TemplateContainer<'_>] {
        self.spec
            .as_ref()
            .and_then(|s| s.containers.as_deref())
            .unwrap_or_default()
    }

    fn labels(&self, interner: &Interner) -> LabelMap {
        self.metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .map(|l| l.intern(interner))
            .unwrap_or_default()
    }

    fn info(&self, interner: &Interner) -> PodTemplateInfo {
        let containers = self.containers();
        let init_containers = self
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_deref())
            .unwrap_or_default();
        PodTemplateInfo {
            labels: self.labels(interner),
            annotations: self
                .metadata
                .as_ref()
                .and_then(|m| m.annotations.as_ref())
                .map(|kept| kept.0.clone())
                .unwrap_or_default(),
            containers: containers
                .iter()
                .map(|c| ContainerImage {
                    name: c.name.as_str().to_string(),
                    image: c
                        .image
                        .as_ref()
                        .map(|i| i.as_str().to_string())
                        .unwrap_or_default(),
                    ports: c
                        .ports
                        .iter()
                        .flatten()
                        .map(|p| ContainerPortInfo {
                            name: p.name.clone(),
                            container_port: p.container_port,
                        })
                        .collect(),
                })
                .collect(),
            sidecar: find_sidecar(containers, init_containers),
            host_network: self
                .spec
                .as_ref()
                .and_then(|s| s.host_network)
                .unwrap_or(false),
        }
    }
}

/// `spec.selector` as the API types hold it, taken rather than copied.
fn matcher(selector: Option<LabelSelector>) -> LabelMatcher {
    LabelMatcher::from_owned_label_selector(selector, LabelMatcher::nothing())
}

#[derive(Deserialize)]
struct LeanReplicaSet<'a> {
    #[serde(default, borrow)]
    metadata: Option<Meta<'a, ReplicaSetAnnotations>>,
    #[serde(default, borrow)]
    spec: Option<ReplicaSetSpec<'a>>,
    #[serde(default)]
    status: Option<ReplicaSetStatus>,
}

#[derive(Deserialize)]
struct ReplicaSetSpec<'a> {
    #[serde(default)]
    replicas: Option<i32>,
    #[serde(default, borrow)]
    template: Option<Template<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplicaSetStatus {
    #[serde(default)]
    replicas: i32,
    #[serde(default)]
    ready_replicas: Option<i32>,
    #[serde(default)]
    available_replicas: Option<i32>,
}

impl LeanReplicaSet<'_> {
    fn info(self, interner: &Interner) -> ReplicaSetInfo {
        let mut meta = self.metadata.unwrap_or_default();
        let owners = meta.owners();
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        ReplicaSetInfo {
            namespace: meta.shared_namespace(interner),
            name: meta.name(),
            uid: meta.uid(),
            desired: spec.and_then(|s| s.replicas).unwrap_or(1),
            replicas: status.map(|s| s.replicas).unwrap_or(0),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            deployment_revision: meta
                .annotations()
                .and_then(|mut a| a.remove(DEPLOYMENT_REVISION_ANNOTATION)),
            template: if controller_of(&owners).is_none_or(|o| o.kind == "Rollout") {
                spec.and_then(|s| s.template.as_ref())
                    .map(|t| Shared::new(t.info(interner)))
            } else {
                None
            },
            owners,
        }
    }
}

#[derive(Deserialize)]
struct LeanDeployment<'a> {
    #[serde(default, borrow)]
    metadata: Option<Meta<'a, DeploymentAnnotations>>,
    #[serde(default, borrow)]
    spec: Option<DeploymentSpec<'a>>,
    #[serde(default, borrow)]
    status: Option<DeploymentStatus<'a>>,
}

#[derive(Deserialize)]
struct DeploymentSpec<'a> {
    #[serde(default)]
    replicas: Option<i32>,
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    strategy: Option<DeploymentStrategy>,
    #[serde(default, borrow)]
    template: Option<Template<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentStrategy {
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    rolling_update: Option<RollingUpdate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RollingUpdate {
    #[serde(default)]
    max_unavailable: Option<IntOrString>,
    #[serde(default)]
    max_surge: Option<IntOrString>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentStatus<'a> {
    #[serde(default)]
    observed_generation: Option<i64>,
    #[serde(default)]
    replicas: Option<i32>,
    #[serde(default)]
    updated_replicas: Option<i32>,
    #[serde(default)]
    ready_replicas: Option<i32>,
    #[serde(default)]
    available_replicas: Option<i32>,
    #[serde(default)]
    unavailable_replicas: Option<i32>,
    #[serde(default, borrow)]
    conditions: Option<Vec<Condition<'a>>>,
}

impl LeanDeployment<'_> {
    fn facts(
        self,
        control_plane_namespace: &str,
        interner: &Interner,
    ) -> (DeploymentInfo, Option<Box<IstiodInfo>>) {
        let mut meta = self.metadata.unwrap_or_default();
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        let template = spec.and_then(|s| s.template.as_ref());
        let namespace = meta.shared_namespace(interner);
        let labels = meta.labels(interner);
        let generation = meta.generation.unwrap_or(0);
        let observed_generation = status.and_then(|s| s.observed_generation).unwrap_or(0);
        let desired = spec.and_then(|s| s.replicas).unwrap_or(1);
        let name = meta.shared_name();
        let annotations = meta.annotations();
        let istiod =
            IstiodInfo::is_istiod_by(&namespace, &labels, control_plane_namespace).then(|| {
                let containers = template.map(Template::containers).unwrap_or_default();
                let container = containers
                    .iter()
                    .find(|c| c.name.as_str() == "discovery")
                    .or_else(|| containers.first());
                IstiodInfo {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    revision: labels
                        .get("istio.io/rev")
                        .filter(|r| !r.is_empty())
                        .unwrap_or("default")
                        .to_string(),
                    labels: labels.to_labels(),
                    template_labels: template
                        .map(|t| t.labels(interner).to_labels())
                        .unwrap_or_default(),
                    image: container
                        .and_then(|c| c.image.as_ref())
                        .map(|i| i.as_str().to_string())
                        .unwrap_or_default(),
                    env: container
                        .and_then(|c| c.env.as_ref())
                        .map(|env| {
                            env.iter()
                                .filter_map(|e| {
                                    Some((
                                        e.name.as_str().to_string(),
                                        e.value.as_ref()?.as_str().to_string(),
                                    ))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    generation,
                    observed_generation,
                    desired,
                    ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
                    available: status.and_then(|s| s.available_replicas).unwrap_or(0),
                    updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
                    helm_release: helm_release_from(annotations.as_ref(), &namespace),
                }
            });
        let rolling = spec
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.rolling_update.as_ref());
        let deployment = DeploymentInfo {
            namespace,
            name,
            uid: meta.shared_uid(),
            labels,
            generation,
            observed_generation,
            desired,
            replicas: status.and_then(|s| s.replicas).unwrap_or(0),
            updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            unavailable: status.and_then(|s| s.unavailable_replicas).unwrap_or(0),
            paused: spec.and_then(|s| s.paused).unwrap_or(false),
            strategy: spec
                .and_then(|s| s.strategy.as_ref())
                .and_then(|s| s.type_.clone())
                .unwrap_or_else(|| "RollingUpdate".to_string()),
            max_unavailable: rolling
                .and_then(|r| r.max_unavailable.as_ref())
                .map(int_or_string),
            max_surge: rolling
                .and_then(|r| r.max_surge.as_ref())
                .map(int_or_string),
            progress_deadline_exceeded: status.and_then(|s| s.conditions.as_ref()).is_some_and(
                |cs| {
                    cs.iter().any(|c| {
                        c.type_.as_str() == "Progressing"
                            && c.reason.as_ref().map(Str::as_str)
                                == Some("ProgressDeadlineExceeded")
                    })
                },
            ),
            template: Shared::new(template.map(|t| t.info(interner)).unwrap_or_default()),
        };
        // Boxed: of 45,000 Deployments two are istiods, and the others'
        // `None`s would each take an istiod's room while the pages are read.
        (deployment, istiod.map(Box::new))
    }
}

#[derive(Deserialize)]
struct LeanStatefulSet<'a> {
    #[serde(default, borrow)]
    metadata: Option<Meta<'a, NoAnnotations>>,
    #[serde(default, borrow)]
    spec: Option<StatefulSetSpec<'a>>,
    #[serde(default)]
    status: Option<StatefulSetStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatefulSetSpec<'a> {
    #[serde(default)]
    replicas: Option<i32>,
    #[serde(default)]
    update_strategy: Option<StatefulSetStrategy>,
    #[serde(default, borrow)]
    template: Option<Template<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatefulSetStrategy {
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    rolling_update: Option<Partition>,
}

#[derive(Deserialize)]
struct Partition {
    #[serde(default)]
    partition: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatefulSetStatus {
    #[serde(default)]
    observed_generation: Option<i64>,
    #[serde(default)]
    replicas: i32,
    #[serde(default)]
    ready_replicas: Option<i32>,
    #[serde(default)]
    available_replicas: Option<i32>,
    #[serde(default)]
    current_replicas: Option<i32>,
    #[serde(default)]
    updated_replicas: Option<i32>,
    #[serde(default)]
    current_revision: Option<String>,
    #[serde(default)]
    update_revision: Option<String>,
}

impl LeanStatefulSet<'_> {
    fn info(self, interner: &Interner) -> StatefulSetInfo {
        let mut meta = self.metadata.unwrap_or_default();
        let spec = self.spec.as_ref();
        let status = self.status;
        let strategy = spec.and_then(|s| s.update_strategy.as_ref());
        StatefulSetInfo {
            namespace: meta.namespace(),
            name: meta.name(),
            uid: meta.uid(),
            labels: meta.labels(interner),
            generation: meta.generation.unwrap_or(0),
            observed_generation: status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0),
            desired: spec.and_then(|s| s.replicas).unwrap_or(1),
            replicas: status.as_ref().map(|s| s.replicas).unwrap_or(0),
            ready: status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0),
            available: status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0),
            current: status
                .as_ref()
                .and_then(|s| s.current_replicas)
                .unwrap_or(0),
            updated: status
                .as_ref()
                .and_then(|s| s.updated_replicas)
                .unwrap_or(0),
            current_revision: status.as_ref().and_then(|s| s.current_revision.clone()),
            update_revision: status.and_then(|s| s.update_revision),
            update_strategy: strategy
                .and_then(|s| s.type_.clone())
                .unwrap_or_else(|| "RollingUpdate".to_string()),
            partition: strategy
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0),
            template: Shared::new(
                spec.and_then(|s| s.template.as_ref())
                    .map(|t| t.info(interner))
                    .unwrap_or_default(),
            ),
        }
    }
}

#[derive(Deserialize)]
struct LeanDaemonSet<'a> {
    #[serde(default, borrow)]
    metadata: Option<Meta<'a, DaemonSetAnnotations>>,
    #[serde(default, borrow)]
    spec: Option<DaemonSetSpec<'a>>,
    #[serde(default)]
    status: Option<DaemonSetStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DaemonSetSpec<'a> {
    #[serde(default)]
    update_strategy: Option<DaemonSetStrategy>,
    #[serde(default, borrow)]
    template: Option<Template<'a>>,
}

#[derive(Deserialize)]
struct DaemonSetStrategy {
    #[serde(default, rename = "type")]
    type_: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DaemonSetStatus {
    #[serde(default)]
    observed_generation: Option<i64>,
    #[serde(default)]
    desired_number_scheduled: i32,
    #[serde(default)]
    current_number_scheduled: i32,
    #[serde(default)]
    updated_number_scheduled: Option<i32>,
    #[serde(default)]
    number_ready: i32,
    #[serde(default)]
    number_available: Option<i32>,
    #[serde(default)]
    number_unavailable: Option<i32>,
}

impl LeanDaemonSet<'_> {
    fn info(self, interner: &Interner) -> DaemonSetInfo {
        let mut meta = self.metadata.unwrap_or_default();
        let spec = self.spec.as_ref();
        let status = self.status.as_ref();
        let labels = meta.labels(interner);
        let annotations = meta.annotations();
        let data_plane = spec.and_then(|s| s.template.as_ref()).and_then(|t| {
            // The template's labels say which component; its revision is the
            // DaemonSet's annotation (ztunnel) or label (istio-cni).
            t.metadata.as_ref()?.labels.as_ref()?;
            let revision = data_plane_revision(annotations.as_ref(), &labels);
            t.spec.as_ref()?;
            let containers: Vec<DataPlaneContainer> = t
                .containers()
                .iter()
                .map(TemplateContainer::data_plane)
                .collect();
            DataPlaneFacts::from_parts(&t.labels(interner), revision, &containers)
        });
        DaemonSetInfo {
            namespace: meta.namespace(),
            name: meta.name(),
            uid: meta.uid(),
            labels,
            generation: meta.generation.unwrap_or(0),
            observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
            desired: status.map(|s| s.desired_number_scheduled).unwrap_or(0),
            current: status.map(|s| s.current_number_scheduled).unwrap_or(0),
            updated: status.and_then(|s| s.updated_number_scheduled).unwrap_or(0),
            ready: status.map(|s| s.number_ready).unwrap_or(0),
            available: status.and_then(|s| s.number_available).unwrap_or(0),
            unavailable: status.and_then(|s| s.number_unavailable).unwrap_or(0),
            update_strategy: spec
                .and_then(|s| s.update_strategy.as_ref())
                .and_then(|s| s.type_.clone())
                .unwrap_or_else(|| "RollingUpdate".to_string()),
            template: Shared::new(
                spec.and_then(|s| s.template.as_ref())
                    .map(|t| t.info(interner))
                    .unwrap_or_default(),
            ),
            data_plane,
        }
    }
}

#[derive(Deserialize)]
struct LeanPdb<'a> {
    #[serde(default, borrow)]
    metadata: Option<Meta<'a, NoAnnotations>>,
    #[serde(default)]
    spec: Option<PdbSpec>,
    #[serde(default)]
    status: Option<PdbStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PdbSpec {
    #[serde(default)]
    selector: Option<LabelSelector>,
    #[serde(default)]
    min_available: Option<IntOrString>,
    #[serde(default)]
    max_unavailable: Option<IntOrString>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PdbStatus {
    #[serde(default)]
    disruptions_allowed: i32,
    #[serde(default)]
    current_healthy: i32,
    #[serde(default)]
    desired_healthy: i32,
    #[serde(default)]
    expected_pods: i32,
}

impl From<LeanPdb<'_>> for PdbInfo {
    fn from(p: LeanPdb<'_>) -> Self {
        let mut meta = p.metadata.unwrap_or_default();
        let mut spec = p.spec;
        let selector = spec.as_mut().and_then(|s| s.selector.take());
        let spec = spec.as_ref();
        let status = p.status.as_ref();
        PdbInfo {
            namespace: meta.namespace(),
            name: meta.name(),
            selector: matcher(selector),
            min_available: spec
                .and_then(|s| s.min_available.as_ref())
                .map(int_or_string),
            max_unavailable: spec
                .and_then(|s| s.max_unavailable.as_ref())
                .map(int_or_string),
            disruptions_allowed: status.map(|s| s.disruptions_allowed).unwrap_or(0),
            current_healthy: status.map(|s| s.current_healthy).unwrap_or(0),
            desired_healthy: status.map(|s| s.desired_healthy).unwrap_or(0),
            expected_pods: status.map(|s| s.expected_pods).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests;
