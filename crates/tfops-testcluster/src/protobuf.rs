//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) for
//! the types Go clients send that way — core v1 `Secret` and `ConfigMap` (Helm 4's release
//! storage) — into the JSON the store works with. Responses are always JSON (clients accept
//! it). Pure.
//!
//! Envelope: magic `k8s\0`, then `runtime.Unknown { typeMeta = 1 { apiVersion = 1, kind = 2 },
//! raw = 2, contentEncoding = 3, contentType = 4 }`; field numbers of the payloads follow
//! `k8s.io/api/core/v1/generated.proto` and `apimachinery/pkg/apis/meta/v1/generated.proto`.

use base64::Engine as _;
use serde_json::{json, Map, Value};

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// Not a Kubernetes protobuf envelope or malformed wire data.
    #[error("malformed protobuf body: {0}")]
    Malformed(&'static str),
    /// A kind this server does not decode from protobuf.
    #[error("protobuf bodies are not supported for {0}; send JSON")]
    Unsupported(String),
}

/// Content type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// One wire field: number and value.
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(ProtoError::Malformed("truncated varint"))?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(ProtoError::Malformed("varint too long"))
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, ProtoError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wire) = (key >> 3, key & 7);
        let f = match wire {
            0 => Field::Varint(self.varint()?),
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| ProtoError::Malformed("length"))?;
                let end = self
                    .pos
                    .checked_add(len)
                    .ok_or(ProtoError::Malformed("length"))?;
                let s = self
                    .buf
                    .get(self.pos..end)
                    .ok_or(ProtoError::Malformed("truncated field"))?;
                self.pos = end;
                Field::Bytes(s)
            }
            1 => {
                self.pos += 8;
                Field::Varint(0)
            }
            5 => {
                self.pos += 4;
                Field::Varint(0)
            }
            _ => return Err(ProtoError::Malformed("unsupported wire type")),
        };
        if self.pos > self.buf.len() {
            return Err(ProtoError::Malformed("truncated fixed field"));
        }
        Ok(Some((num, f)))
    }
}

fn utf8(b: &[u8]) -> Result<String, ProtoError> {
    String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Malformed("invalid UTF-8 string"))
}

/// A `map<string, string|bytes>` entry `{key = 1, value = 2}`.
fn map_entry(b: &[u8]) -> Result<(String, Vec<u8>), ProtoError> {
    let mut r = Reader::new(b);
    let (mut k, mut v) = (String::new(), Vec::new());
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => k = utf8(x)?,
            (2, Field::Bytes(x)) => v = x.to_vec(),
            _ => {}
        }
    }
    Ok((k, v))
}

fn insert_str_map(
    obj: &mut Map<String, Value>,
    key: &str,
    k: String,
    v: Vec<u8>,
) -> Result<(), ProtoError> {
    let m = obj.entry(key.to_string()).or_insert_with(|| json!({}));
    if let Some(m) = m.as_object_mut() {
        m.insert(k, Value::String(utf8(&v)?));
    }
    Ok(())
}

fn insert_bytes_map(obj: &mut Map<String, Value>, key: &str, k: String, v: &[u8]) {
    let m = obj.entry(key.to_string()).or_insert_with(|| json!({}));
    if let Some(m) = m.as_object_mut() {
        m.insert(
            k,
            Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
        );
    }
}

fn object_meta(b: &[u8]) -> Result<Value, ProtoError> {
    let mut r = Reader::new(b);
    let mut m = Map::new();
    let mut finalizers = Vec::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => {
                m.insert("name".into(), Value::String(utf8(x)?));
            }
            (2, Field::Bytes(x)) => {
                m.insert("generateName".into(), Value::String(utf8(x)?));
            }
            (3, Field::Bytes(x)) => {
                m.insert("namespace".into(), Value::String(utf8(x)?));
            }
            (5, Field::Bytes(x)) => {
                m.insert("uid".into(), Value::String(utf8(x)?));
            }
            (6, Field::Bytes(x)) => {
                m.insert("resourceVersion".into(), Value::String(utf8(x)?));
            }
            (11, Field::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                insert_str_map(&mut m, "labels", k, v)?;
            }
            (12, Field::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                insert_str_map(&mut m, "annotations", k, v)?;
            }
            (14, Field::Bytes(x)) => finalizers.push(Value::String(utf8(x)?)),
            _ => {}
        }
    }
    // Empty strings are how proto2 optional fields arrive when unset by Go.
    m.retain(|_, v| v.as_str() != Some(""));
    if !finalizers.is_empty() {
        m.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(m))
}

