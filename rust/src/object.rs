//! The cached form of a Kubernetes object: its JSON bytes plus the metadata extracted once
//! when it was decoded. Shared (`Arc`) between the decoder, the DeltaFIFO, the Indexer and
//! Python views; never re-serialised.

use crate::error::{Error, Result};
pub use crate::json_buf::JsonBuf;
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;

/// A resolved metadata string (`MetaValues`, `OwnerRef`); inline up to 24 bytes.
pub type Text = compact_str::CompactString;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: Text,
    pub kind: Text,
    pub name: Text,
    pub uid: Text,
    pub controller: bool,
}

/// Metadata extracted from an object, by position in its JSON (read it through `Object`'s
/// accessors, or `Meta::values`). Invariant: every field locates what the JSON in
/// `Object::json` says (missing fields are empty). Positions, not copies: a pod's Meta was
/// ~550 B of inline `Text`s, vectors and heap strings, duplicating bytes `json` holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub api_version: JsonStr,
    pub kind: JsonStr,
    pub namespace: JsonStr,
    pub name: JsonStr,
    pub uid: JsonStr,
    pub resource_version: JsonStr,
    /// Where the `metadata.labels` object is in the JSON; 0 when absent or null. Labels
    /// and owner references are parsed again from there when read (a few dozen bytes,
    /// already validated): kept as positions into `json` (8 bytes a string) they were
    /// still a ~112-byte allocation per pod, read only by label/owner indices and
    /// `StoredObject.labels`/`owner_references`.
    pub labels_at: u32,
    /// Where the `metadata.ownerReferences` array is; 0 when absent or null.
    pub owners_at: u32,
    // Annotations are not located at all: only an annotation index reads them, and
    // `decode::annotation_trusted` finds them in `json`.
}

/// `Meta` with every string resolved: what the serde reference `extract_meta` returns and
/// what `Object::meta_values` gives, so the two can be compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaValues {
    pub api_version: Text,
    pub kind: Text,
    pub namespace: Text,
    pub name: Text,
    pub uid: Text,
    pub resource_version: Text,
    /// Sorted by key, keys unique.
    pub labels: Vec<(Text, Text)>,
    pub owner_refs: Vec<OwnerRef>,
}

/// A JSON string inside `Object::json`, by position: its raw bytes (between the quotes)
/// are `json[start..start + len]`; `ESCAPED` is set in `len` when they hold escapes, which
/// are then decoded on each read (rare: Kubernetes names and label values are plain).
/// 8 bytes, where a `Text` is 24 and a longer string (an owner's uid) also a heap copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonStr {
    start: u32,
    len: u32,
}

impl JsonStr {
    const ESCAPED: u32 = 1 << 31;

    /// Panics past 2 GiB: the apiserver's objects are a few MB at most (etcd's limit).
    pub fn new(start: usize, raw_len: usize, escaped: bool) -> JsonStr {
        let start = u32::try_from(start).expect("object JSON under 4 GiB");
        let len = u32::try_from(raw_len).ok().filter(|l| l & Self::ESCAPED == 0).expect("string under 2 GiB");
        JsonStr { start, len: if escaped { len | Self::ESCAPED } else { len } }
    }

    /// Whether the string is "" (raw bytes with escapes are never empty).
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The decoded string, borrowed from `json` unless it holds escapes.
    pub fn resolve(self, json: &[u8]) -> Cow<'_, str> {
        let raw = &json[self.start as usize..][..(self.len & !Self::ESCAPED) as usize];
        if self.len & Self::ESCAPED != 0 {
            return Cow::Owned(crate::decode::scan::unescape(raw));
        }
        // The decoder validated the bytes; checking again costs little on these short strings
        // and keeps a wrong span from becoming undefined behaviour.
        Cow::Borrowed(std::str::from_utf8(raw).expect("span of a validated JSON string"))
    }

    /// Move the string to where `map` says its first byte went (None: it was cut, so it
    /// reads as absent). Empty strings become the canonical empty span.
    fn rebase(&mut self, map: &impl Fn(u32) -> Option<u32>) {
        *self = match (self.len & !Self::ESCAPED, map(self.start)) {
            (0, _) | (_, None) => JsonStr::default(),
            (_, Some(start)) => JsonStr { start, len: self.len },
        };
    }

    fn shift_down(&mut self, base: u32) {
        // An empty string reads as "" wherever it points (absent owner fields are empty
        // spans at 0), and the non-span slots of `MetaRefs` have `len` 0 too.
        if self.len != 0 {
            self.start -= base;
        }
    }
}

/// A position in `Object::json` that fits the object's `Meta` (4 bytes).
pub(crate) fn position(p: usize) -> u32 {
    u32::try_from(p).expect("object JSON under 4 GiB")
}

impl Meta {
    /// Make positions relative to `base` (the decoder scans an object inside its event line).
    pub fn shift_down(&mut self, base: u32) {
        for s in [
            &mut self.api_version,
            &mut self.kind,
            &mut self.namespace,
            &mut self.name,
            &mut self.uid,
            &mut self.resource_version,
        ] {
            s.shift_down(base);
        }
        for p in [&mut self.labels_at, &mut self.owners_at] {
            if *p != 0 {
                *p -= base;
            }
        }
    }

