use super::*;
use crate::error::Foreign;
use crate::index::{BuiltinIndex, IndexFn};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) fn pod(ns: &str, name: &str, uid: &str, labels: &[(&str, &str)]) -> ObjectRef {
    let labels: serde_json::Map<String, serde_json::Value> =
        labels.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
    let j =
        serde_json::json!({"kind": "Pod", "metadata": {"name": name, "namespace": ns, "uid": uid, "labels": labels}});
    Arc::new(Object::from_json(serde_json::to_vec(&j).unwrap().as_slice()).unwrap())
}

/// Multi-valued: the `tags` label split on commas.
struct Tags;
impl IndexFn for Tags {
    fn values(&self, obj: &ObjectRef) -> std::result::Result<Vec<String>, Foreign> {
        Ok(BuiltinIndex::Label("tags".into())
            .compute(obj)
            .iter()
            .flat_map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>())
            .collect())
    }
}

struct Failing;
impl IndexFn for Failing {
    fn values(&self, _obj: &ObjectRef) -> std::result::Result<Vec<String>, Foreign> {
        Err(Foreign(Arc::new(std::io::Error::other("boom"))))
    }
}

fn sorted<S: std::ops::Deref<Target = str>>(v: Vec<S>) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|k| k.to_string()).collect();
    v.sort();
    v
}

fn tag_store() -> Store {
    Store::new(vec![IndexDef::new("tags", Arc::new(Tags)), IndexDef::builtin("ns", BuiltinIndex::Namespace)]).unwrap()
}

#[test]
fn update_from_a_to_ab_keeps_a() {
    let s = tag_store();
    s.add(pod("ns", "p", "u", &[("tags", "a")])).unwrap();
    s.update(pod("ns", "p", "u", &[("tags", "a,b")])).unwrap();
    s.check_invariants().unwrap();
    assert_eq!(sorted(s.index_keys("tags", "a").unwrap()), vec!["ns/p"]);
    assert_eq!(sorted(s.index_keys("tags", "b").unwrap()), vec!["ns/p"]);
    s.update(pod("ns", "p", "u", &[("tags", "b")])).unwrap();
    assert_eq!(sorted(s.list_index_values("tags")), vec!["b"]);
    s.delete("ns/p");
    assert!(s.list_index_values("tags").is_empty());
    assert!(s.list_index_values("ns").is_empty());
    s.check_invariants().unwrap();
}

#[test]
fn add_indexers_indexes_existing_items_and_rejects_duplicates() {
    let s = Store::default();
    s.add(pod("n1", "a", "1", &[("app", "x")])).unwrap();
    s.add(pod("n2", "b", "2", &[("app", "x")])).unwrap();
    s.add_indexers(vec![IndexDef::builtin("app", BuiltinIndex::Label("app".into()))]).unwrap();
    assert_eq!(sorted(s.index_keys("app", "x").unwrap()), vec!["n1/a", "n2/b"]);
    let err = s.add_indexers(vec![IndexDef::builtin("app", BuiltinIndex::Namespace)]).unwrap_err();
    assert_eq!(err, Error::IndexExists { name: "app".into() });
    assert!(matches!(s.by_index("nope", "x"), Err(Error::IndexNotFound { .. })));
    assert!(s.list_index_values("nope").is_empty());
    s.check_invariants().unwrap();
}

#[test]
fn replace_swaps_content_and_index() {
    let s = tag_store();
    s.add(pod("ns", "old", "1", &[("tags", "a")])).unwrap();
    s.replace(vec![pod("ns", "new", "2", &[("tags", "b")]), pod("other", "x", "3", &[])], "5").unwrap();
    assert_eq!(sorted(s.list_keys()), vec!["ns/new", "other/x"]);
    assert_eq!(sorted(s.list_index_values("tags")), vec!["b"]);
    assert_eq!(sorted(s.list_index_values("ns")), vec!["ns", "other"]);
    s.check_invariants().unwrap();
}

#[test]
fn index_unions_values_and_failing_function_changes_nothing() {
    let s = tag_store();
    s.add(pod("ns", "p", "1", &[("tags", "a")])).unwrap();
    s.add(pod("ns", "q", "2", &[("tags", "b")])).unwrap();
    let probe = pod("x", "probe", "9", &[("tags", "a,b")]);
    let mut got: Vec<String> = s.index("tags", &probe).unwrap().iter().map(|o| o.key.to_string()).collect();
    got.sort();
    assert_eq!(got, vec!["ns/p", "ns/q"]);
    s.add_indexers(vec![IndexDef::new("bad", Arc::new(Failing))]).unwrap_err();
    let f = Store::new(vec![IndexDef::new("bad", Arc::new(Failing))]).unwrap();
    assert!(matches!(f.add(pod("ns", "p", "1", &[])), Err(Error::IndexFunc { .. })));
    assert!(f.is_empty());
    assert_eq!(s.len(), 2);
    s.check_invariants().unwrap();
}

