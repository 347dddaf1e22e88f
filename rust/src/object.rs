//! The cached form of a Kubernetes object: its JSON bytes plus the metadata extracted once
//! when it was decoded. Shared (`Arc`) between the decoder, the DeltaFIFO, the Indexer and
//! Python views; never re-serialised.

use crate::error::{Error, Result};
pub use crate::json_buf::JsonBuf;
use serde::Deserialize;
use std::sync::Arc;

/// A metadata string. Most (apiVersion, kind, namespace, resourceVersion, label keys and
/// values, owner kinds) fit in 24 bytes and are kept inline: a pod's Meta used to be ~20
/// small heap allocations, each made on the decoder thread and freed on the processor's.
pub type Text = compact_str::CompactString;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: Text,
    pub kind: Text,
    pub name: Text,
    pub uid: Text,
    pub controller: bool,
}

/// Metadata extracted from an object. Invariant: every field equals what the JSON in
/// `Object::json` says (missing fields are empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub api_version: Text,
    pub kind: Text,
    pub namespace: Text,
    pub name: Text,
    pub uid: Text,
    pub resource_version: Text,
    pub labels: Vec<(Text, Text)>,
    // Annotations are not copied out: they are often large (last-applied-configuration
    // alone is ~1 KB) and only an annotation index reads them, from `Object::json`.
    pub owner_refs: Vec<OwnerRef>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Object {
    /// The object's JSON (exactly the bytes of the `object` value of a watch event, or of
    /// one list item, possibly after a transform).
    pub json: JsonBuf,
    pub meta: Meta,
    /// Cache key: `namespace/name`, or `name` when cluster-scoped. Shared (not copied) by
    /// the store's item map and every index set the object is in.
    pub key: Arc<str>,
    /// Field-path values the decoder captured (see `decode::Captured`); None: walk `json`.
    pub fields: Option<Box<crate::decode::Captured>>,
}

pub type ObjectRef = Arc<Object>;

pub fn make_key(namespace: &str, name: &str) -> Arc<str> {
    if namespace.is_empty() {
        name.into()
    } else {
        let mut s = String::with_capacity(namespace.len() + 1 + name.len());
        s.push_str(namespace);
        s.push('/');
        s.push_str(name);
        s.into()
    }
}

impl Object {
    pub fn new(json: JsonBuf, meta: Meta) -> Object {
        let key = make_key(&meta.namespace, &meta.name);
        Object { json, meta, key, fields: None }
    }

    /// Parse a JSON object (e.g. a LIST item) and extract its metadata, validating it, with
    /// the watch decoder's scanner (several times faster than the serde_json reference
    /// `extract_meta`, which `rust/tests/decode_meta.rs` checks it against).
    pub fn from_json(json: &[u8]) -> Result<Object> {
        let meta = crate::decode::extract_meta(json)?;
        Ok(Object::new(json.into(), meta))
    }

    /// Values at a dotted field path (`spec.nodeName`): a scalar gives its text, a list of
    /// scalars one value per element, absent or null gives none.
    pub fn field_values(&self, path: &str) -> Vec<String> {
        // The watch decoder's scanner walks the bytes; no serde_json::Value is built. (A
        // non-validating walk, `decode::trusted`, measured no faster: the scanner's skip
        // already runs at ~1 GB/s.)
        if let Some(span) = self.fields.as_ref().and_then(|f| f.get(path)) {
            return crate::decode::values_at_span(&self.json, span);
        }
        crate::decode::field_values(&self.json, path)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawOwnerRef<'a> {
    #[serde(rename = "apiVersion", borrow)]
    api_version: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    uid: std::borrow::Cow<'a, str>,
    controller: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMeta<'a> {
    #[serde(borrow)]
    namespace: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    uid: std::borrow::Cow<'a, str>,
    #[serde(rename = "resourceVersion", borrow)]
    resource_version: std::borrow::Cow<'a, str>,
    labels: Option<std::collections::BTreeMap<String, String>>,
    // Parsed only so that the same type rules apply as in the decoder; not kept.
    #[allow(dead_code)]
    annotations: Option<std::collections::BTreeMap<String, String>>,
    #[serde(rename = "ownerReferences", borrow)]
    owner_references: Option<Vec<RawOwnerRef<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawObject<'a> {
    #[serde(rename = "apiVersion", borrow)]
    api_version: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    metadata: Option<RawMeta<'a>>,
}

/// Reference metadata extraction with serde_json (validates the whole document).
pub fn extract_meta(json: &[u8]) -> Result<Meta> {
    let raw: RawObject = serde_json::from_slice(json).map_err(|e| Error::Decode {
        offset: 0,
        message: format!("invalid object JSON: {e}"),
    })?;
    let m = raw.metadata.unwrap_or_default();
    Ok(Meta {
        api_version: raw.api_version.as_ref().into(),
        kind: raw.kind.as_ref().into(),
        namespace: m.namespace.as_ref().into(),
        name: m.name.as_ref().into(),
        uid: m.uid.as_ref().into(),
        resource_version: m.resource_version.as_ref().into(),
        labels: m.labels.unwrap_or_default().into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        owner_refs: m
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .map(|o| OwnerRef {
                api_version: o.api_version.as_ref().into(),
                kind: o.kind.as_ref().into(),
                name: o.name.as_ref().into(),
                uid: o.uid.as_ref().into(),
                controller: o.controller.unwrap_or(false),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_metadata_and_key() {
        let o = Object::from_json(
            br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","namespace":"ns","uid":"u1",
            "resourceVersion":"7","labels":{"app":"x"},"ownerReferences":[{"apiVersion":"apps/v1",
            "kind":"ReplicaSet","name":"rs","uid":"r1","controller":true}]},"spec":{"nodeName":"n1"}}"#,
        )
        .unwrap();
        assert_eq!(&*o.key, "ns/a");
        assert_eq!(&*o.meta.uid, "u1");
        assert_eq!(o.meta.labels, vec![("app".into(), "x".into())]);
        assert_eq!(&*o.meta.owner_refs[0].kind, "ReplicaSet");
        assert!(o.meta.owner_refs[0].controller);
        assert_eq!(o.field_values("spec.nodeName"), vec!["n1".to_string()]);
        assert!(o.field_values("spec.missing").is_empty());
    }

    #[test]
    fn cluster_scoped_key_is_name() {
        let o = Object::from_json(br#"{"metadata":{"name":"node1"}}"#).unwrap();
        assert_eq!(&*o.key, "node1");
    }

    #[test]
    fn bad_json_is_decode_error() {
        assert!(matches!(Object::from_json(b"{\"metadata\":"), Err(Error::Decode { .. })));
    }
}
