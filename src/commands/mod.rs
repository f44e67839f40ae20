//! One file per verb: the wiring from parsed flags to the API layer, the
//! model and the output. The work itself lives in `collect`, `mesh`,
//! `render` and `api`; these files stay short.

pub mod completion;
pub mod gateway_switch;
pub mod relabel;
pub mod restart_sidecars;
pub mod status;
pub mod version;

use crate::api::{ApiClient, ConnectOptions};
use crate::cli::GlobalArgs;
use crate::error::Error;
use crate::selector::LabelSelector;
use crate::snapshot::Scope;

/// The API client for the global flags.
pub async fn connect(global: &GlobalArgs) -> anyhow::Result<ApiClient> {
    ApiClient::connect(&ConnectOptions::from(global)).await
}

/// The namespaces selected: `-A`, the `-n` list (duplicates removed, order
/// kept), or the context's namespace.
pub fn selected_scope(global: &GlobalArgs, context_namespace: &str) -> Scope {
    if global.all_namespaces {
        return Scope::All;
    }
    if global.namespaces.is_empty() {
        return Scope::Namespaces(vec![context_namespace.to_string()]);
    }
    let mut names: Vec<String> = Vec::new();
    for name in &global.namespaces {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Scope::Namespaces(names)
}

/// The `-l` selector, parsed; a malformed one is a usage error before any
/// request is sent.
pub fn label_selector(global: &GlobalArgs) -> anyhow::Result<Option<LabelSelector>> {
    let Some(text) = global.selector.as_deref() else {
        return Ok(None);
    };
    LabelSelector::parse(text).map(Some).map_err(|reason| {
        Error::InvalidSelector {
            selector: text.to_string(),
            reason,
        }
        .into()
    })
}

/// Log the request counts at `-v`.
pub fn log_request_summary(api: &ApiClient) {
    tracing::info!("{}", api.stats().summary());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn global(args: &[&str]) -> GlobalArgs {
        let argv = std::iter::once("kubectl-mesh_upgrade")
            .chain(args.iter().copied())
            .chain(["status"]);
        Cli::parse_from(argv).global
    }

    #[test]
    fn without_flags_the_context_namespace_is_selected() {
        assert_eq!(
            selected_scope(&global(&[]), "team-a"),
            Scope::Namespaces(vec!["team-a".into()])
        );
    }

    #[test]
    fn a_namespace_list_keeps_its_order_without_duplicates() {
        assert_eq!(
            selected_scope(&global(&["-n", "shop,pay,shop"]), "default"),
            Scope::Namespaces(vec!["shop".into(), "pay".into()])
        );
        assert_eq!(selected_scope(&global(&["-A"]), "default"), Scope::All);
    }

    #[test]
    fn a_malformed_selector_is_a_usage_error() {
        let err = label_selector(&global(&["-l", "app=(x"])).unwrap_err();
        assert_eq!(
            crate::error::exit_code_of(&err),
            crate::error::ExitCode::Usage
        );
        assert!(
            err.to_string()
                .starts_with("invalid label selector \"app=(x\""),
            "{err}"
        );
        assert!(label_selector(&global(&["-l", "app=x"])).unwrap().is_some());
    }
}
