//! Label and field selectors, parsed and matched the way the API server does.
//!
//! Three kinds of selector reach the simulator:
//!
//! - the `labelSelector` query parameter of a list or watch: a string such as
//!   `app=web,tier notin (db),!canary`, parsed by [`parse_label_selector`];
//! - structured `LabelSelector` objects inside other objects (a Deployment's
//!   `spec.selector`, a PDB's `spec.selector`, a webhook's `namespaceSelector`
//!   and `objectSelector`), matched by [`label_selector_matches`];
//! - the `fieldSelector` query parameter, parsed by [`parse_field_selector`].
//!
//! Matching is delegated to `kube_core::Selector`/`Expression` so that the
//! simulator and the plugin (which builds its selectors with kube-core) agree
//! on semantics. Parsing the query string is ours: kube-core only renders
//! selectors, it does not parse them, and the API server's answer to a bad
//! selector (`unable to parse requirement: ...`) is part of what `kubectl`
//! shows users, so the grammar and the wording follow the API server's.
//!
//! The string grammar, as the API server accepts it:
//!
//! ```text
//! selector    := requirement ("," requirement)*
//! requirement := ["!"] KEY [ ("in" | "notin") "(" VALUE ("," VALUE)* ")"
//!                          | ("=" | "==" | "!=" | ">" | "<") VALUE ]
//! ```
//!
//! Whitespace separates tokens and is otherwise ignored. `!=` and `notin`
//! match objects that do not carry the key at all, as in Kubernetes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube_core::{Expression, Selector, SelectorExt};
use serde_json::Value;

/// The longest label name (the part after an optional `prefix/`) and value.
const MAX_LABEL_NAME_LEN: usize = 63;
/// The longest DNS subdomain, used for label key prefixes.
const MAX_DNS_SUBDOMAIN_LEN: usize = 253;

// ---------------------------------------------------------------------------
// Label selector strings
// ---------------------------------------------------------------------------

/// A parsed `labelSelector` query string: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelectorExpr {
    requirements: Vec<Requirement>,
}

/// One requirement of a selector string. The set-based and equality
/// operators are kube-core's; `>` and `<` (which the API server also accepts
/// and kube-core does not model) are kept alongside.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Expression(Expression),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Expression(expression) => expression.matches(labels),
            Requirement::GreaterThan(key, bound) => {
                label_as_integer(labels, key).is_some_and(|v| v > *bound)
            }
            Requirement::LessThan(key, bound) => {
                label_as_integer(labels, key).is_some_and(|v| v < *bound)
            }
        }
    }
}

fn label_as_integer(labels: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    labels.get(key)?.parse().ok()
}

impl LabelSelectorExpr {
    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// An empty selector (an empty or blank query string) selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements as kube-core expressions, when every one of them can
    /// be expressed so (`>` and `<` cannot).
    pub fn to_kube_selector(&self) -> Option<Selector> {
        self.requirements
            .iter()
            .map(|r| match r {
                Requirement::Expression(e) => Some(e.clone()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Selector::from_iter)
    }
}

impl fmt::Display for LabelSelectorExpr {
    /// The selector in query-string form (`a=b,c notin (d),!e`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match requirement {
                Requirement::Expression(e) => write!(f, "{e}")?,
                Requirement::GreaterThan(k, v) => write!(f, "{k}>{v}")?,
                Requirement::LessThan(k, v) => write!(f, "{k}<{v}")?,
            }
        }
        Ok(())
    }
}

/// Parses a `labelSelector` query string.
///
/// The error is worded as the API server words it (without the server's
/// `Unable to find ... that match label selector` wrapper, which the caller
/// adds), e.g. `unable to parse requirement: found 'b', expected: in, notin,
/// =, ==, !=, gt, lt`.
pub fn parse_label_selector(s: &str) -> Result<LabelSelectorExpr, String> {
    let tokens = lex(s);
    let mut parser = Parser {
        tokens,
        position: 0,
    };
    let requirements = parser.parse_selector()?;
    Ok(LabelSelectorExpr { requirements })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Identifier,
    /// `in`; an identifier where a value is expected.
    In,
    /// `notin`; an identifier where a value is expected.
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    /// `!` before a key.
    Not,
    Comma,
    OpenParen,
    CloseParen,
    End,
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    text: String,
}

