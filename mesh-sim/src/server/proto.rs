//! The request bodies kubectl's typed clients send as
//! `application/vnd.kubernetes.protobuf`: `kubectl create namespace`,
//! `create deployment|configmap|secret|service|job|...`, `kubectl run`, and
//! the self-reviews behind `kubectl auth can-i` and `whoami`.
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

/// The object of a Kubernetes protobuf body as JSON, `apiVersion` and `kind`
/// included.
pub fn object_from_body(body: &[u8]) -> Result<Value, DecodeError> {
    let malformed = || DecodeError::Malformed("the protobuf body could not be decoded".into());
    let unknown =
        Message::parse(body.strip_prefix(b"k8s\0").ok_or_else(malformed)?).ok_or_else(malformed)?;
    let type_meta = unknown.message(1).unwrap_or_default();
    let api_version = type_meta.string(1).unwrap_or_default();
    let kind = type_meta.string(2).unwrap_or_default();
    let schema = schema::KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, schema)| *schema)
        .ok_or_else(|| DecodeError::Unsupported(format!("{kind} ({api_version}) in protobuf")))?;
    let mut object = decode(schema, unknown.bytes(2).unwrap_or_default())?;
    object.insert("apiVersion".into(), json!(api_version));
    object.insert("kind".into(), json!(kind));
    Ok(Value::Object(object))
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
}
