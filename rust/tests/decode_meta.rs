//! The decoder's metadata extraction must agree with the reference `object::extract_meta`
//! (serde_json) on everything: realistic pods and generated odd objects.

#[path = "support/pods.rs"]
mod pods;

use kfast_native::decode::{extract_meta, Decoder, DecoderOptions};
use kfast_native::object;
use proptest::prelude::*;

#[test]
fn realistic_pods_agree_and_keep_exact_bytes() {
    let mut d = Decoder::new(DecoderOptions { http: false, ..Default::default() });
    let mut out = Vec::new();
    for i in 0..300 {
        let p = pods::pod(i);
        d.feed(pods::event_line("ADDED", &p).as_bytes(), &mut out).unwrap();
        let ev = out.pop().unwrap();
        let o = ev.object.unwrap();
        assert_eq!(&*o.json, p.as_bytes());
        assert_eq!(o.meta_values(), object::extract_meta(p.as_bytes()).unwrap(), "pod {i}");
        assert_eq!(&*ev.resource_version, &*o.resource_version());
    }
}

/// JSON string literal for `s`, escaping some characters differently to exercise unescape.
fn lit(s: &str, fancy: bool) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c if fancy && (c as u32) > 0xffff => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    o.push_str(&format!("\\u{:04X}", u));
                }
            }
            c if fancy && !c.is_ascii_alphanumeric() => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[derive(Debug, Clone)]
enum V {
    Str(String),
    Null,
    Num(i64),
    Bool(bool),
    Map(Vec<(String, V)>),
    List(Vec<V>),
}

fn render(v: &V, fancy: bool, ws: bool) -> String {
    let sp = if ws { " " } else { "" };
    match v {
        V::Str(s) => lit(s, fancy),
        V::Null => "null".into(),
        V::Num(n) => n.to_string(),
        V::Bool(b) => b.to_string(),
        V::Map(kv) => {
            let items: Vec<String> =
                kv.iter().map(|(k, v)| format!("{}{sp}:{sp}{}", lit(k, fancy), render(v, fancy, ws))).collect();
            format!("{{{sp}{}{sp}}}", items.join(&format!(",{sp}")))
        }
        V::List(l) => {
            let items: Vec<String> = l.iter().map(|v| render(v, fancy, ws)).collect();
            format!("[{}]", items.join(","))
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9./-]{0,12}",
        "\\PC{0,8}",
        Just("k8s.io/initial-events-end".to_string()),
        Just("caf\u{e9} \u{1F680}\n\"q\"\\".to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = V> {
    prop_oneof![text().prop_map(V::Str), Just(V::Null), any::<i64>().prop_map(V::Num), any::<bool>().prop_map(V::Bool)]
}

fn junk() -> impl Strategy<Value = V> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(("[a-z]{1,6}", inner.clone()), 0..4).prop_map(V::Map),
            prop::collection::vec(inner, 0..4).prop_map(V::List),
        ]
    })
}

fn string_map() -> impl Strategy<Value = V> {
    prop_oneof![
        1 => Just(V::Null),
        6 => prop::collection::vec((text(), text().prop_map(V::Str)), 0..5).prop_map(V::Map),
    ]
}

fn owner_ref() -> impl Strategy<Value = V> {
    (text(), text(), text(), text(), prop_oneof![Just(None), Just(Some(V::Null)), any::<bool>().prop_map(|b| Some(V::Bool(b)))], junk())
        .prop_map(|(a, k, n, u, c, j)| {
            let mut m = vec![
                ("apiVersion".to_string(), V::Str(a)),
                ("kind".to_string(), V::Str(k)),
                ("name".to_string(), V::Str(n)),
                ("uid".to_string(), V::Str(u)),
                ("blockOwnerDeletion".to_string(), j),
            ];
            if let Some(c) = c {
                m.push(("controller".into(), c));
            }
            V::Map(m)
        })
}