fn is_selector_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_selector_symbol(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

/// Splits a selector string into tokens. Identifiers run until whitespace or
/// an operator character, so `a b` is two identifiers and `a/b=c` is `a/b`,
/// `=`, `c`; validation of what an identifier contains comes later.
fn lex(s: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if is_selector_whitespace(c) {
            chars.next();
            continue;
        }
        if is_selector_symbol(c) {
            chars.next();
            let two = chars.peek().map(|&next| (c, next));
            let (kind, text) = match two {
                Some(('!', '=')) => (TokenKind::NotEquals, "!="),
                Some(('=', '=')) => (TokenKind::DoubleEquals, "=="),
                _ => match c {
                    '!' => (TokenKind::Not, "!"),
                    '=' => (TokenKind::Equals, "="),
                    '(' => (TokenKind::OpenParen, "("),
                    ')' => (TokenKind::CloseParen, ")"),
                    ',' => (TokenKind::Comma, ","),
                    '>' => (TokenKind::GreaterThan, ">"),
                    _ => (TokenKind::LessThan, "<"),
                },
            };
            if text.len() == 2 {
                chars.next();
            }
            tokens.push(Token {
                kind,
                text: text.to_string(),
            });
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if is_selector_whitespace(c) || is_selector_symbol(c) {
                break;
            }
            word.push(c);
            chars.next();
        }
        let kind = match word.as_str() {
            "in" => TokenKind::In,
            "notin" => TokenKind::NotIn,
            _ => TokenKind::Identifier,
        };
        tokens.push(Token { kind, text: word });
    }
    tokens.push(Token {
        kind: TokenKind::End,
        text: String::new(),
    });
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

/// Where a token is read: `in` and `notin` are operators after a key and
/// plain words where a key or a value is expected (`x in (in)` is valid).
#[derive(Clone, Copy)]
enum Context {
    Operator,
    Word,
}

impl Parser {
    fn peek(&self, context: Context) -> (TokenKind, &str) {
        // The lexer always ends with `End`, and the parser stops there.
        let token = &self.tokens[self.position.min(self.tokens.len() - 1)];
        (Self::in_context(token.kind, context), &token.text)
    }

    fn next(&mut self, context: Context) -> (TokenKind, String) {
        let (kind, text) = self.peek(context);
        let text = text.to_string();
        if self.position < self.tokens.len() - 1 {
            self.position += 1;
        }
        (kind, text)
    }

    fn in_context(kind: TokenKind, context: Context) -> TokenKind {
        match (kind, context) {
            (TokenKind::In | TokenKind::NotIn, Context::Word) => TokenKind::Identifier,
            _ => kind,
        }
    }

    fn parse_selector(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (kind, text) = self.peek(Context::Word);
            match kind {
                TokenKind::End => return Ok(requirements),
                TokenKind::Identifier | TokenKind::Not => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (kind, text) = self.next(Context::Word);
                    match kind {
                        TokenKind::End => return Ok(requirements),
                        TokenKind::Comma => {
                            let (kind, text) = self.peek(Context::Word);
                            if kind != TokenKind::Identifier && kind != TokenKind::Not {
                                return Err(format!(
                                    "found '{text}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{text}', expected: ',' or 'end of string'"
                            ));
                        }
                    }
                }
                _ => {
                    return Err(format!(
                        "found '{text}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (mut kind, mut key) = self.next(Context::Word);
        let negated = kind == TokenKind::Not;
        if negated {
            (kind, key) = self.next(Context::Word);
        }
        if kind != TokenKind::Identifier {
            return Err(format!("found '{key}', expected: identifier"));
        }
        validate_label_key(&key)
            .map_err(|why| format!("<nil>: Invalid value: \"{key}\": {why}"))?;
        let (after_key, _) = self.peek(Context::Word);
        // `!key` takes no operator: whatever follows it is left for the
        // caller, which expects a comma or the end, as the API server does.
        if negated {
            return Ok(Requirement::Expression(Expression::DoesNotExist(key)));
        }
        if matches!(after_key, TokenKind::End | TokenKind::Comma) {
            return Ok(Requirement::Expression(Expression::Exists(key)));
        }
        let (operator, text) = self.next(Context::Operator);
        let values = match operator {
            TokenKind::In | TokenKind::NotIn => self.parse_value_set()?,
            TokenKind::Equals
            | TokenKind::DoubleEquals
            | TokenKind::NotEquals
            | TokenKind::GreaterThan
            | TokenKind::LessThan => BTreeSet::from([self.parse_exact_value()?]),
            _ => {
                return Err(format!(
                    "found '{text}', expected: in, notin, =, ==, !=, gt, lt"
                ));
            }
        };
        let errors: Vec<String> = values
            .iter()
            .enumerate()
            .filter_map(|(i, value)| {
                validate_label_value(value)
                    .err()
                    .map(|why| format!("values[{i}][{key}]: Invalid value: \"{value}\": {why}"))
            })
            .collect();
        if !errors.is_empty() {
            return Err(aggregate(errors));
        }
        let single = || values.iter().next().cloned().unwrap_or_default();
        Ok(match operator {
            TokenKind::In => Requirement::Expression(Expression::In(key, values)),
            TokenKind::NotIn => Requirement::Expression(Expression::NotIn(key, values)),
            TokenKind::NotEquals => Requirement::Expression(Expression::NotEqual(key, single())),
            TokenKind::GreaterThan | TokenKind::LessThan => {
                let value = single();
                let bound: i64 = value.parse().map_err(|_| {
                    format!(
                        "values[0]: Invalid value: \"{value}\": for 'Gt', 'Lt' operators, the value must be an integer"
                    )
                })?;
                if operator == TokenKind::GreaterThan {
                    Requirement::GreaterThan(key, bound)
                } else {
                    Requirement::LessThan(key, bound)
                }
            }
            _ => Requirement::Expression(Expression::Equal(key, single())),
        })
    }

    /// `( a, b )`; empty members are the empty value, so `()` and `(a,)` are
    /// valid and select objects whose label is empty.
    fn parse_value_set(&mut self) -> Result<BTreeSet<String>, String> {
        let (kind, text) = self.next(Context::Word);
        if kind != TokenKind::OpenParen {
            return Err(format!("found '{text}' expected: '('"));
        }
        let mut values = BTreeSet::new();
        let (kind, text) = self.peek(Context::Word);
        match kind {
            TokenKind::CloseParen => {
                self.next(Context::Word);
                values.insert(String::new());
                return Ok(values);
            }
            TokenKind::Identifier | TokenKind::Comma => {}
            _ => return Err(format!("found '{text}', expected: ',', ')' or identifier")),
        }
        // Alternate values and commas; a comma with no value before it (or
        // before the closing parenthesis) stands for the empty value.
        let mut expect_value = true;
        loop {
            let (kind, text) = self.next(Context::Word);
            match (kind, expect_value) {
                (TokenKind::Identifier, true) => {
                    values.insert(text);
                    expect_value = false;
                }
                (TokenKind::Comma, true) => {
                    values.insert(String::new());
                }
                (TokenKind::Comma, false) => expect_value = true,
                (TokenKind::CloseParen, expect_value) => {
                    if expect_value {
                        values.insert(String::new());
                    }
                    return Ok(values);
                }
                (_, true) => return Err(format!("found '{text}', expected: ',', or identifier")),
                (_, false) => return Err(format!("found '{text}', expected: ',' or ')'")),
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`; nothing (end or comma)
    /// is the empty value.
    fn parse_exact_value(&mut self) -> Result<String, String> {
        let (kind, _) = self.peek(Context::Word);
        if matches!(kind, TokenKind::End | TokenKind::Comma) {
            return Ok(String::new());
        }
        let (kind, text) = self.next(Context::Word);
        if kind == TokenKind::Identifier {
            Ok(text)
        } else {
            Err(format!("found '{text}', expected: identifier"))
        }
    }
}

/// Several field errors are shown as `[a, b]`, one as itself.
fn aggregate(errors: Vec<String>) -> String {
    if errors.len() == 1 {
        errors.into_iter().next().unwrap_or_default()
    } else {
        format!("[{}]", errors.join(", "))
    }
}

// ---------------------------------------------------------------------------
// Label key and value validation (Kubernetes' wording)
// ---------------------------------------------------------------------------

const QUALIFIED_NAME_MESSAGE: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const DNS_SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`: the shape of label names and
/// (when not empty) label values.
fn is_qualified_name_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// A lower-case RFC 1123 subdomain: dot-separated labels of `[a-z0-9-]`
/// that start and end with an alphanumeric.
fn is_dns_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                (first.is_ascii_lowercase() || first.is_ascii_digit())
                    && (last.is_ascii_lowercase() || last.is_ascii_digit())
                    && bytes
                        .iter()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            }
            _ => false,
        }
    })
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a
/// name of at most 63 characters. The error is Kubernetes' message.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else if prefix.len() > MAX_DNS_SUBDOMAIN_LEN {
                errors.push(format!(
                    "prefix part must be no more than {MAX_DNS_SUBDOMAIN_LEN} characters"
                ));
            } else if !is_dns_subdomain(prefix) {
                errors.push(format!("prefix part {DNS_SUBDOMAIN_MESSAGE}"));
            }
            *name
        }
        _ => {
            return Err(format!(
                "a qualified name {QUALIFIED_NAME_MESSAGE} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > MAX_LABEL_NAME_LEN {
        errors.push(format!(
            "name part must be no more than {MAX_LABEL_NAME_LEN} characters"
        ));
    }
    if !name.is_empty() && !is_qualified_name_part(name) {
        errors.push(format!("name part {QUALIFIED_NAME_MESSAGE}"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Checks a label value: empty, or at most 63 characters of the qualified
/// name shape. The error is Kubernetes' message.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    if value.len() > MAX_LABEL_NAME_LEN {
        errors.push(format!(
            "must be no more than {MAX_LABEL_NAME_LEN} characters"
        ));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(LABEL_VALUE_MESSAGE.to_string());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

// ---------------------------------------------------------------------------
// Structured LabelSelector objects
// ---------------------------------------------------------------------------

/// Whether a structured `LabelSelector` (`matchLabels` and
/// `matchExpressions` with `In`, `NotIn`, `Exists`, `DoesNotExist`) selects
/// an object with these labels.
///
/// An empty selector `{}` selects everything. A `null` selector selects
/// nothing, as `LabelSelectorAsSelector(nil)` does in Kubernetes. Whether an
/// *absent* selector means "everything" or "nothing" depends on the field,
/// so callers that read an optional field decide with
/// [`optional_label_selector_matches`]:
///
/// - webhooks: an absent `namespaceSelector` or `objectSelector` is
///   defaulted to `{}` by the API server, so it matches everything
///   ([`WhenAbsent::MatchEverything`]);
/// - PodDisruptionBudgets (policy/v1): a null `spec.selector` selects no pods
///   ([`WhenAbsent::MatchNothing`]); Services with no selector likewise get
///   no endpoints from the controller.
///
/// A malformed selector (unknown operator, `In` without values, `Exists`
/// with values, values that are not strings) is an error worded as
/// Kubernetes words it.
pub fn label_selector_matches(
    selector: &Value,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    if selector.is_null() {
        return Ok(false);
    }
    Ok(structured_selector(selector)?.matches(labels))
}

/// What an absent (or `null`) optional selector field means; see
/// [`label_selector_matches`] for which fields mean which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenAbsent {
    MatchEverything,
    MatchNothing,
}

/// [`label_selector_matches`] for a selector field that may be missing or
/// `null`, with the field's meaning of "absent" spelled out by the caller.
pub fn optional_label_selector_matches(
    selector: Option<&Value>,
    labels: &BTreeMap<String, String>,
    when_absent: WhenAbsent,
) -> Result<bool, String> {
    match selector {
        None | Some(Value::Null) => Ok(when_absent == WhenAbsent::MatchEverything),
        Some(selector) => label_selector_matches(selector, labels),
    }
}

/// Converts a structured selector to a kube-core `Selector`, after the
/// checks the API server makes when it turns one into a matcher (kube-core
/// accepts an `In` with no values, which Kubernetes rejects).
fn structured_selector(selector: &Value) -> Result<Selector, String> {
    let parsed: LabelSelector = serde_json::from_value(selector.clone())
        .map_err(|e| format!("invalid label selector: {e}"))?;
    for requirement in parsed.match_expressions.iter().flatten() {
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err("values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
                    .to_string());
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!(
                    "values: Invalid value: {values:?}: values set must be empty for exists and does not exist"
                ));
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => {
                return Err(format!(
                    "\"{other}\" is not a valid label selector operator"
                ));
            }
        }
    }
    Selector::try_from(parsed).map_err(|e| e.to_string())
}

/// A structured label selector as text (`app=web,tier in (a,b)`), as a
/// Scale's (or a Rollout's) `status.selector` carries it.
pub fn format_label_selector(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = selector.get("matchLabels").and_then(Value::as_object) {
        parts.extend(
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        );
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", values.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

/// `metadata.labels` of an object (empty when it has none). Non-string
/// values, which a valid object cannot have, are skipped.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    string_map_at(obj, "/metadata/labels")
}

/// `metadata.annotations` of an object (empty when it has none).
pub fn annotations_of(obj: &Value) -> BTreeMap<String, String> {
    string_map_at(obj, "/metadata/annotations")
}

fn string_map_at(obj: &Value, pointer: &str) -> BTreeMap<String, String> {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------

/// The field labels the simulator can select on: (kind, field label, path in
/// the object). `*` applies to every kind. These are the fields the API
/// server supports for the kinds served here that clients use (`kubectl
/// describe` lists a pod's events by `involvedObject.*`).
const FIELD_LABELS: &[(&str, &str, &str)] = &[
    ("*", "metadata.name", "metadata.name"),
    ("*", "metadata.namespace", "metadata.namespace"),
    ("Pod", "status.phase", "status.phase"),
    ("Pod", "spec.nodeName", "spec.nodeName"),
    ("Pod", "spec.restartPolicy", "spec.restartPolicy"),
    ("Pod", "spec.schedulerName", "spec.schedulerName"),
    ("Pod", "spec.serviceAccountName", "spec.serviceAccountName"),
    ("Pod", "spec.hostNetwork", "spec.hostNetwork"),
    ("Pod", "status.podIP", "status.podIP"),
    (
        "Pod",
        "status.nominatedNodeName",
        "status.nominatedNodeName",
    ),
    ("Event", "involvedObject.kind", "involvedObject.kind"),
    (
        "Event",
        "involvedObject.namespace",
        "involvedObject.namespace",
    ),
    ("Event", "involvedObject.name", "involvedObject.name"),
    ("Event", "involvedObject.uid", "involvedObject.uid"),
    (
        "Event",
        "involvedObject.apiVersion",
        "involvedObject.apiVersion",
    ),
    (
        "Event",
        "involvedObject.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    (
        "Event",
        "involvedObject.fieldPath",
        "involvedObject.fieldPath",
    ),
    ("Event", "reason", "reason"),
    ("Event", "reportingComponent", "reportingComponent"),
    ("Event", "source", "source.component"),
    ("Event", "type", "type"),
    ("Namespace", "status.phase", "status.phase"),
    ("Node", "spec.unschedulable", "spec.unschedulable"),
    ("ReplicaSet", "status.replicas", "status.replicas"),
    ("Job", "status.successful", "status.succeeded"),
    ("Secret", "type", "type"),
];

/// A parsed `fieldSelector` query string: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelectorExpr {
    requirements: Vec<FieldRequirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    /// The field label as the client wrote it (`metadata.name`).
    label: String,
    /// Where its value is in the object, dot-separated.
    path: &'static str,
    equals: bool,
    value: String,
}

impl FieldSelectorExpr {
    /// Whether the object is selected. A missing field compares as the
    /// empty string (an unscheduled pod matches `spec.nodeName=`).
    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements
            .iter()
            .all(|r| (field_value(obj, r.path) == r.value) == r.equals)
    }

    /// An empty selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value a requirement `label=value` (or `==`) demands, if there is
    /// one: lets a caller narrow a list to one namespace or name up front.
    pub fn required_value(&self, label: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.equals && r.label == label)
            .map(|r| r.value.as_str())
    }
}

/// The value of a field as the API server's field sets render it: strings as
/// they are, booleans and numbers in their JSON form, absent as `""`.
fn field_value(obj: &Value, path: &str) -> String {
    let mut node = obj;
    for segment in path.split('.') {
        match node.get(segment) {
            Some(child) => node = child,
            None => return String::new(),
        }
    }
    match node {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Parses a `fieldSelector` query string, accepting any field label the
/// simulator supports for some kind. Use [`parse_field_selector_for_kind`]
/// to reject labels the kind being listed does not support, as the API
/// server does.
pub fn parse_field_selector(s: &str) -> Result<FieldSelectorExpr, String> {
    parse_fields(s, None)
}

/// Parses a `fieldSelector` query string for a list of `kind`; a field label
/// that kind does not support is an error `field label not supported: x`.
pub fn parse_field_selector_for_kind(kind: &str, s: &str) -> Result<FieldSelectorExpr, String> {
    parse_fields(s, Some(kind))
}

fn parse_fields(s: &str, kind: Option<&str>) -> Result<FieldSelectorExpr, String> {
    let mut requirements = Vec::new();
    for term in split_unescaped(s, ',') {
        if term.trim().is_empty() {
            continue;
        }
        let (label, equals, raw_value) = split_field_term(&term)
            .ok_or_else(|| format!("invalid selector: '{s}'; can't understand '{term}'"))?;
        let label = label.trim();
        let value = unescape_field_value(raw_value.trim())
            .map_err(|why| format!("invalid field selector: '{s}'; {why}"))?;
        let path = FIELD_LABELS
            .iter()
            .find(|(k, l, _)| *l == label && (*k == "*" || kind.is_none_or(|kind| kind == *k)))
            .map(|(_, _, path)| *path)
            .ok_or_else(|| format!("field label not supported: {label}"))?;
        requirements.push(FieldRequirement {
            label: label.to_string(),
            path,
            equals,
            value,
        });
    }
    Ok(FieldSelectorExpr { requirements })
}

/// Splits on `separator` where it is not escaped with a backslash; escapes
/// are kept for [`unescape_field_value`].
fn split_unescaped(s: &str, separator: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == separator {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

/// Finds the first unescaped operator in a term: `!=`, `==` or `=`.
fn split_field_term(term: &str) -> Option<(&str, bool, &str)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                return Some((&term[..i], false, &term[i + 2..]));
            }
            b'=' if bytes.get(i + 1) == Some(&b'=') => {
                return Some((&term[..i], true, &term[i + 2..]));
            }
            b'=' => return Some((&term[..i], true, &term[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Field selector values escape `\`, `,`, `=` and `!` with a backslash.
fn unescape_field_value(raw: &str) -> Result<String, String> {
    let mut value = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c == '=' || c == ',' {
                return Err(format!("unescaped '{c}' in value '{raw}'"));
            }
            value.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('\\' | ',' | '=' | '!')) => value.push(e),
            Some(other) => {
                return Err(format!(
                    "invalid escape sequence '\\{other}' in value '{raw}'"
                ));
            }
            None => return Err(format!("unterminated escape at the end of value '{raw}'")),
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn selects(selector: &str, pairs: &[(&str, &str)]) -> bool {
        match parse_label_selector(selector) {
            Ok(parsed) => parsed.matches(&labels(pairs)),
            Err(e) => panic!("{selector:?} should parse: {e}"),
        }
    }

    fn parse_error(selector: &str) -> String {
        match parse_label_selector(selector) {
            Ok(parsed) => panic!("{selector:?} should not parse, got {parsed:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn equality_with_one_or_two_equals_signs_selects_the_same_objects() {
        assert!(selects("app=web", &[("app", "web")]));
        assert!(selects("app==web", &[("app", "web")]));
        assert!(!selects("app=web", &[("app", "db")]));
        assert!(!selects("app==web", &[]));
    }

    #[test]
    fn not_equals_selects_objects_without_the_key() {
        assert!(selects("app!=web", &[("app", "db")]));
        assert!(selects("app!=web", &[]));
        assert!(!selects("app!=web", &[("app", "web")]));
    }

    #[test]
    fn in_selects_only_objects_whose_value_is_listed() {
        assert!(selects("env in (prod,staging)", &[("env", "staging")]));
        assert!(!selects("env in (prod,staging)", &[("env", "dev")]));
        assert!(!selects("env in (prod,staging)", &[]));
    }

    #[test]
    fn notin_selects_objects_without_the_key() {
        assert!(selects("env notin (prod)", &[("env", "dev")]));
        assert!(selects("env notin (prod)", &[]));
        assert!(!selects("env notin (prod, staging)", &[("env", "staging")]));
    }

    #[test]
    fn a_bare_key_requires_it_and_a_bang_forbids_it() {
        assert!(selects("istio.io/rev", &[("istio.io/rev", "1-22")]));
        assert!(!selects("istio.io/rev", &[]));
        assert!(selects("!istio-injection", &[("app", "x")]));
        assert!(!selects(
            "!istio-injection",
            &[("istio-injection", "enabled")]
        ));
    }

    #[test]
    fn an_empty_value_is_a_value() {
        assert!(selects("tier=", &[("tier", "")]));
        assert!(!selects("tier=", &[]));
        assert!(selects("tier in ()", &[("tier", "")]));
        assert!(selects("tier in (a,)", &[("tier", "")]));
        assert!(selects("tier in (,a)", &[("tier", "a")]));
    }

    #[test]
    fn keywords_are_plain_values_inside_parentheses() {
        assert!(selects("x in (in,notin)", &[("x", "notin")]));
    }

    #[test]
    fn requirements_are_anded_and_whitespace_is_tolerated() {
        let selector = "  app = web ,tier notin( db ),  !canary,istio.io/rev in (1-22 , 1-23)  ";
        assert!(selects(
            selector,
            &[("app", "web"), ("tier", "front"), ("istio.io/rev", "1-23")]
        ));
        assert!(!selects(
            selector,
            &[("app", "web"), ("canary", "true"), ("istio.io/rev", "1-23")]
        ));
        assert!(!selects(
            selector,
            &[("app", "web"), ("istio.io/rev", "1-21")]
        ));
    }

    #[test]
    fn an_empty_selector_selects_everything() {
        for blank in ["", "   "] {
            let parsed = parse_label_selector(blank).expect("blank selector parses");
            assert!(parsed.is_empty());
            assert!(parsed.matches(&labels(&[("a", "b")])));
        }
        assert!(!parse_label_selector("a").expect("parses").is_empty());
    }

    #[test]
    fn greater_and_less_than_compare_integers() {
        assert!(selects("weight>5", &[("weight", "6")]));
        assert!(!selects("weight>5", &[("weight", "5")]));
        assert!(!selects("weight>5", &[("weight", "heavy")]));
        assert!(selects("weight<5", &[("weight", "-1")]));
        assert!(parse_error("weight>heavy").contains("the value must be an integer"));
    }

    #[test]
    fn a_selector_renders_back_to_its_query_form() {
        let parsed = parse_label_selector("a=b, c notin (e,d), !f, g").expect("parses");
        assert_eq!(parsed.to_string(), "a=b,c notin (d,e),!f,g");
        assert!(parsed.to_kube_selector().is_some());
    }

    #[test]
    fn two_words_without_an_operator_are_rejected_like_the_api_server_does() {
        assert_eq!(
            parse_error("app web"),
            "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt"
        );
    }

    #[test]
    fn an_invalid_key_is_rejected_with_kubernetes_wording() {
        let error = parse_error("-app=web");
        assert!(error.starts_with(
            "unable to parse requirement: <nil>: Invalid value: \"-app\": name part must consist of"
        ));
        let error = parse_error("Example.com/app=web");
        assert!(
            error.contains("prefix part a lowercase RFC 1123 subdomain"),
            "{error}"
        );
        let error = parse_error(&format!("{}=x", "k".repeat(64)));
        assert!(
            error.contains("name part must be no more than 63 characters"),
            "{error}"
        );
        assert!(parse_error("a/b/c").contains("a qualified name must consist"));
    }

    #[test]
    fn an_invalid_value_is_rejected_with_kubernetes_wording() {
        let error = parse_error("app=web/v2");
        assert!(error.starts_with("unable to parse requirement: values[0][app]: Invalid value: \"web/v2\": a valid label must be"), "{error}");
        assert!(
            parse_error(&format!("app={}", "v".repeat(64)))
                .contains("must be no more than 63 characters")
        );
    }

    #[test]
    fn malformed_selectors_say_what_was_expected() {
        assert_eq!(
            parse_error("a=b,"),
            "found '', expected: identifier after ','"
        );
        assert_eq!(
            parse_error(",a"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            parse_error("a in b"),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            parse_error("a in (b"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            parse_error("a=b c"),
            "found 'c', expected: ',' or 'end of string'"
        );
        assert_eq!(
            parse_error("a=(b)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            parse_error("!a=b"),
            "found '=', expected: ',' or 'end of string'"
        );
        assert_eq!(
            parse_error("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
    }

    #[test]
    fn a_structured_selector_matches_labels_and_expressions() {
        let selector = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "istio.io/rev", "operator": "In", "values": ["1-22", "1-23"]},
                {"key": "istio-injection", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "team", "operator": "Exists"}
            ]
        });
        let matching = labels(&[("app", "web"), ("istio.io/rev", "1-23"), ("team", "a")]);
        assert_eq!(label_selector_matches(&selector, &matching), Ok(true));
        let injected = labels(&[
            ("app", "web"),
            ("istio.io/rev", "1-23"),
            ("team", "a"),
            ("istio-injection", "enabled"),
        ]);
        assert_eq!(label_selector_matches(&selector, &injected), Ok(false));
        let other_app = labels(&[("app", "db"), ("istio.io/rev", "1-23"), ("team", "a")]);
        assert_eq!(label_selector_matches(&selector, &other_app), Ok(false));
    }

    #[test]
    fn an_empty_structured_selector_matches_everything_and_null_matches_nothing() {
        let any = labels(&[("a", "b")]);
        assert_eq!(label_selector_matches(&json!({}), &any), Ok(true));
        assert_eq!(
            label_selector_matches(&json!({}), &BTreeMap::new()),
            Ok(true)
        );
        assert_eq!(label_selector_matches(&Value::Null, &any), Ok(false));
    }

    #[test]
    fn an_absent_optional_selector_means_what_the_caller_says() {
        let any = labels(&[("a", "b")]);
        assert_eq!(
            optional_label_selector_matches(None, &any, WhenAbsent::MatchEverything),
            Ok(true)
        );
        assert_eq!(
            optional_label_selector_matches(Some(&Value::Null), &any, WhenAbsent::MatchNothing),
            Ok(false)
        );
        let selector = json!({"matchLabels": {"a": "c"}});
        assert_eq!(
            optional_label_selector_matches(Some(&selector), &any, WhenAbsent::MatchEverything),
            Ok(false)
        );
    }

    #[test]
    fn a_malformed_structured_selector_is_an_error() {
        let none = BTreeMap::new();
        let bad_operator =
            json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]});
        assert_eq!(
            label_selector_matches(&bad_operator, &none),
            Err("\"Equals\" is not a valid label selector operator".to_string())
        );
        let in_without_values =
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]});
        assert!(label_selector_matches(&in_without_values, &none).is_err());
        let exists_with_values =
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b"]}]});
        assert!(label_selector_matches(&exists_with_values, &none).is_err());
        assert!(label_selector_matches(&json!({"matchLabels": {"a": 1}}), &none).is_err());
    }

    #[test]
    fn labels_of_reads_metadata_labels_and_tolerates_their_absence() {
        let pod = json!({"metadata": {"labels": {"app": "web", "odd": 3}}});
        assert_eq!(labels_of(&pod), labels(&[("app", "web")]));
        assert!(labels_of(&json!({"metadata": {}})).is_empty());
        assert!(annotations_of(&json!({})).is_empty());
    }

    fn pod(name: &str, namespace: &str, phase: Option<&str>, node: Option<&str>) -> Value {
        let mut pod =
            json!({"metadata": {"name": name, "namespace": namespace}, "spec": {}, "status": {}});
        if let Some(phase) = phase {
            pod["status"]["phase"] = json!(phase);
        }
        if let Some(node) = node {
            pod["spec"]["nodeName"] = json!(node);
        }
        pod
    }

    #[test]
    fn field_selectors_match_name_namespace_phase_and_node() {
        let running = pod("web-1", "shop", Some("Running"), Some("node-1"));
        let pending = pod("web-2", "shop", Some("Pending"), None);
        let by_name = parse_field_selector("metadata.name=web-1").expect("parses");
        assert!(by_name.matches(&running) && !by_name.matches(&pending));
        let by_namespace = parse_field_selector("metadata.namespace==shop").expect("parses");
        assert!(by_namespace.matches(&running) && by_namespace.matches(&pending));
        let not_running =
            parse_field_selector("status.phase!=Running,metadata.namespace=shop").expect("parses");
        assert!(!not_running.matches(&running) && not_running.matches(&pending));
        let unscheduled = parse_field_selector("spec.nodeName=").expect("parses");
        assert!(!unscheduled.matches(&running) && unscheduled.matches(&pending));
        assert_eq!(
            by_namespace.required_value("metadata.namespace"),
            Some("shop")
        );
        assert_eq!(not_running.required_value("status.phase"), None);
    }

    #[test]
    fn an_empty_field_selector_selects_everything() {
        let parsed = parse_field_selector("").expect("parses");
        assert!(parsed.is_empty());
        assert!(parsed.matches(&pod("a", "b", None, None)));
    }

    #[test]
    fn an_unknown_field_label_is_named_in_the_error() {
        assert_eq!(
            parse_field_selector("spec.foo=bar"),
            Err("field label not supported: spec.foo".to_string())
        );
        assert_eq!(
            parse_field_selector_for_kind("Deployment", "status.phase=Running"),
            Err("field label not supported: status.phase".to_string())
        );
        assert!(parse_field_selector_for_kind("Pod", "status.phase=Running").is_ok());
    }

    #[test]
    fn a_field_term_without_an_operator_is_rejected() {
        assert_eq!(
            parse_field_selector("metadata.name"),
            Err("invalid selector: 'metadata.name'; can't understand 'metadata.name'".to_string())
        );
    }

    #[test]
    fn event_field_selectors_as_kubectl_describe_sends_them_work() {
        let event = json!({
            "metadata": {"name": "web-1.17", "namespace": "shop"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "shop", "uid": "u-1"},
            "source": {"component": "kubelet"},
            "type": "Normal"
        });
        let selector = parse_field_selector_for_kind(
            "Event",
            "involvedObject.name=web-1,involvedObject.namespace=shop,involvedObject.kind=Pod,involvedObject.uid=u-1",
        )
        .expect("parses");
        assert!(selector.matches(&event));
        assert!(
            parse_field_selector("source=kubelet")
                .expect("parses")
                .matches(&event)
        );
    }

    #[test]
    fn escaped_commas_stay_in_field_values() {
        let obj = json!({"metadata": {"name": "a,b"}});
        let parsed = parse_field_selector(r"metadata.name=a\,b").expect("parses");
        assert!(parsed.matches(&obj));
        assert!(parse_field_selector(r"metadata.name=a\x").is_err());
    }
}
