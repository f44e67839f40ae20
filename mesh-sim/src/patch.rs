//! Patches in the four content types the API server accepts (first version).

use serde_json::Value;

use crate::error::ApiError;

/// The patch content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

pub fn apply_patch(
    patch_type: PatchType,
    current: &Value,
    body: &[u8],
    kind: &str,
    field_manager: Option<&str>,
    force: bool,
) -> Result<Value, ApiError> {
    let _ = (kind, field_manager, force);
    let mut result = current.clone();
    match patch_type {
        PatchType::Json => {
            let ops: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            json_patch::patch(&mut result, &ops).map_err(|e| ApiError::invalid(kind, "", e))?;
        }
        PatchType::Apply => {
            let applied: Value =
                serde_yaml::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            json_patch::merge(&mut result, &applied);
        }
        PatchType::Merge | PatchType::Strategic => {
            let p: Value =
                serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
            json_patch::merge(&mut result, &p);
        }
    }
    Ok(result)
}
