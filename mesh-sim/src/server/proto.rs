//! Kubernetes' protobuf encoding, both ways.
//!
//! Reading: the request bodies kubectl's typed clients send as
//! `application/vnd.kubernetes.protobuf`: `kubectl create namespace`,
//! `create deployment|configmap|secret|service|job|...`, `kubectl run`, and
//! the self-reviews behind `kubectl auth can-i` and `whoami`.
//!
//! Writing: the lists those typed clients ask for (`Accept:
//! application/vnd.kubernetes.protobuf, application/json`): `kubectl drain`,
//! `describe`, `rollout history`, ... A real API server answers them in
//! protobuf, so mesh-sim does too, for the kinds of [`schema`].
//!
//! A Kubernetes protobuf body is the magic `k8s\0` followed by a
//! `runtime.Unknown` message: field 1 the TypeMeta (apiVersion, kind), field
//! 2 the object's own message. [`object_from_body`] turns the object into the
//! JSON a client would have sent, using the field numbers and JSON names of
//! [`schema`] (generated from Kubernetes' .proto files and OpenAPI names).
//! Go's protobuf encoding writes every non-pointer field, set or not, so
//! zero scalars are dropped as JSON's `omitempty` would, except fields that
//! are pointers in Go, where zero is a value ([`KEEP_ZERO`]). Kinds outside
//! the schema are refused with 415 and a pointer to `kubectl create -f`.
//!
//! [`encode`] is the inverse: a stored object's JSON to its message, field by
//! field in number order as Go's marshaller writes them. It writes what the
//! JSON holds (a zero it holds is written: to a Go decoder that is the same
//! as leaving it out, and for a pointer field it is the value) and refuses a
//! key the schema does not know, so the caller answers that object in JSON
//! rather than drop a field. [`list_body`] wraps encoded items in a
//! `<Kind>List` and the envelope.

mod schema;

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// How one field's value becomes JSON.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    Int,
    Bool,
    /// Base64 in JSON.
    Bytes,
    /// `metav1.Time`/`MicroTime`: `{seconds, nanos}` -> RFC 3339.
    Time,
    /// `runtime.RawExtension`, `FieldsV1`: `{raw}` holding JSON.
    RawJson,
    /// `resource.Quantity`: `{string}` -> the string.
    Quantity,
    /// `intstr.IntOrString`: `{type, intVal, strVal}` -> a number or a string.
    IntOrString,
    StrMap,
    BytesMap,
    QuantityMap,
    TimeMap,
    Message(&'static Schema),
    MessageMap(&'static Schema),
}

/// One field of a message: its number on the wire and its JSON name (empty
/// for a Go struct embedded inline).
#[derive(Debug)]
pub struct Field {
    pub number: u32,
    pub json: &'static str,
    pub ty: Ty,
    pub repeated: bool,
}

/// A message type: the fields mesh-sim knows.
#[derive(Debug)]
pub struct Schema {
    pub name: &'static str,
    pub fields: &'static [Field],
}

/// Fields that are pointers in Go, so zero (or false) was set on purpose.
const KEEP_ZERO: &[&str] = &[
    "activeDeadlineSeconds",
    "allocateLoadBalancerNodePorts",
    "allowPrivilegeEscalation",
    "automountServiceAccountToken",
    "backoffLimit",
    "backoffLimitPerIndex",
    "completions",
    "defaultMode",
    "enableServiceLinks",
    "failedJobsHistoryLimit",
    "fsGroup",
    "gracePeriodSeconds",
    "hostUsers",
    "immutable",
    "maxFailedIndexes",
    "mode",
    "optional",
    "orphanDependents",
    "parallelism",
    "partition",
    "priority",
    "privileged",
    "readOnlyRootFilesystem",
    "replicas",
    "revisionHistoryLimit",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "suspend",
    "terminationGracePeriodSeconds",
    "ttlSecondsAfterFinished",
    "value",
];

/// Why a protobuf body could not be turned into JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not well-formed protobuf, or not what the schema says.
    Malformed(String),
    /// A kind (or a field with a value) outside [`schema`].
    Unsupported(String),
}

/// A protobuf body's envelope: the `k8s\0` magic, then a `runtime.Unknown`
/// whose `typeMeta` gives the `apiVersion` and `kind` of its `raw` message.
/// `what` names the body in the error (`body`, `list`).
fn envelope<'b>(
    body: &'b [u8],
    what: &str,
) -> Result<(Message<'b>, &'b str, &'b str), DecodeError> {
    let malformed = || DecodeError::Malformed(format!("the protobuf {what} could not be decoded"));
    let unknown =
        Message::parse(body.strip_prefix(b"k8s\0").ok_or_else(malformed)?).ok_or_else(malformed)?;
    let type_meta = unknown.message(1).unwrap_or_default();
    let api_version = type_meta.string(1).unwrap_or_default();
    let kind = type_meta.string(2).unwrap_or_default();
    Ok((unknown, api_version, kind))
}

/// The object of a Kubernetes protobuf body as JSON, `apiVersion` and `kind`
/// included.
pub fn object_from_body(body: &[u8]) -> Result<Value, DecodeError> {
    let (unknown, api_version, kind) = envelope(body, "body")?;
    let schema = schema_of(api_version, kind)
        .ok_or_else(|| DecodeError::Unsupported(format!("{kind} ({api_version}) in protobuf")))?;
    let mut object = decode(schema, unknown.bytes(2).unwrap_or_default())?;
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
}

