//! Index functions: map an object to zero or more index values. The built-ins run in Rust on
//! the metadata the decoder already extracted; anything else (a Python callable) implements
//! `IndexFn` in the binding.

use crate::error::Foreign;
use crate::object::{Object, ObjectRef};
use std::sync::Arc;

/// An index function. Implementations must be pure: the store calls it once per object
/// version (before taking its lock) and remembers the result, so that an update can remove
/// exactly the values the old version was indexed under.
pub trait IndexFn: Send + Sync {
    fn values(&self, obj: &ObjectRef) -> Result<Vec<String>, Foreign>;

    /// For a field index: its dotted path, which the watch decoder then captures while it
    /// decodes (see `decode::Captured`), so computing the values needs no JSON walk.
    fn field_path(&self) -> Option<&str> {
        None
    }
}

/// The built-in index functions (client-go's `MetaNamespaceIndexFunc` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuiltinIndex {
    /// The namespace; cluster-scoped objects have no value (not the empty string), so they
    /// don't all collect under "".
    Namespace,
    Label(Box<str>),
    Annotation(Box<str>),
    /// Dotted field path, e.g. `spec.nodeName` (see `Object::field_values`).
    Field(Box<str>),
    OwnerUid,
    /// `Kind/name` of each owner reference.
    OwnerKind,
}

impl BuiltinIndex {
    /// Infallible form used by the binding's `IndexFunc.values`.
    pub fn compute(&self, obj: &Object) -> Vec<String> {
        match self {
            BuiltinIndex::Namespace => {
                let ns = obj.namespace();
                if ns.is_empty() {
                    Vec::new()
                } else {
                    vec![ns.into_owned()]
                }
            }
            BuiltinIndex::Label(k) => obj.label(k).map(|v| v.into_owned()).into_iter().collect(),
            BuiltinIndex::Annotation(k) => crate::decode::annotation_trusted(&obj.json, k).into_iter().collect(),
            BuiltinIndex::Field(path) => obj.field_values(path),
            BuiltinIndex::OwnerUid => {
                obj.owner_ref_strs().into_iter().map(|([_, _, _, uid], _)| uid.resolve(&obj.json).into_owned()).collect()
            }
            BuiltinIndex::OwnerKind => obj
                .owner_ref_strs()
                .into_iter()
                .map(|([_, kind, name, _], _)| format!("{}/{}", kind.resolve(&obj.json), name.resolve(&obj.json)))
                .collect(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            BuiltinIndex::Namespace => "namespace()".into(),
            BuiltinIndex::Label(k) => format!("label({k:?})"),
            BuiltinIndex::Annotation(k) => format!("annotation({k:?})"),
            BuiltinIndex::Field(p) => format!("field({p:?})"),
            BuiltinIndex::OwnerUid => "owner_uid()".into(),
            BuiltinIndex::OwnerKind => "owner_kind()".into(),
        }
    }
}

impl IndexFn for BuiltinIndex {
    fn values(&self, obj: &ObjectRef) -> Result<Vec<String>, Foreign> {
        Ok(self.compute(obj))
    }

    fn field_path(&self) -> Option<&str> {
        match self {
            BuiltinIndex::Field(p) => Some(p),
            _ => None,
        }
    }
}

/// One named index function as the store holds it.
#[derive(Clone)]
pub struct IndexDef {
    pub name: Box<str>,
    pub func: Arc<dyn IndexFn>,
}

impl IndexDef {
    pub fn new(name: impl Into<Box<str>>, func: Arc<dyn IndexFn>) -> Self {
        IndexDef { name: name.into(), func }
    }
    pub fn builtin(name: impl Into<Box<str>>, b: BuiltinIndex) -> Self {
        IndexDef { name: name.into(), func: Arc::new(b) }
    }
}

/// The values of one object for every index of a store, in index order. Each entry is
/// sorted and deduplicated, so membership and diffing are cheap and a function returning
/// ["a", "a"] indexes the object once.
pub type IndexValues = Box<[Box<[Box<str>]>]>;

pub(crate) fn normalise(mut v: Vec<String>) -> Box<[Box<str>]> {
    if v.len() > 1 {
        v.sort_unstable();
        v.dedup();
    }
    v.into_iter().map(String::into_boxed_str).collect()
}

/// Compute `obj`'s values for each of `defs`. Must be called with no store lock held: a
/// Python index function takes the GIL, and a thread holding the GIL may be waiting for
/// the store lock.
pub fn compute_values(defs: &[IndexDef], obj: &ObjectRef) -> crate::error::Result<IndexValues> {
    defs.iter()
        .map(|d| {
            d.func
                .values(obj)
                .map(normalise)
                .map_err(|source| crate::error::Error::IndexFunc { index: d.name.to_string(), source })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(json: &str) -> Object {
        Object::from_json(json.as_bytes()).unwrap()
    }

    #[test]
    fn builtins() {
        let o = obj(r#"{"kind":"Pod","metadata":{"name":"a","namespace":"ns","labels":{"app":"web"},
            "annotations":{"team":"x"},"ownerReferences":[{"kind":"ReplicaSet","name":"rs1","uid":"u1"},
            {"kind":"Job","name":"j","uid":"u2"}]},"spec":{"nodeName":"n1","ports":[1,2]}}"#);
        assert_eq!(BuiltinIndex::Namespace.compute(&o), vec!["ns"]);
        assert_eq!(BuiltinIndex::Label("app".into()).compute(&o), vec!["web"]);
        assert!(BuiltinIndex::Label("nope".into()).compute(&o).is_empty());
        assert_eq!(BuiltinIndex::Annotation("team".into()).compute(&o), vec!["x"]);
        assert_eq!(BuiltinIndex::Field("spec.nodeName".into()).compute(&o), vec!["n1"]);
        assert_eq!(BuiltinIndex::Field("spec.ports".into()).compute(&o), vec!["1", "2"]);
        assert_eq!(BuiltinIndex::OwnerUid.compute(&o), vec!["u1", "u2"]);
        assert_eq!(BuiltinIndex::OwnerKind.compute(&o), vec!["ReplicaSet/rs1", "Job/j"]);
        // A repeated key keeps its last value; escapes are decoded (as serde would).
        let o = obj(r#"{"metadata":{"name":"a","labels":{"a\u0070p":"1","z":"y","app":"w\u0065b"},"ownerReferences":[{"uid":"\u0075"}]}}"#);
        assert_eq!(BuiltinIndex::Label("app".into()).compute(&o), vec!["web"]);
        assert_eq!(BuiltinIndex::OwnerUid.compute(&o), vec!["u"]);
        assert_eq!(o.label("app").as_deref(), Some("web"));
        assert_eq!(o.labels(), vec![("app".into(), "web".into()), ("z".into(), "y".into())]);
        let cluster = obj(r#"{"metadata":{"name":"n"}}"#);
        assert!(BuiltinIndex::Namespace.compute(&cluster).is_empty());
    }

    #[test]
    fn normalise_sorts_and_dedups() {
        let v = normalise(vec!["b".into(), "a".into(), "b".into()]);
        assert_eq!(v.iter().map(|s| &**s).collect::<Vec<_>>(), vec!["a", "b"]);
    }
}
