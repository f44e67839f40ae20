//! The Gateway API part of the read: one LIST of Gateways (over the same
//! namespaces as the other namespaced kinds) and one of GatewayClasses,
//! alongside the other LISTs.
//!
//! The kinds are CRDs a cluster may not have. A Gateway LIST answered 404
//! means "not installed": the snapshot says so and nothing else changes. A
//! forbidden LIST (the role predates this plugin version) is a warning and
//! an unreadable kind, like PodDisruptionBudgets; any other failure fails
//! the read. A cluster that has Gateways but no GatewayClass CRD (or hides
//! the classes) still works: the builtin class names are known.
//!
//! Each LIST that answered records its position, so `status --watch`
//! watches Gateways and GatewayClasses from there; a kind that answered 404
//! or was refused has none and is not watched.

use crate::api::{ApiClient, ListScope, ListSelector};
use crate::error::{is_forbidden, is_not_served};
use crate::snapshot::decode;
use crate::snapshot::gateway_api::{
    Gateway, GatewayApiSnapshot, GatewayClass, GatewayClassInfo, GatewayInfo,
};

use super::{CollectOptions, ListKind, ListPlan, Positions, Unreadable, list_namespaced};

/// The warning when Gateways may not be listed.
const GATEWAYS_UNREADABLE: &str = "Gateways (gateway.networking.k8s.io) could not be read, so Gateway API gateways and waypoints are not shown";

/// LIST Gateways and GatewayClasses, concurrently.
pub(super) async fn list(
    api: &ApiClient,
    options: &CollectOptions,
    positions: &Positions,
) -> anyhow::Result<(GatewayApiSnapshot, Vec<Unreadable>, Vec<String>)> {
    let plan = ListPlan::for_selection(&options.scope, &options.control_plane_namespace);
    let all = ListSelector::everything();
    let (gateways, classes) = tokio::join!(
        list_namespaced::<Gateway, _>(
            api,
            (positions, ListKind::Gateways),
            &plan,
            &all,
            decode::typed(|g: Gateway| Some(GatewayInfo::from(&g))),
            |g| &g.namespace
        ),
        positions.list::<GatewayClass, _>(
            api,
            ListKind::GatewayClasses,
            &ListScope::All,
            &all,
            |c| Some(GatewayClassInfo::from(&c))
        ),
    );
    let mut unreadable = Vec::new();
    let mut warnings = Vec::new();
    let gateways = match gateways {
        Ok(gateways) => gateways,
        Err(err) if is_not_served(&err) => {
            // Not installed: the classes (should a cluster serve them
            // alone) are not kept, so not watched either.
            positions.forget(ListKind::GatewayClasses);
            return Ok((GatewayApiSnapshot::default(), unreadable, warnings));
        }
        Err(err) if is_forbidden(&err) => {
            warnings.push(format!("{GATEWAYS_UNREADABLE} ({err:#})"));
            unreadable.push(Unreadable {
                resource: "gateways",
                reason: format!("{err:#}"),
            });
            Vec::new()
        }
        Err(err) => return Err(err),
    };
    let classes = match classes {
        Ok(classes) => classes,
        Err(err) if is_not_served(&err) || is_forbidden(&err) => Vec::new(),
        Err(err) => return Err(err),
    };
    Ok((
        GatewayApiSnapshot {
            installed: true,
            gateways,
            classes,
        },
        unreadable,
        warnings,
    ))
}