/// A protobuf `<Kind>List` body (as [`list_body`] writes it) as JSON:
/// `apiVersion`, `kind`, `metadata` (`resourceVersion`, `continue`,
/// `remainingItemCount`) and the `items`, each as [`object_from_body`]
/// would read it but without `apiVersion` and `kind`, which list items in
/// protobuf do not carry.
pub fn list_from_body(body: &[u8]) -> Result<Value, DecodeError> {
    let malformed = || DecodeError::Malformed("the protobuf list could not be decoded".into());
    let (unknown, api_version, kind) = envelope(body, "list")?;
    let schema = kind
        .strip_suffix("List")
        .and_then(|item| schema_of(api_version, item))
        .ok_or_else(|| DecodeError::Unsupported(format!("{kind} ({api_version}) in protobuf")))?;
    let list = Message::parse(unknown.bytes(2).unwrap_or_default()).ok_or_else(malformed)?;
    let mut metadata = Map::new();
    let meta = list.message(1).unwrap_or_default();
    for (number, key) in [(2, "resourceVersion"), (3, "continue")] {
        if let Some(text) = meta.string(number).filter(|t| !t.is_empty()) {
            metadata.insert(key.into(), json!(text));
        }
    }
    if let Some(count) = meta.varint(4) {
        metadata.insert("remainingItemCount".into(), json!(count as i64));
    }
    let mut items = Vec::new();
    for (number, wire) in &list.fields {
        match (number, wire) {
            (2, Wire::Bytes(item)) => items.push(Value::Object(decode(schema, item)?)),
            (1, _) => {}
            _ => return Err(malformed()),
        }
    }
    Ok(json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata,
        "items": items,
    }))
}

fn decode(schema: &Schema, bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let message = Message::parse(bytes)
        .ok_or_else(|| DecodeError::Malformed(format!("a {} could not be decoded", schema.name)))?;
    let mut out = Map::new();
    for (number, wire) in message.fields {
        let Some(field) = schema.fields.iter().find(|f| u64::from(f.number) == number) else {
            if is_empty(wire) {
                continue;
            }
            return Err(DecodeError::Unsupported(format!(
                "field {number} of {}",
                schema.name
            )));
        };
        let wrong = || {
            DecodeError::Malformed(format!(
                "field {} of {} has the wrong wire type",
                field.json, schema.name
            ))
        };
        match field.ty {
            Ty::StrMap | Ty::BytesMap | Ty::QuantityMap | Ty::TimeMap | Ty::MessageMap(_) => {
                let Wire::Bytes(entry) = wire else {
                    return Err(wrong());
                };
                let entry = Message::parse(entry).ok_or_else(wrong)?;
                let key = entry.string(1).unwrap_or_default().to_string();
                let raw = entry.bytes(2).unwrap_or_default();
                let value = match field.ty {
                    Ty::StrMap => json!(String::from_utf8_lossy(raw)),
                    Ty::BytesMap => json!(base64::engine::general_purpose::STANDARD.encode(raw)),
                    Ty::QuantityMap => {
                        let quantity = Message::parse(raw).ok_or_else(wrong)?;
                        json!(quantity.string(1).unwrap_or_default())
                    }
                    Ty::TimeMap => {
                        let time = Field {
                            number: 2,
                            json: field.json,
                            ty: Ty::Time,
                            repeated: false,
                        };
                        single_value(&time, Wire::Bytes(raw))?.unwrap_or(Value::Null)
                    }
                    Ty::MessageMap(inner) => Value::Object(decode(inner, raw)?),
                    _ => unreachable!("a map type"),
                };
                let map = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, value);
                }
            }
            _ if field.repeated => {
                let values = repeated_values(field, wire)?;
                let list = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = list {
                    list.extend(values);
                }
            }
            Ty::Message(inner) if field.json.is_empty() => {
                let Wire::Bytes(bytes) = wire else {
                    return Err(wrong());
                };
                out.extend(decode(inner, bytes)?);
            }
            _ => {
                if let Some(value) = single_value(field, wire)? {
                    out.insert(field.json.to_string(), value);
                }
            }
        }
    }
    Ok(out)
}

/// A zero varint or an empty string/message: what Go writes for an unset
/// non-pointer field.
fn is_empty(wire: Wire<'_>) -> bool {
    matches!(wire, Wire::Varint(0)) || matches!(wire, Wire::Bytes(b) if b.is_empty())
}

fn repeated_values(field: &Field, wire: Wire<'_>) -> Result<Vec<Value>, DecodeError> {
    match (field.ty, wire) {
        // Packed: many varints in one length-delimited field.
        (Ty::Int, Wire::Bytes(bytes)) => {
            let mut at = 0;
            let mut values = Vec::new();
            while at < bytes.len() {
                let v = varint(bytes, &mut at).ok_or_else(|| {
                    DecodeError::Malformed(format!("field {} is not packed varints", field.json))
                })?;
                values.push(json!(v as i64));
            }
            Ok(values)
        }
        // A list's zero or empty string is an element, never "unset".
        (Ty::Int, Wire::Varint(v)) => Ok(vec![json!(v as i64)]),
        (Ty::Str, Wire::Bytes(bytes)) => Ok(vec![json!(String::from_utf8_lossy(bytes))]),
        (Ty::Message(inner), Wire::Bytes(bytes)) => Ok(vec![Value::Object(decode(inner, bytes)?)]),
        _ => Ok(single_value(field, wire)?.into_iter().collect()),
    }
}

