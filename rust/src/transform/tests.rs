use super::*;
use crate::decode::{Decoder, DecoderOptions};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::Value;
use std::sync::Arc;

fn tf(paths: &[&str]) -> Transform {
    Transform::new(paths.iter().map(|p| p.split('.').collect::<Vec<_>>())).unwrap()
}

fn cut(t: &Transform, json: &str) -> String {
    let r = t.removals(json.as_bytes());
    String::from_utf8(r.splice(json.as_bytes()).to_vec()).unwrap()
}

#[test]
fn removes_the_member_and_one_comma_wherever_it_is() {
    let t = tf(&["x"]);
    assert_eq!(cut(&t, r#"{"x":1,"a":2}"#), r#"{"a":2}"#);
    assert_eq!(cut(&t, r#"{"a":2,"x":1}"#), r#"{"a":2}"#);
    assert_eq!(cut(&t, r#"{"a":2,"x":1,"b":3}"#), r#"{"a":2,"b":3}"#);
    assert_eq!(cut(&t, r#"{"x":1}"#), r#"{}"#);
    assert_eq!(cut(&t, r#"{ "a" : 2 , "x" : [1,{"x":2}] }"#), r#"{ "a" : 2 }"#);
    assert_eq!(cut(&t, "{\n \"x\": {},\n \"a\": 2\n}"), "{\n \"a\": 2\n}");
    // Duplicate keys: every occurrence goes (with the comma between them).
    assert_eq!(cut(&t, r#"{"x":1,"x":2,"a":3,"x":4}"#), r#"{"a":3}"#);
    // Escaped key names match; string values naming the key do not.
    assert_eq!(cut(&t, r#"{"\u0078":1,"a":"x","y":{"x":"x"}}"#), r#"{"a":"x","y":{"x":"x"}}"#);
    // Nothing to drop: no ranges, the caller keeps the object as it is.
    assert!(t.removals(br#"{"a":{"x":1}}"#).is_empty());
    assert!(t.removals(b"[1]").is_empty());
}

#[test]
fn nested_paths_and_keys_with_dots() {
    let t = Transform::new([MANAGED_FIELDS, LAST_APPLIED, &["status", "conditions"]]).unwrap();
    let doc = r#"{"metadata":{"name":"a","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"metadata\":{}}","keep":"1"},"managedFields":[{"manager":"m"}]},"status":{"phase":"Running","conditions":[{"type":"Ready"}]},"spec":{"conditions":1}}"#;
    assert_eq!(
        cut(&t, doc),
        r#"{"metadata":{"name":"a","annotations":{"keep":"1"}},"status":{"phase":"Running"},"spec":{"conditions":1}}"#
    );
    // A path through a non-object value drops nothing.
    assert!(tf(&["spec.conditions.x"]).removals(doc.as_bytes()).is_empty());
}

#[test]
fn protected_and_empty_paths_are_refused() {
    for bad in [
        &["metadata"][..],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "uid"],
        &["metadata", "resourceVersion"],
    ] {
        assert!(Transform::new([bad]).unwrap_err().to_string().contains("cannot be dropped"), "{bad:?}");
    }
    assert!(Transform::new([Vec::<String>::new()]).is_err());
    assert!(Transform::new([["metadata", "name", "x"]]).is_ok());
}

#[test]
fn combine_unions_paths() {
    let a = tf(&["a", "b"]);
    let b = tf(&["b", "c.d"]);
    let c = a.combine(&b);
    let want: Vec<Vec<&str>> = vec![vec!["a"], vec!["b"], vec!["c", "d"]];
    let got: Vec<Vec<&str>> = c.paths().iter().map(|p| p.iter().map(|s| &**s).collect()).collect();
    assert_eq!(got, want);
}

#[test]
fn positions_map_across_the_cut() {
    // "{"a":1,"x":22,"b":3}": the cut is `"x":22,` at 7..14.
    let r = tf(&["x"]).removals(br#"{"a":1,"x":22,"b":3}"#);
    assert_eq!(r.ranges(), &[(7, 14)]);
    assert_eq!((r.map(6), r.map(7), r.map(13), r.map(14), r.map(19)), (Some(6), None, None, Some(7), Some(12)));
    assert_eq!((r.map_end(7), r.map_end(14), r.map_end(20)), (7, 7, 13));
    assert_eq!(r.removed(), 7);
}

const POD: &str = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"managedFields":[{"manager":"kubelet","fieldsV1":{"f:status":{}}}],"name":"web-1","namespace":"prod","uid":"u-1","resourceVersion":"42","labels":{"app":"web","tier":"fe"},"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"kind\":\"Pod\"}\n"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"r1","controller":true}]},"spec":{"nodeName":"n1"},"status":{"phase":"Running","conditions":[{"type":"Ready"}]}}"#;

#[test]
fn applied_object_keeps_its_metadata() {
    let o = Object::from_json(POD.as_bytes()).unwrap();
    let t = Transform::new([MANAGED_FIELDS, LAST_APPLIED, &["status", "conditions"]]).unwrap();
    let out = t.apply(&o).unwrap();
    assert!(!out.json.windows(13).any(|w| w == b"managedFields"));
    assert_eq!(out.meta_values(), crate::object::extract_meta(&out.json).unwrap());
    assert_eq!(out.meta_values(), o.meta_values());
    assert_eq!(&*out.key, "prod/web-1");
    assert_eq!(out.label("tier").as_deref(), Some("fe"));
    assert_eq!(out.field_values("status.phase"), vec!["Running".to_string()]);
    assert!(out.field_values("status.conditions").is_empty());
    assert!(t.apply(&out).is_none(), "nothing left to drop");
    // Dropping labels: the metadata says there are none.
    let nolabels = tf(&["metadata.labels", "kind"]).apply(&o).unwrap();
    assert!(nolabels.labels().is_empty() && nolabels.kind().is_empty());
    assert_eq!(nolabels.meta_values(), crate::object::extract_meta(&nolabels.json).unwrap());
}

#[test]
fn decoder_applies_the_transform_with_captures() {
    let mut d = Decoder::new(DecoderOptions { http: false, ..Default::default() });
    d.set_field_paths(vec!["spec.nodeName".into(), "status".into(), "status.phase".into(), "status.conditions".into()]);
    d.set_transform(Some(Arc::new(Transform::new([MANAGED_FIELDS, LAST_APPLIED, &["status", "conditions"]]).unwrap())));
    let mut out = Vec::new();
    let line = format!("{{\"type\":\"MODIFIED\",\"object\":{POD}}}\n{{\"type\":\"BOOKMARK\",\"object\":{{\"metadata\":{{\"resourceVersion\":\"43\"}}}}}}\n");
    d.feed(line.as_bytes(), &mut out).unwrap();
    assert_eq!(out.len(), 2);
    let o = out[0].object.clone().unwrap();
    let want = Transform::new([MANAGED_FIELDS, LAST_APPLIED, &["status", "conditions"]])
        .unwrap()
        .apply(&Object::from_json(POD.as_bytes()).unwrap())
        .unwrap();
    assert_eq!(o.json, want.json);
    assert!(o.fields.is_some());
    for path in ["spec.nodeName", "status", "status.phase", "status.conditions"] {
        assert_eq!(o.field_values(path), crate::decode::field_values(&o.json, path), "{path}");
    }
    assert_eq!(o.field_values("status.phase"), vec!["Running".to_string()]);
    assert_eq!(o.meta_values(), crate::object::extract_meta(&o.json).unwrap());
    assert_eq!(&*out[0].resource_version, "42");
    assert_eq!(&*out[1].resource_version, "43");
}

// ---- property: any object, the key anywhere, any whitespace and escaping ------------------

const KEYS: &[&str] =
    &["managedFields", "metadata", "labels", "a", "b.c", "status", "conditions", "k\"q\\", "é\u{1F600}", ""];

fn key() -> impl Strategy<Value = String> {
    proptest::sample::select(KEYS).prop_map(String::from)
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        // Strings that spell the keys (also with quotes) must never match.
        key().prop_map(Value::String),
        key().prop_map(|k| Value::String(format!("\"{k}\":1,"))),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    btree_map(key(), value(), 0..7).prop_map(|m| Value::Object(m.into_iter().collect()))
}

struct Style(u64);

impl Style {
    fn next(&mut self) -> u64 {
        // xorshift64: a deterministic stream of choices from the generated seed.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn ws(&mut self, out: &mut String) {
        out.push_str(["", "", " ", "\n", "\t ", "\r\n  "][(self.next() % 6) as usize]);
    }
    fn string(&mut self, s: &str, out: &mut String) {
        if self.next() % 3 == 0 {
            // Every character escaped: keys must match after unescaping.
            out.push('"');
            for u in s.encode_utf16() {
                out.push_str(&format!("\\u{u:04x}"));
            }
            out.push('"');
        } else {
            out.push_str(&serde_json::to_string(s).unwrap());
        }
    }
    fn render(&mut self, v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                out.push('{');
                self.ws(out);
                let items: Vec<_> = m.iter().collect();
                // A rotation puts any member first, last or in the middle.
                let rot = if items.is_empty() { 0 } else { (self.next() as usize) % items.len() };
                for (i, (k, v)) in items.iter().cycle().skip(rot).take(items.len()).enumerate() {
                    if i > 0 {
                        self.ws(out);
                        out.push(',');
                        self.ws(out);
                    }
                    self.string(k, out);
                    self.ws(out);
                    out.push(':');
                    self.ws(out);
                    self.render(v, out);
                }
                self.ws(out);
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        self.ws(out);
                    }
                    self.render(v, out);
                }
                out.push(']');
            }
            Value::String(s) => self.string(s, out),
            other => out.push_str(&other.to_string()),
        }
    }
}

fn remove(v: &mut Value, path: &[String]) {
    if let Value::Object(m) = v {
        if path.len() == 1 {
            m.remove(&path[0]);
        } else if let Some(child) = m.get_mut(&path[0]) {
            remove(child, &path[1..]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn splice_equals_the_model_without_the_paths(
        doc in object(),
        paths in vec(vec(key(), 1..4), 1..4),
        seed in 1u64..,
    ) {
        let Ok(t) = Transform::new(&paths) else { return Ok(()) };
        let mut text = String::new();
        let mut style = Style(seed);
        style.ws(&mut text);
        style.render(&doc, &mut text);
        style.ws(&mut text);
        let r = t.removals(text.as_bytes());
        let out = r.splice(text.as_bytes());
        let got: Value = serde_json::from_slice(&out).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&out))))?;
        let mut want = doc.clone();
        for p in &paths {
            remove(&mut want, p);
        }
        prop_assert_eq!(&got, &want, "{}", text);
        prop_assert_eq!(r.is_empty(), got == doc);
        prop_assert_eq!(out.len(), text.len() - r.removed());
        // Idempotent: nothing is left to drop.
        prop_assert!(t.removals(&out).is_empty());
    }

    #[test]
    fn metadata_positions_survive_the_cut(
        before in btree_map(key(), value(), 0..3),
        extra in btree_map(key(), value(), 0..3),
        labels in btree_map("[a-z]{1,3}", "[a-z\"é]{0,3}", 0..3),
        paths in vec(vec(key(), 1..3), 1..3),
        seed in 1u64..,
    ) {
        let mut meta = serde_json::Map::new();
        for (k, v) in &before { meta.insert(k.clone(), v.clone()); }
        meta.insert("name".into(), "n\"1".into());
        meta.insert("namespace".into(), "ns".into());
        meta.insert("uid".into(), "u".into());
        meta.insert("resourceVersion".into(), "9".into());
        meta.insert("labels".into(), serde_json::to_value(&labels).unwrap());
        meta.insert("managedFields".into(), serde_json::json!([{"manager": "m", "metadata": {"name": "x"}}]));
        meta.insert("ownerReferences".into(), serde_json::json!([{"apiVersion": "v1", "kind": "K", "name": "o", "uid": "x"}]));
        let mut doc = serde_json::Map::new();
        for (k, v) in &extra { if k != "metadata" { doc.insert(k.clone(), v.clone()); } }
        doc.insert("kind".into(), "Pod".into());
        doc.insert("metadata".into(), Value::Object(meta));
        let mut text = String::new();
        Style(seed).render(&Value::Object(doc), &mut text);
        let obj = Object::from_json(text.as_bytes()).unwrap();
        let mut all = paths.clone();
        all.push(vec!["metadata".into(), "managedFields".into()]);
        let Ok(t) = Transform::new(&all) else { return Ok(()) };
        let out = t.apply(&obj).expect("managedFields is always there");
        // What the cut object's metadata reads must be what a fresh parse of its bytes finds.
        prop_assert_eq!(out.meta_values(), crate::object::extract_meta(&out.json).unwrap());
        prop_assert_eq!(&out.key, &obj.key);
        prop_assert_eq!(out.meta_values().name, crate::object::Text::from("n\"1"));
    }
}

#[test]
fn the_walk_stops_after_the_members_its_paths_go_through() {
    // Past `metadata` nothing is read: the invalid tail is never scanned (the decoder has
    // validated real objects before), which is what makes dropping managedFields cheap.
    let t = Transform::new([MANAGED_FIELDS, LAST_APPLIED]).unwrap();
    let json = br#"{"kind":"Pod","metadata":{"name":"a","managedFields":[{"m":1}]},"spec":{]"#;
    let r = t.removals(json);
    assert_eq!(
        String::from_utf8(r.splice(json).to_vec()).unwrap(),
        r#"{"kind":"Pod","metadata":{"name":"a"},"spec":{]"#
    );
    // A path through another member walks the whole object.
    let t2 = t.combine(&tf(&["status.conditions"]));
    let json = br#"{"metadata":{"managedFields":1},"status":{"conditions":[]}}"#;
    assert_eq!(String::from_utf8(t2.removals(json).splice(json).to_vec()).unwrap(), r#"{"metadata":{},"status":{}}"#);
}
