//! Kubeconfig files pointing at a running simulated cluster.
//!
//! One file per user: the admin's is written at start, restricted users get
//! their own (same cluster, another token). Each selects a context named
//! `mesh-sim` with namespace `default`, so `KUBECONFIG=<file> kubectl ...` and
//! the plugin need no other flags.

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use serde_json::json;

/// The context (and cluster) name every generated kubeconfig uses.
pub const CONTEXT: &str = "mesh-sim";

/// The kubeconfig document, as YAML text.
pub fn render(server_url: &str, ca_pem: &str, user: &str, token: &str) -> String {
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{
            "name": CONTEXT,
            "cluster": {"server": server_url, "certificate-authority-data": ca_data},
        }],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{
            "name": CONTEXT,
            "context": {"cluster": CONTEXT, "user": user, "namespace": "default"},
        }],
        "current-context": CONTEXT,
    });
    serde_yaml::to_string(&doc).expect("a JSON document always renders as YAML")
}

/// Writes the kubeconfig to `path` (readable by the owner only, as it holds a token).
pub fn write(
    path: &Path,
    server_url: &str,
    ca_pem: &str,
    user: &str,
    token: &str,
) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, render(server_url, ca_pem, user, token))
        .with_context(|| format!("writing the kubeconfig {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting permissions of {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_selects_the_mesh_sim_context_with_the_token() {
        let text = render("https://127.0.0.1:1234", "PEM", "admin", "secret");
        let doc: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(doc["current-context"], "mesh-sim");
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:1234"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(doc["users"][0]["user"]["token"], "secret");
        assert_eq!(doc["contexts"][0]["context"]["namespace"], "default");
    }
}