/// One value; `None` when JSON would leave the field out.
fn single_value(field: &Field, wire: Wire<'_>) -> Result<Option<Value>, DecodeError> {
    let keep_zero = KEEP_ZERO.contains(&field.json);
    let wrong = || DecodeError::Malformed(format!("field {} has the wrong wire type", field.json));
    let bytes = || match wire {
        Wire::Bytes(bytes) => Ok(bytes),
        _ => Err(wrong()),
    };
    let value = match field.ty {
        Ty::Int => match wire {
            // int32 and int64 are both sign-extended to 64 bits.
            Wire::Varint(v) if v != 0 || keep_zero => json!(v as i64),
            Wire::Varint(_) => return Ok(None),
            _ => return Err(wrong()),
        },
        Ty::Bool => match wire {
            Wire::Varint(v) if v != 0 || keep_zero => json!(v != 0),
            Wire::Varint(_) => return Ok(None),
            _ => return Err(wrong()),
        },
        Ty::Str => {
            let bytes = bytes()?;
            if bytes.is_empty() {
                return Ok(None);
            }
            json!(String::from_utf8_lossy(bytes))
        }
        Ty::Bytes => {
            let bytes = bytes()?;
            if bytes.is_empty() {
                return Ok(None);
            }
            json!(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        Ty::Time => {
            let time = Message::parse(bytes()?).ok_or_else(wrong)?;
            let seconds = time.varint(1).unwrap_or(0) as i64;
            let nanos = time.varint(2).unwrap_or(0) as i64;
            if seconds == 0 && nanos == 0 {
                return Ok(None);
            }
            let Some(at) = chrono::DateTime::from_timestamp(seconds, nanos as u32) else {
                return Err(wrong());
            };
            let format = if nanos == 0 {
                chrono::SecondsFormat::Secs
            } else {
                chrono::SecondsFormat::Micros
            };
            json!(at.to_rfc3339_opts(format, true))
        }
        Ty::RawJson => {
            let raw = Message::parse(bytes()?).ok_or_else(wrong)?;
            let raw = raw.bytes(1).unwrap_or_default();
            if raw.is_empty() {
                return Ok(None);
            }
            serde_json::from_slice(raw).map_err(|e| {
                DecodeError::Malformed(format!("field {} is not JSON: {e}", field.json))
            })?
        }
        Ty::Quantity => {
            let quantity = Message::parse(bytes()?).ok_or_else(wrong)?;
            match quantity.string(1) {
                Some(text) if !text.is_empty() => json!(text),
                _ => return Ok(None),
            }
        }
        Ty::IntOrString => {
            let value = Message::parse(bytes()?).ok_or_else(wrong)?;
            if value.varint(1).unwrap_or(0) == 1 {
                json!(value.string(3).unwrap_or_default())
            } else {
                json!(value.varint(2).unwrap_or(0) as i64)
            }
        }
        Ty::Message(inner) => Value::Object(decode(inner, bytes()?)?),
        Ty::StrMap | Ty::BytesMap | Ty::QuantityMap | Ty::TimeMap | Ty::MessageMap(_) => {
            unreachable!("maps are decoded entry by entry")
        }
    };
    Ok(Some(value))
}

/// The media type of a Kubernetes protobuf body.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The message of a kind in [`schema`], if it has one.
pub fn schema_of(api_version: &str, kind: &str) -> Option<&'static Schema> {
    schema::KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, schema)| *schema)
}

/// Why a JSON object could not be written as protobuf: a key the schema
/// does not know, or a value of the wrong JSON type for its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

/// The message of `object`, a whole object of the kind `schema` describes:
/// its top-level `apiVersion` and `kind` are left out (the messages have no
/// such fields; the envelope or the list carries them).
pub fn encode(schema: &Schema, object: &Map<String, Value>) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(1024);
    check_keys(schema, object, true)?;
    encode_fields(schema, object, &mut out)?;
    Ok(out)
}

/// A `<Kind>List` body: the envelope (TypeMeta `api_version`, `list_kind`),
/// the ListMeta, then each item's message as [`encode`] wrote it.
pub fn list_body<'a>(
    api_version: &str,
    list_kind: &str,
    resource_version: &str,
    continue_token: Option<&str>,
    items: impl Iterator<Item = &'a [u8]> + Clone,
) -> Vec<u8> {
    let mut meta = Vec::new();
    put_str(&mut meta, 2, resource_version);
    if let Some(token) = continue_token {
        put_str(&mut meta, 3, token);
    }
    let mut type_meta = Vec::new();
    put_str(&mut type_meta, 1, api_version);
    put_str(&mut type_meta, 2, list_kind);
    let list_len = delimited_len(1, meta.len())
        + items
            .clone()
            .map(|item| delimited_len(2, item.len()))
            .sum::<usize>();
    let mut out = Vec::with_capacity(16 + type_meta.len() + delimited_len(2, list_len) + 4);
    out.extend_from_slice(b"k8s\0");
    put_bytes(&mut out, 1, &type_meta);
    put_key(&mut out, 2, 2);
    put_varint(&mut out, list_len as u64);
    let start = out.len();
    put_bytes(&mut out, 1, &meta);
    for item in items {
        put_bytes(&mut out, 2, item);
    }
    debug_assert_eq!(out.len() - start, list_len);
    // contentEncoding and contentType: empty, written as Go writes them.
    put_str(&mut out, 3, "");
    put_str(&mut out, 4, "");
    out
}

/// Whether `schema`, or a struct it embeds inline, has a field named `key`.
fn knows(schema: &Schema, key: &str) -> bool {
    schema.fields.iter().any(|f| match f.ty {
        Ty::Message(inner) if f.json.is_empty() => knows(inner, key),
        _ => f.json == key,
    })
}

/// Refuses an object holding a key its message has no field for (at any
/// depth, checked as the fields are written): leaving it out would hand the
/// client an object that is not the one stored.
fn check_keys(schema: &Schema, object: &Map<String, Value>, top: bool) -> Result<(), EncodeError> {
    for (key, value) in object {
        if value.is_null() || (top && (key == "apiVersion" || key == "kind")) {
            continue;
        }
        if !knows(schema, key) {
            return Err(EncodeError(format!(
                "{} has no field for {key:?}",
                schema.name
            )));
        }
    }
    Ok(())
}

