//! Label and field selectors (first version: full parser follows).

use std::collections::BTreeMap;

use kube_core::{Expression, SelectorExt};
use serde_json::Value;

/// A parsed `labelSelector` query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelectorExpr {
    expressions: Vec<Expression>,
}

impl LabelSelectorExpr {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.expressions.iter().all(|e| e.matches(labels))
    }
    pub fn is_empty(&self) -> bool {
        self.expressions.is_empty()
    }
}

pub fn parse_label_selector(s: &str) -> Result<LabelSelectorExpr, String> {
    let mut expressions = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((k, v)) = part.split_once("!=") {
            expressions.push(Expression::NotEqual(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = part.split_once('=') {
            let v = v.strip_prefix('=').unwrap_or(v);
            expressions.push(Expression::Equal(k.trim().into(), v.trim().into()));
        } else if let Some(k) = part.strip_prefix('!') {
            expressions.push(Expression::DoesNotExist(k.trim().into()));
        } else {
            expressions.push(Expression::Exists(part.into()));
        }
    }
    Ok(LabelSelectorExpr { expressions })
}

pub fn label_selector_matches(
    selector: &Value,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    let _ = (selector, labels);
    Ok(true)
}

pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A parsed `fieldSelector` query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelectorExpr {
    requirements: Vec<(String, bool, String)>,
}

impl FieldSelectorExpr {
    pub fn matches(&self, obj: &Value) -> bool {
        let _ = obj;
        self.requirements.is_empty()
    }
}

pub fn parse_field_selector(s: &str) -> Result<FieldSelectorExpr, String> {
    let _ = s;
    Ok(FieldSelectorExpr::default())
}
