//! Just enough of the protobuf wire format to read the few request bodies
//! kubectl sends as `application/vnd.kubernetes.protobuf` that mesh-sim
//! answers (the self-reviews behind `kubectl auth can-i` and `whoami`).
//!
//! A Kubernetes protobuf body is the magic `k8s\0` followed by a
//! `runtime.Unknown` message whose field 2 holds the object's own message.
//! Decoding arbitrary kinds would need every type's schema; other protobuf
//! bodies are refused with 415.

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

    /// The object inside a Kubernetes protobuf envelope.
    pub fn unwrap_envelope(body: &'a [u8]) -> Option<Self> {
        let unknown = Message::parse(body.strip_prefix(b"k8s\0")?)?;
        Message::parse(unknown.bytes(2)?)
    }

    /// The last value of a length-delimited field.
    pub fn bytes(&self, number: u64) -> Option<&'a [u8]> {
        self.fields.iter().rev().find_map(|(n, v)| match v {
            Wire::Bytes(b) if *n == number => Some(*b),
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
    fn nested_strings_are_read_through_the_envelope() {
        let inner = [field(2, b"patch"), field(5, b"deployments")].concat();
        let object = field(2, &field(1, &inner));
        let unknown = [field(1, b"\x0a\x02v1"), field(2, &object), vec![0x18, 0x01]].concat();
        let body = [b"k8s\0".to_vec(), unknown].concat();
        let obj = Message::unwrap_envelope(&body).expect("decodes");
        let attrs = obj
            .message(2)
            .and_then(|spec| spec.message(1))
            .expect("attributes");
        assert_eq!(attrs.string(2), Some("patch"));
        assert_eq!(attrs.string(5), Some("deployments"));
        assert_eq!(attrs.string(7), None);
    }

    #[test]
    fn truncated_bytes_are_rejected() {
        assert!(Message::parse(&[0x12, 0x05, b'a']).is_none());
        assert!(Message::unwrap_envelope(b"{\"json\":true}").is_none());
    }
}