fn encode_fields(
    schema: &Schema,
    object: &Map<String, Value>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    for field in schema.fields {
        if let (Ty::Message(inner), "") = (field.ty, field.json) {
            // A Go struct embedded inline: its fields sit in this JSON object.
            let start = begin_message(out, field.number);
            encode_fields(inner, object, out)?;
            end_message(out, start);
            continue;
        }
        let value = match object.get(field.json) {
            None | Some(Value::Null) => continue,
            Some(value) => value,
        };
        match field.ty {
            Ty::StrMap | Ty::BytesMap | Ty::QuantityMap | Ty::TimeMap | Ty::MessageMap(_) => {
                let map = value
                    .as_object()
                    .ok_or_else(|| wrong_type(schema, field, value))?;
                // Go writes map entries sorted by key.
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for key in keys {
                    let entry_value = &map[key.as_str()];
                    let start = begin_message(out, field.number);
                    put_str(out, 1, key);
                    match field.ty {
                        Ty::StrMap => put_str(out, 2, str_of(schema, field, entry_value)?),
                        Ty::BytesMap => {
                            put_bytes(out, 2, &base64_of(schema, field, entry_value)?);
                        }
                        Ty::QuantityMap => {
                            let start = begin_message(out, 2);
                            put_str(out, 1, &quantity_of(schema, field, entry_value)?);
                            end_message(out, start);
                        }
                        Ty::TimeMap => put_time(out, 2, schema, field, entry_value)?,
                        Ty::MessageMap(inner) => put_message(out, 2, inner, entry_value)?,
                        _ => unreachable!("a map type"),
                    }
                    end_message(out, start);
                }
            }
            _ if field.repeated => {
                let list = value
                    .as_array()
                    .ok_or_else(|| wrong_type(schema, field, value))?;
                for element in list {
                    // Unpacked, one wire field per element, as Go writes a
                    // proto2 `repeated` field.
                    put_single(out, schema, field, element)?;
                }
            }
            _ => put_single(out, schema, field, value)?,
        }
    }
    Ok(())
}

fn put_single(
    out: &mut Vec<u8>,
    schema: &Schema,
    field: &Field,
    value: &Value,
) -> Result<(), EncodeError> {
    let number = field.number;
    match field.ty {
        Ty::Str => put_str(out, number, str_of(schema, field, value)?),
        Ty::Int => {
            let v = value
                .as_i64()
                .ok_or_else(|| wrong_type(schema, field, value))?;
            put_key(out, number, 0);
            // A negative int32 or int64 is its 64-bit two's complement.
            put_varint(out, v as u64);
        }
        Ty::Bool => {
            let v = value
                .as_bool()
                .ok_or_else(|| wrong_type(schema, field, value))?;
            put_key(out, number, 0);
            put_varint(out, u64::from(v));
        }
        Ty::Bytes => put_bytes(out, number, &base64_of(schema, field, value)?),
        Ty::Time => put_time(out, number, schema, field, value)?,
        Ty::RawJson => {
            let raw = serde_json::to_vec(value).expect("a JSON value always serializes");
            let start = begin_message(out, number);
            put_bytes(out, 1, &raw);
            end_message(out, start);
        }
        Ty::Quantity => {
            let start = begin_message(out, number);
            put_str(out, 1, &quantity_of(schema, field, value)?);
            end_message(out, start);
        }
        Ty::IntOrString => {
            let start = begin_message(out, number);
            match value {
                Value::String(s) => {
                    put_key(out, 1, 0);
                    put_varint(out, 1);
                    put_str(out, 3, s);
                }
                Value::Number(n) => {
                    let v = n.as_i64().ok_or_else(|| wrong_type(schema, field, value))?;
                    put_key(out, 1, 0);
                    put_varint(out, 0);
                    put_key(out, 2, 0);
                    put_varint(out, v as u64);
                }
                _ => return Err(wrong_type(schema, field, value)),
            }
            end_message(out, start);
        }
        Ty::Message(inner) => put_message(out, number, inner, value)?,
        Ty::StrMap | Ty::BytesMap | Ty::QuantityMap | Ty::TimeMap | Ty::MessageMap(_) => {
            unreachable!("maps are encoded entry by entry")
        }
    }
    Ok(())
}

fn put_message(
    out: &mut Vec<u8>,
    number: u32,
    schema: &Schema,
    value: &Value,
) -> Result<(), EncodeError> {
    let object = value
        .as_object()
        .ok_or_else(|| EncodeError(format!("a {} is not a JSON object: {value}", schema.name)))?;
    check_keys(schema, object, false)?;
    let start = begin_message(out, number);
    encode_fields(schema, object, out)?;
    end_message(out, start);
    Ok(())
}

/// `metav1.Time`/`MicroTime` from RFC 3339: `{1: seconds, 2: nanos}`.
fn put_time(
    out: &mut Vec<u8>,
    number: u32,
    schema: &Schema,
    field: &Field,
    value: &Value,
) -> Result<(), EncodeError> {
    let at = chrono::DateTime::parse_from_rfc3339(str_of(schema, field, value)?)
        .map_err(|_| wrong_type(schema, field, value))?;
    let start = begin_message(out, number);
    put_key(out, 1, 0);
    put_varint(out, at.timestamp() as u64);
    let nanos = at.timestamp_subsec_nanos();
    if nanos != 0 {
        put_key(out, 2, 0);
        put_varint(out, u64::from(nanos));
    }
    end_message(out, start);
    Ok(())
}

fn str_of<'v>(schema: &Schema, field: &Field, value: &'v Value) -> Result<&'v str, EncodeError> {
    value
        .as_str()
        .ok_or_else(|| wrong_type(schema, field, value))
}

fn base64_of(schema: &Schema, field: &Field, value: &Value) -> Result<Vec<u8>, EncodeError> {
    base64::engine::general_purpose::STANDARD
        .decode(str_of(schema, field, value)?)
        .map_err(|_| wrong_type(schema, field, value))
}

/// A quantity's text. A number is taken as Go's `Quantity` takes it from
/// JSON (`cpu: 1`), written as its decimal text.
fn quantity_of(schema: &Schema, field: &Field, value: &Value) -> Result<String, EncodeError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(wrong_type(schema, field, value)),
    }
}

fn wrong_type(schema: &Schema, field: &Field, value: &Value) -> EncodeError {
    let mut shown = value.to_string();
    if shown.len() > 60 {
        let mut cut = 60;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push_str("...");
    }
    EncodeError(format!(
        "field {} of {} cannot hold {shown}",
        field.json, schema.name
    ))
}