#[test]
fn nbytes_grows_with_content() {
    let s = tag_store();
    let empty = s.nbytes();
    s.add(pod("ns", "p", "1", &[("tags", "a,b")])).unwrap();
    assert!(s.nbytes() > empty + 50);
}

#[derive(Debug, Clone)]
enum Op {
    Upsert(u8, u8, Vec<u8>),
    Delete(u8),
    Replace(Vec<(u8, u8, Vec<u8>)>),
    AddNsIndex,
}

fn op() -> impl Strategy<Value = Op> {
    let obj = || (0u8..5, 0u8..3, proptest::collection::vec(0u8..4, 0..3));
    prop_oneof![
        6 => obj().prop_map(|(k, n, t)| Op::Upsert(k, n, t)),
        3 => (0u8..5).prop_map(Op::Delete),
        1 => proptest::collection::vec(obj(), 0..5).prop_map(Op::Replace),
        1 => Just(Op::AddNsIndex),
    ]
}

fn mk(k: u8, n: u8, tags: &[u8]) -> ObjectRef {
    let tags: Vec<String> = tags.iter().map(|t| format!("t{t}")).collect();
    pod(&format!("ns{n}"), &format!("p{k}"), "u", &[("tags", &tags.join(","))])
}

type Model = BTreeMap<String, (String, BTreeSet<String>)>;

fn expected_index(model: &Model, ns: bool) -> BTreeMap<String, BTreeSet<String>> {
    let mut idx: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (k, (n, tags)) in model {
        let vals: Vec<String> = if ns { vec![n.clone()] } else { tags.iter().cloned().collect() };
        for v in vals {
            idx.entry(v).or_default().insert(k.clone());
        }
    }
    idx
}

fn actual_index(s: &Store, name: &str) -> BTreeMap<String, BTreeSet<String>> {
    s.list_index_values(name)
        .into_iter()
        .map(|v| {
            let keys = s.index_keys(name, &v).unwrap().into_iter().map(|k| k.to_string()).collect();
            (v.to_string(), keys)
        })
        .collect()
}

proptest! {
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let s = Store::new(vec![IndexDef::new("tags", Arc::new(Tags))]).unwrap();
        let mut model: Model = BTreeMap::new();
        let mut has_ns = false;
        let entry = |k: u8, n: u8, t: &[u8]| {
            (format!("ns{n}/p{k}"), (format!("ns{n}"), t.iter().map(|t| format!("t{t}")).collect::<BTreeSet<_>>()))
        };
        for op in ops {
            match op {
                Op::Upsert(k, n, t) => {
                    s.upsert(mk(k, n, &t)).unwrap();
                    let (key, v) = entry(k, n, &t);
                    model.insert(key, v);
                }
                Op::Delete(k) => {
                    let key = model.keys().find(|key| key.ends_with(&format!("/p{k}"))).cloned();
                    if let Some(key) = key {
                        prop_assert!(s.delete(&key).is_some());
                        model.remove(&key);
                    } else {
                        let missing = format!("nsx/p{}", k);
                        prop_assert!(s.delete(&missing).is_none());
                    }
                }
                Op::Replace(list) => {
                    s.replace(list.iter().map(|(k, n, t)| mk(*k, *n, t)).collect(), "1").unwrap();
                    model = list.iter().map(|(k, n, t)| entry(*k, *n, t)).collect();
                }
                Op::AddNsIndex => {
                    let r = s.add_indexers(vec![IndexDef::builtin("ns", BuiltinIndex::Namespace)]);
                    prop_assert_eq!(r.is_err(), has_ns);
                    has_ns = true;
                }
            }
            s.check_invariants().map_err(TestCaseError::fail)?;
            prop_assert_eq!(sorted(s.list_keys()), model.keys().cloned().collect::<Vec<_>>());
            prop_assert_eq!(actual_index(&s, "tags"), expected_index(&model, false));
            if has_ns {
                prop_assert_eq!(actual_index(&s, "ns"), expected_index(&model, true));
            }
        }
    }
}