    /// Positions onto bytes spliced by a transform: `map` gives a byte's new position, or
    /// None when the byte was cut (that field then reads as absent).
    pub fn rebase(&mut self, map: impl Fn(u32) -> Option<u32>) {
        for s in [
            &mut self.api_version,
            &mut self.kind,
            &mut self.namespace,
            &mut self.name,
            &mut self.uid,
            &mut self.resource_version,
        ] {
            s.rebase(&map);
        }
        for p in [&mut self.labels_at, &mut self.owners_at] {
            if *p != 0 {
                *p = map(*p).unwrap_or(0);
            }
        }
    }

    /// Every string resolved against the object's `json`.
    pub fn values(&self, json: &[u8]) -> MetaValues {
        let t = |s: JsonStr| -> Text { s.resolve(json).as_ref().into() };
        MetaValues {
            api_version: t(self.api_version),
            kind: t(self.kind),
            namespace: t(self.namespace),
            name: t(self.name),
            uid: t(self.uid),
            resource_version: t(self.resource_version),
            labels: crate::decode::labels_at(json, self.labels_at).into_iter().map(|(k, v)| (t(k), t(v))).collect(),
            owner_refs: crate::decode::owner_refs_at(json, self.owners_at)
                .into_iter()
                .map(|([a, k, n, u], controller)| OwnerRef { api_version: t(a), kind: t(k), name: t(n), uid: t(u), controller })
                .collect(),
        }
    }
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

/// Metadata positions are 32-bit (a string's length 31-bit), so no object may be larger;
/// the decoder's line limit is capped to it (etcd's own limit is a few MiB).
pub const MAX_OBJECT_BYTES: usize = (1 << 31) - 1;

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
        let key = make_key(&meta.namespace.resolve(&json), &meta.name.resolve(&json));
        Object { json, meta, key, fields: None }
    }

    pub fn api_version(&self) -> Cow<'_, str> {
        self.meta.api_version.resolve(&self.json)
    }
    pub fn kind(&self) -> Cow<'_, str> {
        self.meta.kind.resolve(&self.json)
    }
    pub fn namespace(&self) -> Cow<'_, str> {
        self.meta.namespace.resolve(&self.json)
    }
    pub fn name(&self) -> Cow<'_, str> {
        self.meta.name.resolve(&self.json)
    }
    pub fn uid(&self) -> Cow<'_, str> {
        self.meta.uid.resolve(&self.json)
    }
    pub fn resource_version(&self) -> Cow<'_, str> {
        self.meta.resource_version.resolve(&self.json)
    }

    /// Parse a JSON object (e.g. a LIST item) and extract its metadata, validating it, with
    /// the watch decoder's scanner (several times faster than the serde_json reference
    /// `extract_meta`, which `rust/tests/decode_meta.rs` checks it against).
    pub fn from_json(json: &[u8]) -> Result<Object> {
        if json.len() > MAX_OBJECT_BYTES {
            return Err(Error::Decode {
                offset: 0,
                message: format!("object of {} bytes exceeds the {MAX_OBJECT_BYTES}-byte limit", json.len()),
            });
        }
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

    /// Labels sorted by key (keys unique), borrowed from `json` unless escaped.
    pub fn labels(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        let json = &self.json;
        crate::decode::labels_at(json, self.meta.labels_at).into_iter().map(|(k, v)| (k.resolve(json), v.resolve(json))).collect()
    }

    pub fn label(&self, key: &str) -> Option<Cow<'_, str>> {
        crate::decode::label_at(&self.json, self.meta.labels_at, key).map(|v| v.resolve(&self.json))
    }

    /// Owner references as `[apiVersion, kind, name, uid]` positions and `controller`
    /// (resolve with `JsonStr::resolve(&self.json)`); what the owner indices read.
    pub fn owner_ref_strs(&self) -> Vec<([JsonStr; 4], bool)> {
        crate::decode::owner_refs_at(&self.json, self.meta.owners_at)
    }

    pub fn owner_refs(&self) -> Vec<OwnerRef> {
        self.meta.values(&self.json).owner_refs
    }

    /// The metadata with every string resolved.
    pub fn meta_values(&self) -> MetaValues {
        self.meta.values(&self.json)
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
pub fn extract_meta(json: &[u8]) -> Result<MetaValues> {
    let raw: RawObject = serde_json::from_slice(json).map_err(|e| Error::Decode {
        offset: 0,
        message: format!("invalid object JSON: {e}"),
    })?;
    let m = raw.metadata.unwrap_or_default();
    Ok(MetaValues {
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
        assert_eq!(&*o.uid(), "u1");
        assert_eq!((&*o.namespace(), &*o.name(), &*o.kind(), &*o.api_version()), ("ns", "a", "Pod", "v1"));
        assert_eq!(&*o.resource_version(), "7");
        assert_eq!(o.labels(), vec![("app".into(), "x".into())]);
        assert_eq!(o.label("app").as_deref(), Some("x"));
        assert_eq!(&*o.owner_refs()[0].kind, "ReplicaSet");
        assert!(o.owner_refs()[0].controller);
        assert_eq!(o.meta_values(), extract_meta(&o.json).unwrap());
        assert_eq!(o.field_values("spec.nodeName"), vec!["n1".to_string()]);
        assert!(o.field_values("spec.missing").is_empty());
    }

    #[test]
    fn object_fits_its_size_class() {
        // Arc<Object> is two counts plus the object: 112 B, one of mimalloc's size classes
        // (the next is 128). A field added here costs every cached object 16 B.
        assert!(std::mem::size_of::<Object>() <= 96, "{}", std::mem::size_of::<Object>());
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