/// A `metav1.Status` (the JSON `ApiError::to_status` makes) as the
/// protobuf body an API server answers a failed protobuf request with: the
/// envelope (`v1`, `Status`), then `k8s.io/apimachinery/pkg/apis/meta/v1/
/// generated.proto`'s Status: metadata 1 (an empty ListMeta), status 2,
/// message 3, reason 4, details 5 (name 1, group 2, kind 3, causes 4 of
/// reason 1, message 2, field 3; retryAfterSeconds 5; uid 6), code 6.
pub fn status_body(status: &Value) -> Vec<u8> {
    let text =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let number = |value: &Value, key: &str| value.get(key).and_then(Value::as_i64);
    let mut message = Vec::new();
    put_bytes(&mut message, 1, &[]);
    for (number, key) in [(2, "status"), (3, "message"), (4, "reason")] {
        if let Some(value) = text(status, key) {
            put_str(&mut message, number, &value);
        }
    }
    if let Some(details) = status.get("details") {
        let mut out = Vec::new();
        for (number, key) in [(1, "name"), (2, "group"), (3, "kind")] {
            if let Some(value) = text(details, key) {
                put_str(&mut out, number, &value);
            }
        }
        for cause in details
            .get("causes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut entry = Vec::new();
            for (number, key) in [(1, "reason"), (2, "message"), (3, "field")] {
                if let Some(value) = text(cause, key) {
                    put_str(&mut entry, number, &value);
                }
            }
            put_bytes(&mut out, 4, &entry);
        }
        if let Some(seconds) = number(details, "retryAfterSeconds") {
            put_key(&mut out, 5, 0);
            put_varint(&mut out, seconds as u64);
        }
        if let Some(uid) = text(details, "uid") {
            put_str(&mut out, 6, &uid);
        }
        put_bytes(&mut message, 5, &out);
    }
    if let Some(code) = number(status, "code") {
        put_key(&mut message, 6, 0);
        put_varint(&mut message, code as u64);
    }
    let mut type_meta = Vec::new();
    put_str(&mut type_meta, 1, "v1");
    put_str(&mut type_meta, 2, "Status");
    let mut out = b"k8s\0".to_vec();
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, &message);
    out
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_str(out: &mut Vec<u8>, number: u32, text: &str) {
    put_bytes(out, number, text.as_bytes());
}

/// The bytes a length-delimited field of `len` bytes takes.
fn delimited_len(number: u32, len: usize) -> usize {
    varint_len(u64::from(number) << 3) + varint_len(len as u64) + len
}

/// Starts a nested message: its key is written now, its length by
/// [`end_message`] once the contents are known. Returns where they start.
fn begin_message(out: &mut Vec<u8>, number: u32) -> usize {
    put_key(out, number, 2);
    out.len()
}

/// Puts the length of the message begun at `start` in front of its contents.
fn end_message(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    let mut prefix = [0u8; 10];
    let mut n = 0;
    let mut rest = len as u64;
    loop {
        let byte = (rest & 0x7f) as u8;
        rest >>= 7;
        if rest == 0 {
            prefix[n] = byte;
            n += 1;
            break;
        }
        prefix[n] = byte | 0x80;
        n += 1;
    }
    out.splice(start..start, prefix[..n].iter().copied());
}

/// One field's value on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// A decoded message: its fields in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message<'a> {
    pub fields: Vec<(u64, Wire<'a>)>,
}

fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

impl<'a> Message<'a> {
    /// Parses one message; `None` if the bytes are not well-formed.
    pub fn parse(buf: &'a [u8]) -> Option<Self> {
        let mut fields = Vec::new();
        let mut at = 0;
        while at < buf.len() {
            let key = varint(buf, &mut at)?;
            let value = match key & 7 {
                0 => Wire::Varint(varint(buf, &mut at)?),
                1 => {
                    at = at.checked_add(8).filter(|end| *end <= buf.len())?;
                    Wire::Fixed
                }
                2 => {
                    let len = usize::try_from(varint(buf, &mut at)?).ok()?;
                    let end = at.checked_add(len).filter(|end| *end <= buf.len())?;
                    let bytes = &buf[at..end];
                    at = end;
                    Wire::Bytes(bytes)
                }
                5 => {
                    at = at.checked_add(4).filter(|end| *end <= buf.len())?;
                    Wire::Fixed
                }
                _ => return None,
            };
            fields.push((key >> 3, value));
        }
        Some(Message { fields })
    }

    /// The last value of a length-delimited field.
    pub fn bytes(&self, number: u64) -> Option<&'a [u8]> {
        self.fields.iter().rev().find_map(|(n, v)| match v {
            Wire::Bytes(b) if *n == number => Some(*b),
            _ => None,
        })
    }

    /// The last value of a varint field.
    pub fn varint(&self, number: u64) -> Option<u64> {
        self.fields.iter().rev().find_map(|(n, v)| match v {
            Wire::Varint(value) if *n == number => Some(*value),
            _ => None,
        })
    }

    pub fn string(&self, number: u64) -> Option<&'a str> {
        self.bytes(number).and_then(|b| std::str::from_utf8(b).ok())
    }

    pub fn message(&self, number: u64) -> Option<Message<'a>> {
        self.bytes(number).and_then(Message::parse)
    }
}