prop_compose! {
    fn k8s_object()(
        name in text(), ns in text(), uid in text(), rv in "[0-9]{1,8}",
        labels in string_map(), annotations in string_map(),
        owners in prop_oneof![Just(None), Just(Some(V::Null)), prop::collection::vec(owner_ref(), 0..3).prop_map(|v| Some(V::List(v)))],
        extra in junk(), drop in prop::collection::vec(any::<bool>(), 8), perm in any::<u64>(),
    ) -> V {
        let mut meta = vec![
            ("name".to_string(), V::Str(name)),
            ("namespace".to_string(), V::Str(ns)),
            ("uid".to_string(), V::Str(uid)),
            ("resourceVersion".to_string(), V::Str(rv)),
            ("labels".to_string(), labels),
            ("annotations".to_string(), annotations),
            ("generation".to_string(), extra.clone()),
        ];
        if let Some(o) = owners { meta.push(("ownerReferences".into(), o)); }
        let meta: Vec<_> = meta.into_iter().enumerate().filter(|(i, _)| !drop[*i % 8] || *i == 3).map(|(_, kv)| kv).collect();
        let mut meta = meta;
        // A deterministic shuffle: key order must not matter.
        let n = meta.len();
        for i in (1..n).rev() { meta.swap(i, (perm as usize >> (i % 32)) % (i + 1)); }
        let mut top = vec![
            ("kind".to_string(), V::Str("Thing".into())),
            ("apiVersion".to_string(), V::Str("example.com/v1".into())),
            ("spec".to_string(), extra),
            ("metadata".to_string(), V::Map(meta)),
        ];
        if perm & 1 == 1 { top.reverse(); }
        V::Map(top)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_objects_agree(obj in k8s_object(), fancy in any::<bool>(), ws in any::<bool>()) {
        let json = render(&obj, fancy, ws);
        let reference = object::extract_meta(json.as_bytes());
        let fast = extract_meta(json.as_bytes());
        match (&reference, &fast) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, &b.values(json.as_bytes())),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "disagree on {}: reference {:?} fast {:?}", json, reference, fast),
        }
        // Through the decoder, with the object embedded in an event.
        let mut d = Decoder::new(DecoderOptions { http: false, ..Default::default() });
        let mut out = Vec::new();
        let r = d.feed(format!("{{\"object\":{json},\"type\":\"MODIFIED\"}}\n").as_bytes(), &mut out);
        // The decoder also refuses watch objects without a name (their cache keys collide).
        let named = reference.as_ref().is_ok_and(|m| !m.name.is_empty());
        prop_assert_eq!(r.is_ok(), named);
        if let (true, Ok(m)) = (named, reference) {
            let o = out[0].object.clone().unwrap();
            prop_assert_eq!(&o.meta_values(), &m);
            prop_assert_eq!(&*o.json, json.as_bytes());
        }
    }

    #[test]
    fn truncated_objects_are_rejected(obj in k8s_object(), cut in any::<prop::sample::Index>()) {
        let json = render(&obj, false, false);
        let cut = cut.index(json.len() - 1);
        let part = &json.as_bytes()[..cut];
        prop_assert!(extract_meta(part).is_err());
        prop_assert!(object::extract_meta(part).is_err());
    }
}

#[test]
fn type_rules_match_reference() {
    for json in [
        r#"{"metadata":{"name":null}}"#,
        r#"{"metadata":{"labels":{"a":1}}}"#,
        r#"{"metadata":{"labels":null,"annotations":null,"ownerReferences":null}}"#,
        r#"{"metadata":null}"#,
        r#"{"metadata":{"name":"a","name":"b"}}"#,
        r#"{"metadata":{"labels":{"b":"1","a":"2","b":"3"}}}"#,
        r#"{"metadata":{"ownerReferences":[{"controller":null}]}}"#,
        r#"{"metadata":{"ownerReferences":[null]}}"#,
        r#"{"metadata":{"\u006eame":"x"}}"#,
        r#"{"kind":"\ud83d\ude80"}"#,
        r#"{"kind":"\ud83d"}"#,
        r#"{"kind":"\ude80"}"#,
        r#"{"x":01}"#,
        r#"{"x":1.}"#,
        r#"{"x":-1.5e+3}"#,
        r#"{"x":[1,]}"#,
        r#"{"x":tru}"#,
        "{\"x\":\"\u{1}\"}",
        r#"{"a":1} x"#,
    ] {
        let r = object::extract_meta(json.as_bytes());
        let f = extract_meta(json.as_bytes());
        assert_eq!(r.is_ok(), f.is_ok(), "{json}: {r:?} vs {f:?}");
        if let (Ok(a), Ok(b)) = (r, f) {
            assert_eq!(a, b.values(json.as_bytes()), "{json}");
        }
    }
    // Invalid UTF-8 inside a string.
    let bad = b"{\"kind\":\"\xff\"}";
    assert!(extract_meta(bad).is_err() && object::extract_meta(bad).is_err());
}

/// The serde_json `field_values` that `decode::field_values` replaced: the reference.
fn field_values_reference(json: &[u8], path: &str) -> Vec<String> {
    let v: serde_json::Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(_) => return Vec::new(),
    };
    let mut cur = &v;
    for part in path.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return Vec::new(),
        }
    }
    fn push(v: &serde_json::Value, out: &mut Vec<String>, top: bool) {
        match v {
            serde_json::Value::Null | serde_json::Value::Object(_) => {}
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Bool(b) => out.push(b.to_string()),
            serde_json::Value::Number(n) => out.push(n.to_string()),
            serde_json::Value::Array(items) if top => items.iter().for_each(|i| push(i, out, false)),
            serde_json::Value::Array(_) => {}
        }
    }
    let mut out = Vec::new();
    push(cur, &mut out, true);
    out
}