fn secret(b: &[u8]) -> Result<Map<String, Value>, ProtoError> {
    let mut r = Reader::new(b);
    let mut o = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => {
                o.insert("metadata".into(), object_meta(x)?);
            }
            (2, Field::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                insert_bytes_map(&mut o, "data", k, &v);
            }
            (3, Field::Bytes(x)) => {
                o.insert("type".into(), Value::String(utf8(x)?));
            }
            (4, Field::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                insert_str_map(&mut o, "stringData", k, v)?;
            }
            (5, Field::Varint(v)) => {
                o.insert("immutable".into(), Value::Bool(v != 0));
            }
            _ => {}
        }
    }
    Ok(o)
}

fn config_map(b: &[u8]) -> Result<Map<String, Value>, ProtoError> {
    let mut r = Reader::new(b);
    let mut o = Map::new();
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(x)) => {
                o.insert("metadata".into(), object_meta(x)?);
            }
            (2, Field::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                insert_str_map(&mut o, "data", k, v)?;
            }
            (3, Field::Bytes(x)) => {
                let (k, v) = map_entry(x)?;
                insert_bytes_map(&mut o, "binaryData", k, &v);
            }
            (4, Field::Varint(v)) => {
                o.insert("immutable".into(), Value::Bool(v != 0));
            }
            _ => {}
        }
    }
    Ok(o)
}

/// Decode a protobuf request body into a JSON object.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    let rest = body
        .strip_prefix(b"k8s\0")
        .ok_or(ProtoError::Malformed("missing k8s magic"))?;
    let mut r = Reader::new(rest);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                let mut t = Reader::new(tm);
                while let Some((tn, tf)) = t.next()? {
                    match (tn, tf) {
                        (1, Field::Bytes(x)) => api_version = utf8(x)?,
                        (2, Field::Bytes(x)) => kind = utf8(x)?,
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(x)) => raw = x,
            _ => {}
        }
    }
    let mut obj = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Secret") => secret(raw)?,
        ("v1", "ConfigMap") => config_map(raw)?,
        _ => return Err(ProtoError::Unsupported(format!("{api_version} {kind}"))),
    };
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(n: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn entry(k: &str, v: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        field(1, k.as_bytes(), &mut e);
        field(2, v, &mut e);
        e
    }

    #[test]
    fn decodes_a_helm_release_secret() {
        let mut meta = Vec::new();
        field(1, b"sh.helm.release.v1.demo.v1", &mut meta);
        field(2, b"", &mut meta);
        field(11, &entry("owner", b"helm"), &mut meta);
        field(11, &entry("status", b"deployed"), &mut meta);
        field(14, b"example.com/f", &mut meta);
        let mut sec = Vec::new();
        field(1, &meta, &mut sec);
        field(2, &entry("release", b"\x00\x01bin"), &mut sec);
        field(3, b"helm.sh/release.v1", &mut sec);
        varint(5 << 3, &mut sec);
        varint(1, &mut sec);
        let mut tm = Vec::new();
        field(1, b"v1", &mut tm);
        field(2, b"Secret", &mut tm);
        let mut body = b"k8s\0".to_vec();
        field(1, &tm, &mut body);
        field(2, &sec, &mut body);
        field(3, b"", &mut body);
        let v = decode(&body).unwrap();
        assert_eq!(v["kind"], "Secret");
        assert_eq!(v["metadata"]["name"], "sh.helm.release.v1.demo.v1");
        assert!(v["metadata"].get("generateName").is_none());
        assert_eq!(v["metadata"]["labels"]["status"], "deployed");
        assert_eq!(v["metadata"]["finalizers"][0], "example.com/f");
        assert_eq!(v["data"]["release"], "AAFiaW4=");
        assert_eq!(v["type"], "helm.sh/release.v1");
        assert_eq!(v["immutable"], true);
    }

    #[test]
    fn rejects_garbage_and_unknown_kinds() {
        assert!(decode(b"{}").is_err());
        assert!(decode(b"k8s\0\x0a\xff").is_err());
        let mut tm = Vec::new();
        field(1, b"apps/v1", &mut tm);
        field(2, b"Deployment", &mut tm);
        let mut body = b"k8s\0".to_vec();
        field(1, &tm, &mut body);
        assert!(matches!(decode(&body), Err(ProtoError::Unsupported(_))));
    }
}
