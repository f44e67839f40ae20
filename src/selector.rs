//! The `-l/--selector` label selector: parsed once, checked locally, matched
//! client-side where the server cannot filter for us.
//!
//! The server filters workload LISTs by `-l` itself, but pods must be kept or
//! dropped by the workload that owns them (a Deployment labelled `app=cart`
//! may have pods labelled otherwise), and pods no restart can reach are matched
//! by their own labels. Both need the same selector the server understands,
//! so this follows the Kubernetes label selector grammar
//! (`k8s.io/apimachinery/pkg/labels`): `key`, `!key`, `key=v`, `key==v`,
//! `key!=v`, `key in (a,b)`, `key notin (a,b)`, `key>n`, `key<n`, joined by
//! commas. Parsing locally also turns a typo into a usage error before any
//! request is sent.

use std::fmt;

use crate::snapshot::LabelLookup;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    DoesNotExist(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

impl Requirement {
    fn matches(&self, labels: &(impl LabelLookup + ?Sized)) -> bool {
        match self {
            Requirement::Exists(k) => labels.label(k).is_some(),
            Requirement::DoesNotExist(k) => labels.label(k).is_none(),
            Requirement::Equals(k, v) => labels.label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => labels.label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => labels.label(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => labels.label(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
            Requirement::GreaterThan(k, n) => labels
                .label(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            Requirement::LessThan(k, n) => labels
                .label(k)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        }
    }
}

/// A parsed label selector; it keeps the text it came from to send it to the
/// server unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    text: String,
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parse `text`; the error says what is wrong in a short phrase.
    pub fn parse(text: &str) -> Result<Self, String> {
        let requirements = Parser { rest: text.trim() }.requirements()?;
        Ok(LabelSelector {
            text: text.trim().to_string(),
            requirements,
        })
    }

    /// Whether `labels` satisfy every requirement (an empty selector matches all).
    pub fn matches(&self, labels: &(impl LabelLookup + ?Sized)) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The selector as the user wrote it (trimmed), for the `labelSelector` query.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    fn requirements(&mut self) -> Result<Vec<Requirement>, String> {
        let mut out = Vec::new();
        if self.rest.is_empty() {
            return Ok(out);
        }
        loop {
            out.push(self.requirement()?);
            self.skip_spaces();
            if self.rest.is_empty() {
                return Ok(out);
            }
            if !self.eat(",") {
                return Err(format!("expected ',' before {:?}", self.rest));
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        self.skip_spaces();
        if self.eat("!") {
            let key = self.key()?;
            return Ok(Requirement::DoesNotExist(key));
        }
        let key = self.key()?;
        self.skip_spaces();
        if self.rest.is_empty() || self.rest.starts_with(',') {
            return Ok(Requirement::Exists(key));
        }
        if self.eat("!=") {
            return Ok(Requirement::NotEquals(key, self.value()?));
        }
        if self.eat("==") || self.eat("=") {
            return Ok(Requirement::Equals(key, self.value()?));
        }
        if self.eat(">") {
            return Ok(Requirement::GreaterThan(key, self.integer()?));
        }
        if self.eat("<") {
            return Ok(Requirement::LessThan(key, self.integer()?));
        }
        if self.eat_word("notin") {
            return Ok(Requirement::NotIn(key, self.value_set()?));
        }
        if self.eat_word("in") {
            return Ok(Requirement::In(key, self.value_set()?));
        }
        Err(format!(
            "expected an operator (=, ==, !=, in, notin, >, <) after {key:?}"
        ))
    }

    fn key(&mut self) -> Result<String, String> {
        self.skip_spaces();
        let len = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
            .unwrap_or(self.rest.len());
        let key = &self.rest[..len];
        validate_key(key)?;
        self.rest = &self.rest[len..];
        Ok(key.to_string())
    }

    fn value(&mut self) -> Result<String, String> {
        self.skip_spaces();
        let len = self
            .rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(self.rest.len());
        let value = &self.rest[..len];
        validate_value(value)?;
        self.rest = &self.rest[len..];
        Ok(value.to_string())
    }

    fn integer(&mut self) -> Result<i64, String> {
        let value = self.value()?;
        value
            .parse()
            .map_err(|_| format!("{value:?} is not an integer"))
    }

    fn value_set(&mut self) -> Result<Vec<String>, String> {
        self.skip_spaces();
        if !self.eat("(") {
            return Err("expected '(' to start a set of values".to_string());
        }
        let mut values = Vec::new();
        loop {
            values.push(self.value()?);
            self.skip_spaces();
            if self.eat(")") {
                return Ok(values);
            }
            if !self.eat(",") {
                return Err("expected ',' or ')' in a set of values".to_string());
            }
        }
    }

    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, token: &str) -> bool {
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// Eat a keyword only when it is followed by a space or `(`.
    fn eat_word(&mut self, word: &str) -> bool {
        match self.rest.strip_prefix(word) {
            Some(rest) if rest.starts_with([' ', '(']) => {
                self.rest = rest;
                true
            }
            _ => false,
        }
    }
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters that starts and ends alphanumeric.
fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("expected a label key".to_string());
    }
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !valid {
            return Err(format!(
                "{key:?} has an invalid prefix (a DNS subdomain is expected before '/')"
            ));
        }
    }
    if !is_label_name(name) {
        return Err(format!(
            "{key:?} is not a valid label key (at most 63 characters: letters, digits, '-', '_', '.', starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// A value in a selector: empty (`app=`) or a label value.
fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Ok(())
    } else {
        validate_label_value(value)
    }
}

/// Check a label value to be set as the API server would (at most 63
/// characters of alphanumerics, `-`, `_` and `.`, starting and ending
/// alphanumeric; not empty, since a flag such as `--to` names one), so a typo
/// is a usage error before anything is read. The one label-value check: the
/// selector parser and `gateway-switch --to` both use it.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a valid label value (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
        ))
    }
}

fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_and_inequality_match_like_kubectl() {
        let s = LabelSelector::parse("app=cart,tier!=cache").unwrap();
        assert!(s.matches(&labels(&[("app", "cart")])));
        assert!(s.matches(&labels(&[("app", "cart"), ("tier", "web")])));
        assert!(!s.matches(&labels(&[("app", "cart"), ("tier", "cache")])));
        assert!(!s.matches(&labels(&[("app", "pay")])));
        assert!(
            LabelSelector::parse("app==cart")
                .unwrap()
                .matches(&labels(&[("app", "cart")]))
        );
    }

    #[test]
    fn set_and_existence_requirements_match() {
        let s = LabelSelector::parse("env in (prod, stage), !legacy, team, tier notin (cache)")
            .unwrap();
        assert!(s.matches(&labels(&[("env", "prod"), ("team", "a")])));
        assert!(!s.matches(&labels(&[("env", "dev"), ("team", "a")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("team", "a"), ("legacy", "")])));
        assert!(!s.matches(&labels(&[("env", "prod")])));
        assert!(!s.matches(&labels(&[
            ("env", "prod"),
            ("team", "a"),
            ("tier", "cache")
        ])));
    }

    #[test]
    fn numeric_comparisons_need_integer_labels() {
        let s = LabelSelector::parse("replicas>2").unwrap();
        assert!(s.matches(&labels(&[("replicas", "3")])));
        assert!(!s.matches(&labels(&[("replicas", "2")])));
        assert!(!s.matches(&labels(&[("replicas", "x")])));
    }

    #[test]
    fn prefixed_keys_and_empty_values_are_valid() {
        let s = LabelSelector::parse("istio.io/rev=1-22-3,sidecar.istio.io/inject=").unwrap();
        assert!(s.matches(&labels(&[
            ("istio.io/rev", "1-22-3"),
            ("sidecar.istio.io/inject", "")
        ])));
    }

    #[test]
    fn a_label_value_is_checked_as_the_api_server_checks_it() {
        for good in ["1-22-3", "v1.22.3", "a", "A_b.c-9", &"x".repeat(63)] {
            assert_eq!(validate_label_value(good), Ok(()), "{good}");
        }
        for bad in ["", "-1-22", "1-22-", "1/22", "rev 1", &"x".repeat(64)] {
            let err = validate_label_value(bad).unwrap_err();
            assert!(err.contains("is not a valid label value"), "{bad}: {err}");
        }
        // In a selector an empty value is allowed; a malformed one is not,
        // with the same sentence.
        assert!(LabelSelector::parse("app=").is_ok());
        let err = LabelSelector::parse("app=-x").unwrap_err();
        assert!(err.contains("is not a valid label value"), "{err}");
    }

    #[test]
    fn an_empty_selector_matches_everything() {
        assert!(
            LabelSelector::parse("")
                .unwrap()
                .matches(&labels(&[("a", "b")]))
        );
    }

    #[test]
    fn malformed_selectors_are_rejected_with_a_reason() {
        for bad in [
            "app=cart,",
            "=cart",
            "app=(cart",
            "env in prod",
            "env in (prod",
            "app=ca rt",
            "-app=x",
            "a=b=c",
            "app=cart!",
        ] {
            let err = LabelSelector::parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad}");
        }
    }

    #[test]
    fn the_text_is_kept_for_the_server() {
        assert_eq!(
            LabelSelector::parse(" app=cart ").unwrap().as_str(),
            "app=cart"
        );
    }
}