#[test]
fn field_values_agree_with_the_serde_json_reference() {
    let paths = [
        "spec.nodeName", "metadata.name", "status.phase", "status.podIPs", "spec.priority",
        "spec.containers", "metadata.labels.app", "status.conditions", "spec.enableServiceLinks",
        "metadata", "nope", "spec.nodeName.x", "status.hostIPs.ip", "",
    ];
    for i in 0..40 {
        let p = pods::pod(i);
        let o = object::Object::from_json(p.as_bytes()).unwrap();
        for path in paths {
            assert_eq!(o.field_values(path), field_values_reference(p.as_bytes(), path), "{path}");
        }
    }
    for (json, path) in [
        (r#"{"a":{"b":[1,"x",true,null,[2],{"c":3},-0,1.5e3,12345678901234567890]}}"#, "a.b"),
        (r#"{"a":1,"a":2}"#, "a"),
        (r#"{"a":{"\u0062":"esc\u00e9"}}"#, "a.b"),
        (r#"{"a":null}"#, "a"),
        (r#"{"a":[]}"#, "a"),
        (r#"{"a":"x"} trailing"#, "a"),
        (r#"{"a":"x","b":[1,}"#, "a"),
        (r#"[{"a":1}]"#, "a"),
        (r#"{"a":{"b":1}}"#, "a..b"),
    ] {
        assert_eq!(
            kfast_native::decode::field_values(json.as_bytes(), path),
            field_values_reference(json.as_bytes(), path),
            "{json} {path}"
        );
    }
}

/// Trees whose keys collide often (a, b, c), so paths hit, miss, and repeat.
fn abc_tree() -> impl Strategy<Value = V> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec((prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from), inner.clone()), 0..4)
                .prop_map(V::Map),
            prop::collection::vec(inner, 0..3).prop_map(V::List),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Field paths captured by the decoder (for field indexes) give exactly what walking
    /// the stored JSON gives, including repeated keys (last wins) and non-object parents.
    #[test]
    fn captured_field_paths_agree_with_the_walk(
        top in prop::collection::vec((prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from), abc_tree()), 0..5),
        fancy in any::<bool>(), ws in any::<bool>(),
    ) {
        let mut members = vec![
            ("kind".to_string(), V::Str("Pod".into())),
            ("metadata".to_string(), V::Map(vec![("name".into(), V::Str("p".into()))])),
        ];
        members.extend(top);
        let json = render(&V::Map(members), fancy, ws);
        let paths = ["a", "b", "a.a", "a.b", "b.c", "a.b.c", "a.a.a", "c.b.a", "kind", "metadata.name"];
        let mut d = Decoder::new(DecoderOptions { http: false, ..Default::default() });
        d.set_field_paths(paths.iter().map(|p| (*p).into()).collect());
        let mut out = Vec::new();
        d.feed(format!("{{\"type\":\"ADDED\",\"object\":{json}}}\n").as_bytes(), &mut out).unwrap();
        let o = out[0].object.clone().unwrap();
        prop_assert!(o.fields.is_some());
        for p in paths {
            prop_assert_eq!(o.field_values(p), kfast_native::decode::field_values(json.as_bytes(), p), "{} {}", json, p);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Annotations are read from the stored JSON (Meta no longer copies them); the lookup
    /// must give what serde_json's map (last duplicate wins) gives.
    #[test]
    fn annotation_lookup_agrees_with_serde(
        pairs in prop::collection::vec((prop::sample::select(vec!["a", "k8s.io/x", "caf\u{e9}"]).prop_map(String::from), text()), 0..5),
        fancy in any::<bool>(), ws in any::<bool>(),
    ) {
        let ann = V::Map(pairs.into_iter().map(|(k, v)| (k, V::Str(v))).collect());
        let json = render(&V::Map(vec![("metadata".into(), V::Map(vec![("annotations".into(), ann)]))]), fancy, ws);
        let o = object::Object::from_json(json.as_bytes()).unwrap();
        let reference: serde_json::Value = serde_json::from_str(&json).unwrap();
        for k in ["a", "k8s.io/x", "caf\u{e9}", "missing"] {
            let want = reference["metadata"]["annotations"].get(k).and_then(|v| v.as_str()).map(String::from);
            prop_assert_eq!(kfast_native::decode::annotation_trusted(&o.json, k), want, "{} {}", json, k);
        }
    }
}