#[cfg(test)]
/// What [`decode`] gives back for a JSON object of `schema`: the object
/// with the decoder's documented losses applied, worked out from the
/// JSON and the schema alone (not from the encoder). Nulls, empty
/// strings, maps and lists go; zero numbers and `false` go unless the
/// field is a Go pointer ([`KEEP_ZERO`]); times are written as the
/// decoder writes them (whole seconds, or microseconds); a quantity
/// given as a number comes back as its text. Everything else, `{}`
/// included, must come back as it was.
pub(crate) fn as_decoded(schema: &Schema, object: &Map<String, Value>) -> Map<String, Value> {
    fn field_of<'s>(schema: &'s Schema, key: &str) -> Option<&'s Field> {
        schema.fields.iter().find_map(|f| match f.ty {
            Ty::Message(inner) if f.json.is_empty() => field_of(inner, key),
            _ => (f.json == key).then_some(f),
        })
    }
    fn time(value: &Value) -> Option<Value> {
        let at = chrono::DateTime::parse_from_rfc3339(value.as_str()?).ok()?;
        let at = at.with_timezone(&chrono::Utc);
        if at.timestamp() == 0 && at.timestamp_subsec_nanos() == 0 {
            return None;
        }
        let format = if at.timestamp_subsec_nanos() == 0 {
            chrono::SecondsFormat::Secs
        } else {
            chrono::SecondsFormat::Micros
        };
        Some(json!(at.to_rfc3339_opts(format, true)))
    }
    fn quantity(value: &Value) -> Value {
        match value {
            Value::Number(n) => json!(n.to_string()),
            other => other.clone(),
        }
    }
    fn element(field: &Field, value: &Value) -> Option<Value> {
        match field.ty {
            Ty::Message(inner) => Some(Value::Object(as_decoded(inner, value.as_object()?))),
            Ty::Time => time(value),
            Ty::Quantity => Some(quantity(value)),
            _ => Some(value.clone()),
        }
    }
    let mut out = Map::new();
    for (key, value) in object {
        let field = field_of(schema, key).unwrap_or_else(|| {
            panic!(
                "{} has no field {key}: the encoder should have refused it",
                schema.name
            )
        });
        let keep_zero = KEEP_ZERO.contains(&field.json);
        let kept = match (field.ty, value) {
            (_, Value::Null) => None,
            (
                Ty::StrMap | Ty::BytesMap | Ty::QuantityMap | Ty::TimeMap | Ty::MessageMap(_),
                Value::Object(map),
            ) => {
                let entries: Map<String, Value> = map
                    .iter()
                    .map(|(k, v)| {
                        let v = match field.ty {
                            Ty::QuantityMap => quantity(v),
                            Ty::TimeMap => time(v).unwrap_or(Value::Null),
                            Ty::MessageMap(inner) => {
                                Value::Object(as_decoded(inner, v.as_object().expect("an object")))
                            }
                            _ => v.clone(),
                        };
                        (k.clone(), v)
                    })
                    .collect();
                (!entries.is_empty()).then_some(Value::Object(entries))
            }
            (_, Value::Array(list)) if field.repeated => {
                let list: Vec<Value> = list.iter().filter_map(|v| element(field, v)).collect();
                (!list.is_empty()).then_some(Value::Array(list))
            }
            (Ty::Str | Ty::Bytes | Ty::Quantity, Value::String(s)) if s.is_empty() => None,
            (Ty::Int, Value::Number(n)) if n.as_i64() == Some(0) && !keep_zero => None,
            (Ty::Bool, Value::Bool(false)) if !keep_zero => None,
            _ => element(field, value),
        };
        if let Some(kept) = kept {
            out.insert(key.clone(), kept);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn a_self_review_is_read_through_the_envelope() {
        let attributes = [field(2, b"patch"), field(5, b"deployments")].concat();
        let review = field(2, &field(1, &attributes));
        let body = envelope(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &review,
        );
        assert_eq!(
            object_from_body(&body).expect("decodes")["spec"],
            json!({"resourceAttributes": {"verb": "patch", "resource": "deployments"}})
        );
    }

    fn varint_field(number: u8, value: u64) -> Vec<u8> {
        let mut out = vec![number << 3];
        let mut rest = value;
        loop {
            let byte = (rest & 0x7f) as u8;
            rest >>= 7;
            if rest == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn envelope(api_version: &str, kind: &str, object: &[u8]) -> Vec<u8> {
        let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
        let unknown = [field(1, &type_meta), field(2, object)].concat();
        [b"k8s\0".to_vec(), unknown].concat()
    }

    #[test]
    fn a_deployment_becomes_the_json_a_client_would_send() {
        let meta = [
            field(1, b"web"),
            field(3, b""),
            field(8, &varint_field(1, 1_767_225_600)),
            field(11, &[field(1, b"app"), field(2, b"web")].concat()),
        ]
        .concat();
        let spec = [
            varint_field(1, 0),                  // replicas: a pointer, so 0 is kept
            varint_field(5, 0),                  // minReadySeconds: unset
            field(4, &[field(1, b"")].concat()), // strategy: empty type
            varint_field(7, 0),                  // paused: false, unset
        ]
        .concat();
        let body = envelope(
            "apps/v1",
            "Deployment",
            &[field(1, &meta), field(2, &spec)].concat(),
        );
        let object = object_from_body(&body).expect("decodes");
        assert_eq!(
            object,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "web",
                    "creationTimestamp": "2026-01-01T00:00:00Z",
                    "labels": {"app": "web"},
                },
                "spec": {"replicas": 0, "strategy": {}},
            })
        );
    }

    #[test]
    fn inline_structs_int_or_strings_and_packed_lists_take_their_json_shapes() {
        let selector = [field(1, &field(1, b"db-password")), field(2, b"password")].concat();
        let decoded = decode(&schema::API_CORE_V1_SECRET_KEY_SELECTOR, &selector).unwrap();
        assert_eq!(
            Value::Object(decoded),
            json!({"name": "db-password", "key": "password"})
        );

        let percent = [varint_field(1, 1), field(3, b"25%")].concat();
        let zero = [varint_field(1, 0), varint_field(2, 0)].concat();
        let strategy = [field(1, &percent), field(2, &zero)].concat();
        let decoded = decode(&schema::API_APPS_V1_ROLLING_UPDATE_DEPLOYMENT, &strategy).unwrap();
        assert_eq!(
            Value::Object(decoded),
            json!({"maxUnavailable": "25%", "maxSurge": 0})
        );

        // supplementalGroups, packed and unpacked; 0 is an element.
        let context = [field(4, &[0, 5]), varint_field(4, 7)].concat();
        let decoded = decode(&schema::API_CORE_V1_POD_SECURITY_CONTEXT, &context).unwrap();
        assert_eq!(
            Value::Object(decoded),
            json!({"supplementalGroups": [0, 5, 7]})
        );
    }

    #[test]
    fn what_the_schema_does_not_know_is_refused_unless_it_is_empty() {
        let unknown_empty = [field(1, &field(1, b"shop")), field(9, b"")].concat();
        let object = object_from_body(&envelope("v1", "Namespace", &unknown_empty)).unwrap();
        assert_eq!(object["metadata"]["name"], "shop");

        let unknown_set = [field(1, &field(1, b"shop")), varint_field(9, 3)].concat();
        assert_eq!(
            object_from_body(&envelope("v1", "Namespace", &unknown_set)),
            Err(DecodeError::Unsupported(
                "field 9 of core::v1::Namespace".into()
            ))
        );
        assert_eq!(
            object_from_body(&envelope("example.com/v1", "Widget", b"")),
            Err(DecodeError::Unsupported(
                "Widget (example.com/v1) in protobuf".into()
            ))
        );
        assert!(matches!(
            object_from_body(b"k8s\0\x12\x05ab"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn truncated_bytes_are_rejected() {
        assert!(Message::parse(&[0x12, 0x05, b'a']).is_none());
        assert!(object_from_body(b"{\"json\":true}").is_err());
    }

    // ---- Writing ----

    /// Encodes then decodes a whole object of a kind in [`schema::KINDS`]:
    /// what came back, and what the decoder should give back.
    fn round_trip(object: &Value) -> Result<(Value, Value), EncodeError> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let schema = schema_of(api_version, kind).expect("a kind with a schema");
        let mut object = object.as_object().expect("an object").clone();
        let message = encode(schema, &object)?;
        let decoded = decode(schema, &message)
            .unwrap_or_else(|e| panic!("{kind} {}: {e:?}", object["metadata"]["name"]));
        object.remove("apiVersion");
        object.remove("kind");
        Ok((
            Value::Object(decoded),
            Value::Object(as_decoded(schema, &object)),
        ))
    }

    /// Every stored object of a kind with a schema, with its kind's name.
    fn encodable_objects(world: &crate::world::World) -> Vec<Value> {
        let mut objects = Vec::new();
        for resource in world.store.kinds() {
            if schema_of(&resource.api_version(), resource.kind).is_none() {
                continue;
            }
            objects.extend(
                world
                    .store
                    .list_stored(resource, None)
                    .map(|(_, s)| s.value()),
            );
        }
        objects
    }

    fn assert_round_trips(label: &str, objects: &[Value]) {
        for object in objects {
            let name = format!(
                "{label}: {} {}/{}",
                object["kind"].as_str().unwrap_or_default(),
                object["metadata"]["namespace"].as_str().unwrap_or_default(),
                object["metadata"]["name"].as_str().unwrap_or_default()
            );
            let (decoded, expected) =
                round_trip(object).unwrap_or_else(|e| panic!("{name} does not encode: {e}"));
            assert_eq!(decoded, expected, "{name} does not come back as it was");
        }
    }

    #[test]
    fn every_object_of_every_built_in_scenario_comes_back_from_protobuf() {
        let mut kinds = std::collections::BTreeSet::new();
        let mut count = 0;
        for name in crate::scenario::builtin_names() {
            let mut world = crate::world::World::new(crate::world::SimConfig {
                clock_speed: 0.0,
                ..crate::world::SimConfig::default()
            });
            crate::scenario::load_builtin(&mut world, name).expect("the scenario loads");
            // Settled, so pods, ReplicaSets and every status are there too.
            crate::controllers::settle(&mut world);
            let objects = encodable_objects(&world);
            kinds.extend(
                objects
                    .iter()
                    .map(|o| o["kind"].as_str().unwrap_or_default().to_string()),
            );
            count += objects.len();
            assert_round_trips(name, &objects);
        }
        assert!(count > 100, "only {count} objects");
        for kind in [
            "Pod",
            "Deployment",
            "ReplicaSet",
            "StatefulSet",
            "DaemonSet",
            "Service",
            "ConfigMap",
            "Namespace",
            "PodDisruptionBudget",
        ] {
            assert!(
                kinds.contains(kind),
                "no {kind} in the scenarios: {kinds:?}"
            );
        }
    }

    #[test]
    fn every_object_of_a_generated_cluster_comes_back_from_protobuf() {
        let mut world = crate::world::World::new(crate::world::SimConfig {
            clock_speed: 0.0,
            ..crate::world::SimConfig::default()
        });
        crate::scenario::load_builtin(&mut world, "empty").expect("loads");
        let options = crate::generate::GenerateOptions {
            namespaces: 2,
            workloads_per_namespace: 6,
            replicas: 2,
            ..crate::generate::GenerateOptions::default()
        };
        crate::generate::generate(&mut world, &options).expect("generates");
        let objects = encodable_objects(&world);
        assert!(objects.iter().filter(|o| o["kind"] == "Pod").count() >= 20);
        assert_round_trips("generated", &objects);
    }

    #[test]
    fn every_schema_lists_its_fields_in_number_order() {
        // Go's marshaller writes fields in number order; the encoder writes
        // them in the schema's order.
        fn check(schema: &'static Schema, seen: &mut Vec<&'static str>) {
            if seen.contains(&schema.name) {
                return;
            }
            seen.push(schema.name);
            assert!(
                schema.fields.windows(2).all(|w| w[0].number < w[1].number),
                "{} is out of order",
                schema.name
            );
            for field in schema.fields {
                if let Ty::Message(inner) | Ty::MessageMap(inner) = field.ty {
                    check(inner, seen);
                }
            }
        }
        let mut seen = Vec::new();
        for (_, _, schema) in schema::KINDS {
            check(schema, &mut seen);
        }
    }

    #[test]
    fn scalars_take_their_wire_forms() {
        let context = json!({
            "runAsUser": -1,
            "supplementalGroups": [0, 5],
            "runAsNonRoot": false,
            "seLinuxOptions": {},
            "sysctls": [{"name": "a", "value": ""}],
        });
        let message = encode(
            &schema::API_CORE_V1_POD_SECURITY_CONTEXT,
            context.as_object().unwrap(),
        )
        .unwrap();
        let fields = Message::parse(&message).unwrap().fields;
        // seLinuxOptions 1, runAsUser 2 (ten bytes of two's complement),
        // runAsNonRoot 3, supplementalGroups 4 unpacked, sysctls 7.
        assert_eq!(
            fields,
            [
                (1, Wire::Bytes(b"")),
                (2, Wire::Varint(u64::MAX)),
                (3, Wire::Varint(0)),
                (4, Wire::Varint(0)),
                (4, Wire::Varint(5)),
                (7, Wire::Bytes(&[field(1, b"a"), field(2, b"")].concat())),
            ]
        );
        let decoded = decode(&schema::API_CORE_V1_POD_SECURITY_CONTEXT, &message).unwrap();
        assert_eq!(decoded["runAsUser"], -1);
        assert_eq!(decoded["runAsNonRoot"], false);
    }

    #[test]
    fn times_quantities_int_or_strings_raw_json_and_maps_round_trip() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web-0",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"b": "2", "a": "1"},
                "managedFields": [{"manager": "kubectl", "time": "2026-01-01T00:00:01.5Z",
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": {
                "containers": [{
                    "name": "app",
                    "image": "web:1",
                    "resources": {"limits": {"cpu": "500m", "memory": 1024}},
                    "livenessProbe": {"httpGet": {"port": "http", "path": "/"}},
                    "readinessProbe": {"tcpSocket": {"port": 8080}},
                }],
            },
            "status": {"startTime": "2026-01-01T00:00:02.123456Z"},
        });
        let (decoded, expected) = round_trip(&pod).unwrap();
        assert_eq!(decoded, expected);
        assert_eq!(
            decoded["metadata"]["managedFields"][0]["time"],
            "2026-01-01T00:00:01.500000Z"
        );
        assert_eq!(
            decoded["spec"]["containers"][0]["resources"]["limits"]["memory"],
            "1024"
        );
        assert_eq!(
            decoded["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"],
            "http"
        );
        assert_eq!(
            decoded["spec"]["containers"][0]["readinessProbe"]["tcpSocket"]["port"],
            8080
        );

        // Map entries in key order, as Go writes them.
        let meta = json!({"labels": {"b": "2", "a": "1"}});
        let message = encode(
            &schema::APIMACHINERY_PKG_APIS_META_V1_OBJECT_META,
            meta.as_object().unwrap(),
        )
        .unwrap();
        let keys: Vec<&str> = Message::parse(&message)
            .unwrap()
            .fields
            .iter()
            .map(|(_, wire)| match wire {
                Wire::Bytes(entry) => Message::parse(entry).unwrap().string(1).unwrap(),
                _ => panic!("a map entry"),
            })
            .collect();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn a_key_the_schema_does_not_know_is_refused_at_any_depth() {
        let schema = &schema::API_CORE_V1_CONFIG_MAP;
        let refused = |object: Value| encode(schema, object.as_object().unwrap()).unwrap_err();
        let top = refused(json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "extra": 1}));
        assert_eq!(
            top,
            EncodeError("core::v1::ConfigMap has no field for \"extra\"".into())
        );
        let deep = refused(
            json!({"metadata": {"name": "c", "ownerReferences": [{"uid": "u", "colour": "red"}]}}),
        );
        assert!(deep.0.contains("\"colour\""), "{deep}");
        let wrong = refused(json!({"metadata": {"name": 7}}));
        assert!(wrong.0.contains("field name"), "{wrong}");
        // apiVersion and kind are only skipped at the top.
        assert!(
            encode(
                &schema::API_APPS_V1_DEPLOYMENT,
                json!({"kind": "Deployment", "spec": {"template": {"kind": "PodTemplate"}}})
                    .as_object()
                    .unwrap()
            )
            .is_err()
        );
        // Inline structs' keys are the parent's: a Volume's `configMap`.
        let volume = json!({"name": "v", "configMap": {"name": "c"}});
        let message = encode(&schema::API_CORE_V1_VOLUME, volume.as_object().unwrap()).unwrap();
        assert_eq!(
            Value::Object(decode(&schema::API_CORE_V1_VOLUME, &message).unwrap()),
            volume
        );
    }

    #[test]
    fn a_list_body_is_the_envelope_the_list_meta_then_the_items() {
        let items: Vec<Vec<u8>> = ["a", "b"]
            .iter()
            .map(|name| {
                let pod = json!({
                    "metadata": {"name": name, "namespace": "shop"},
                    "spec": {"nodeName": "n1"},
                });
                encode(&schema::API_CORE_V1_POD, pod.as_object().unwrap()).unwrap()
            })
            .collect();
        let body = list_body(
            "v1",
            "PodList",
            "42",
            Some("token"),
            items.iter().map(Vec::as_slice),
        );
        let unknown = Message::parse(body.strip_prefix(b"k8s\0").unwrap()).unwrap();
        let type_meta = unknown.message(1).unwrap();
        assert_eq!(
            (type_meta.string(1), type_meta.string(2)),
            (Some("v1"), Some("PodList"))
        );
        let list = unknown.message(2).unwrap();
        let numbers: Vec<u64> = list.fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2, 2]);
        let meta = list.message(1).unwrap();
        assert_eq!(
            (meta.string(2), meta.string(3)),
            (Some("42"), Some("token"))
        );
        let names: Vec<Value> = list.fields[1..]
            .iter()
            .map(|(_, wire)| match wire {
                Wire::Bytes(item) => Value::Object(decode(&schema::API_CORE_V1_POD, item).unwrap()),
                _ => panic!("an item"),
            })
            .map(|pod| pod["metadata"]["name"].clone())
            .collect();
        assert_eq!(names, [json!("a"), json!("b")]);
    }
}
