//! Kubernetes' protobuf encoding, read field by field without copying:
//! the envelope every body comes in, a list's `ListMeta`, and an error's
//! `Status`. What a kind's items hold is read by its decoder in
//! `snapshot::decode`.
//!
//! A body is the magic `k8s\0`, then a `runtime.Unknown` message whose
//! field 2 holds the object's (or the list's) own message; a list's field 1
//! is its `ListMeta`, field 2 each item. Field numbers are those of
//! `k8s.io/apimachinery/pkg/runtime/generated.proto` (Unknown) and
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto` (ListMeta, Status,
//! Time). A message's fields carry their numbers and lengths, so a reader
//! steps over what it does not keep without looking at it.

/// The media type an API server answers protobuf with.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// What begins every Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

/// Whether a response body is in Kubernetes' protobuf encoding.
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// Why a protobuf page could not be read: as serde's errors are, so a page
/// fails the same way whichever encoding it came in.
pub fn malformed(what: &str) -> serde_json::Error {
    serde::de::Error::custom(format!("the protobuf page is malformed: {what}"))
}

/// What was read, or why the page could not be read.
pub type Read<T> = Result<T, serde_json::Error>;

/// One field's value on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire<'a> {
    Varint(u64),
    /// Length-delimited: a string, bytes, a message, packed numbers.
    Bytes(&'a [u8]),
    /// A fixed 32- or 64-bit value (no Kubernetes field the snapshot reads).
    Fixed,
}

impl<'a> Wire<'a> {
    pub fn bytes(self) -> Read<&'a [u8]> {
        match self {
            Wire::Bytes(bytes) => Ok(bytes),
            _ => Err(malformed("a length-delimited field has another wire type")),
        }
    }

    pub fn varint(self) -> Read<u64> {
        match self {
            Wire::Varint(v) => Ok(v),
            _ => Err(malformed("a varint field has another wire type")),
        }
    }

    pub fn str(self) -> Read<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| malformed("a string is not UTF-8"))
    }

    /// A string JSON leaves out when empty.
    pub fn non_empty_str(self) -> Read<Option<&'a str>> {
        Ok(Some(self.str()?).filter(|s| !s.is_empty()))
    }
}

/// The fields of one message, in wire order.
pub struct Fields<'a> {
    buf: &'a [u8],
    at: usize,
}

pub fn fields(buf: &[u8]) -> Fields<'_> {
    Fields { buf, at: 0 }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Read<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .buf
                .get(self.at)
                .ok_or_else(|| malformed("a varint runs past the end"))?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(malformed("a varint is longer than ten bytes"))
    }

    fn skip(&mut self, len: usize) -> Read<&'a [u8]> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| malformed("a field runs past the end of its message"))?;
        let bytes = &self.buf[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn field(&mut self) -> Read<(u64, Wire<'a>)> {
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.skip(8)?;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| malformed("a length does not fit in memory"))?;
                Wire::Bytes(self.skip(len)?)
            }
            5 => {
                self.skip(4)?;
                Wire::Fixed
            }
            _ => return Err(malformed("a field has an unknown wire type")),
        };
        Ok((key >> 3, wire))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Read<(u64, Wire<'a>)>;
    fn next(&mut self) -> Option<Self::Item> {
        (self.at < self.buf.len()).then(|| self.field())
    }
}

/// The list message inside a body's `runtime.Unknown` envelope.
pub fn envelope_object(body: &[u8]) -> Read<&[u8]> {
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("it does not begin with k8s\\0"))?;
    let mut raw = &[][..];
    for field in fields(unknown) {
        if let (2, wire) = field? {
            raw = wire.bytes()?;
        }
    }
    Ok(raw)
}

/// A list page's `metadata.continue` (`None` on the last page) and
/// `metadata.resourceVersion`, read without looking into the items.
pub fn list_head(body: &[u8]) -> Read<(Option<String>, String)> {
    let mut continue_token = None;
    let mut resource_version = String::new();
    for field in fields(envelope_object(body)?) {
        if let (1, wire) = field? {
            for meta in fields(wire.bytes()?) {
                match meta? {
                    (2, v) => resource_version = v.str()?.to_string(),
                    (3, v) => continue_token = v.non_empty_str()?.map(str::to_string),
                    _ => {}
                }
            }
        }
    }
    Ok((continue_token, resource_version))
}

/// What an error answer says, read from a `metav1.Status` in protobuf
/// (the answer to a request that asked for protobuf).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StatusFields {
    pub message: String,
    pub reason: String,
    pub code: u16,
    /// `details.retryAfterSeconds` (0: none).
    pub retry_after_seconds: u32,
}

impl StatusFields {
    /// The Status as the JSON the API server would have answered.
    pub fn to_json(&self) -> serde_json::Value {
        let mut status = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.retry_after_seconds > 0 {
            status["details"] = serde_json::json!({"retryAfterSeconds": self.retry_after_seconds});
        }
        status
    }
}

/// A `metav1.Status` body: message 3, reason 4, details 5 (its
/// `retryAfterSeconds` 5), code 6.
pub fn status(body: &[u8]) -> Read<StatusFields> {
    let mut status = StatusFields::default();
    for field in fields(envelope_object(body)?) {
        match field? {
            (3, v) => status.message = v.str()?.to_string(),
            (4, v) => status.reason = v.str()?.to_string(),
            (5, v) => {
                for detail in fields(v.bytes()?) {
                    if let (5, v) = detail? {
                        status.retry_after_seconds = u32::try_from(v.varint()?).unwrap_or(0);
                    }
                }
            }
            (6, v) => status.code = u16::try_from(v.varint()?).unwrap_or(0),
            _ => {}
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A length-delimited field.
    fn bytes_field(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2];
        out.extend(varint(bytes.len() as u64));
        out.extend_from_slice(bytes);
        out
    }

    fn varint(mut value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }

    fn varint_field(number: u8, value: u64) -> Vec<u8> {
        [vec![number << 3], varint(value)].concat()
    }

    /// `k8s\0` + Unknown{typeMeta, raw: `object`}.
    fn envelope(kind: &str, object: &[u8]) -> Vec<u8> {
        let type_meta = [bytes_field(1, b"v1"), bytes_field(2, kind.as_bytes())].concat();
        let unknown = [bytes_field(1, &type_meta), bytes_field(2, object)].concat();
        [MAGIC.to_vec(), unknown].concat()
    }

    #[test]
    fn a_list_head_is_read_from_the_list_meta_whichever_side_of_the_items_it_is() {
        let meta = [bytes_field(2, b"42"), bytes_field(3, b"next-page")].concat();
        let item = bytes_field(1, &bytes_field(1, b"a-pod"));
        let meta_first = [bytes_field(1, &meta), bytes_field(2, &item)].concat();
        let meta_last = [bytes_field(2, &item), bytes_field(1, &meta)].concat();
        for list in [meta_first, meta_last] {
            assert_eq!(
                list_head(&envelope("PodList", &list)).unwrap(),
                (Some("next-page".to_string()), "42".to_string())
            );
        }
        // The last page: an empty continue token is none.
        let last = bytes_field(1, &[bytes_field(2, b"43"), bytes_field(3, b"")].concat());
        assert_eq!(
            list_head(&envelope("PodList", &last)).unwrap(),
            (None, "43".to_string())
        );
    }

    #[test]
    fn an_error_status_in_protobuf_reads_as_its_json() {
        let details = varint_field(5, 3);
        let status = [
            bytes_field(2, b"Failure"),
            bytes_field(3, b"pods is forbidden"),
            bytes_field(4, b"Forbidden"),
            bytes_field(5, &details),
            varint_field(6, 403),
        ]
        .concat();
        let read = super::status(&envelope("Status", &status)).unwrap();
        assert_eq!(
            read,
            StatusFields {
                message: "pods is forbidden".into(),
                reason: "Forbidden".into(),
                code: 403,
                retry_after_seconds: 3,
            }
        );
        let json = read.to_json();
        let parsed: kube::core::Status = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.code, 403);
        assert_eq!(parsed.details.unwrap().retry_after_seconds, 3);
    }

    #[test]
    fn broken_protobuf_is_an_error_never_a_panic() {
        let good = envelope("PodList", &bytes_field(1, &bytes_field(2, b"7")));
        assert!(is_protobuf(&good) && !is_protobuf(b"{\"items\":[]}"));
        // Every truncation of a good body, and a few bad bytes.
        for end in MAGIC.len()..good.len() {
            let _ = list_head(&good[..end]);
            let _ = super::status(&good[..end]);
        }
        assert!(list_head(b"{}").is_err(), "JSON is not protobuf");
        let too_long = [MAGIC, &[0x12, 0x7f, 0x01][..]].concat();
        assert!(list_head(&too_long).is_err(), "a length past the end");
        let endless = [MAGIC, &[0x08][..], &[0xff; 11][..]].concat();
        assert!(list_head(&endless).is_err(), "a varint of eleven bytes");
        let group = [MAGIC, &[0x0b][..]].concat();
        assert!(
            list_head(&group).is_err(),
            "a wire type no Kubernetes message uses"
        );
        let not_utf8 = envelope("PodList", &bytes_field(1, &bytes_field(2, &[0xff, 0xfe])));
        assert!(list_head(&not_utf8).is_err());
    }
}
