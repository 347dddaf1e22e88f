//! Parser shoot-out for the watch decoder: which JSON approach extracts a pod's metadata
//! (and validates the whole object) fastest? Every contender produces the same
//! `kfast_native::object::Meta`; a `rejects` column counts how many of a set of invalid
//! objects each one refuses (a parser that skips without validating is not a contender).

#[path = "../../../rust/tests/support/pods.rs"]
mod pods;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use kfast_native::decode::{extract_meta as kfast_scan, Decoder, DecoderOptions};
use kfast_native::object::{extract_meta as serde_reference, Meta, OwnerRef};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawOwnerRef<'a> {
    #[serde(rename = "apiVersion", borrow)]
    api_version: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    uid: Cow<'a, str>,
    controller: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMeta<'a> {
    #[serde(borrow)]
    namespace: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    uid: Cow<'a, str>,
    #[serde(rename = "resourceVersion", borrow)]
    resource_version: Cow<'a, str>,
    #[serde(borrow)]
    labels: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
    #[serde(borrow)]
    annotations: Option<BTreeMap<Cow<'a, str>, Cow<'a, str>>>,
    #[serde(rename = "ownerReferences", borrow)]
    owner_references: Option<Vec<RawOwnerRef<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawObject<'a> {
    #[serde(rename = "apiVersion", borrow)]
    api_version: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    metadata: Option<RawMeta<'a>>,
}

fn to_meta(raw: RawObject<'_>) -> Meta {
    let m = raw.metadata.unwrap_or_default();
    let map = |x: Option<BTreeMap<Cow<'_, str>, Cow<'_, str>>>| {
        x.unwrap_or_default().into_iter().map(|(k, v)| (k.as_ref().into(), v.as_ref().into())).collect()
    };
    Meta {
        api_version: raw.api_version.as_ref().into(),
        kind: raw.kind.as_ref().into(),
        namespace: m.namespace.as_ref().into(),
        name: m.name.as_ref().into(),
        uid: m.uid.as_ref().into(),
        resource_version: m.resource_version.as_ref().into(),
        labels: map(m.labels),
        annotations: map(m.annotations),
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
    }
}

/// CPU time of this thread in ns (Linux schedstat): the machine is shared, so time spent
/// waiting for a core must not count.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

type Extract = fn(&[u8], &mut Vec<u8>) -> Option<Meta>;

fn serde_json_borrowed(j: &[u8], _: &mut Vec<u8>) -> Option<Meta> {
    serde_json::from_slice::<RawObject>(j).ok().map(to_meta)
}
fn serde_json_reference(j: &[u8], _: &mut Vec<u8>) -> Option<Meta> {
    serde_reference(j).ok()
}
fn sonic_rs_serde(j: &[u8], _: &mut Vec<u8>) -> Option<Meta> {
    sonic_rs::from_slice::<RawObject>(j).ok().map(to_meta)
}
/// sonic-rs's lazy API: pick the fields by path, skip the rest without building values.
fn sonic_rs_lazy(j: &[u8], _: &mut Vec<u8>) -> Option<Meta> {
    use sonic_rs::JsonValueTrait;
    thread_local! {
        static TREE: sonic_rs::PointerTree = {
            let mut t = sonic_rs::PointerTree::new();
            t.add_path(["apiVersion"]);
            t.add_path(["kind"]);
            t.add_path(["metadata"]);
            t
        };
    }
    // The checked variant: it validates the document (the unchecked one trusts it).
    let got = TREE.with(|t| sonic_rs::get_many(j, t)).ok()?;
    let s = |i: usize| -> Box<str> { got[i].as_ref().and_then(|v| v.as_str().map(Into::into)).unwrap_or_default() };
    let meta_raw = got[2].as_ref()?.as_raw_str().to_owned();
    let rm: RawMeta = sonic_rs::from_str(&meta_raw).ok()?;
    Some(to_meta(RawObject { api_version: Cow::Owned(s(0).into()), kind: Cow::Owned(s(1).into()), metadata: Some(rm) }))
}
fn simd_json_serde(j: &[u8], buf: &mut Vec<u8>) -> Option<Meta> {
    // simd-json unescapes in place, so it needs its own mutable copy of the input.
    buf.clear();
    buf.extend_from_slice(j);
    simd_json::serde::from_slice::<RawObject>(buf).ok().map(to_meta)
}
fn simd_json_dom(j: &[u8], buf: &mut Vec<u8>) -> Option<Meta> {
    use simd_json::prelude::*;
    buf.clear();
    buf.extend_from_slice(j);
    let v = simd_json::to_borrowed_value(buf).ok()?;
    let st = |v: Option<&simd_json::BorrowedValue>| -> Box<str> { v.and_then(|x| x.as_str()).unwrap_or("").into() };
    let md = v.get("metadata");
    let map = |name: &str| -> Vec<(Box<str>, Box<str>)> {
        let mut out: Vec<(Box<str>, Box<str>)> = md
            .and_then(|m| m.get(name))
            .and_then(|x| x.as_object())
            .map(|o| o.iter().map(|(k, v)| (k.as_ref().into(), v.as_str().unwrap_or("").into())).collect())
            .unwrap_or_default();
        out.sort();
        out
    };
    let owners = md
        .and_then(|m| m.get("ownerReferences"))
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .map(|o| OwnerRef {
                    api_version: st(o.get("apiVersion")),
                    kind: st(o.get("kind")),
                    name: st(o.get("name")),
                    uid: st(o.get("uid")),
                    controller: o.get("controller").and_then(|c| c.as_bool()).unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Meta {
        api_version: st(v.get("apiVersion")),
        kind: st(v.get("kind")),
        namespace: st(md.and_then(|m| m.get("namespace"))),
        name: st(md.and_then(|m| m.get("name"))),
        uid: st(md.and_then(|m| m.get("uid"))),
        resource_version: st(md.and_then(|m| m.get("resourceVersion"))),
        labels: map("labels"),
        annotations: map("annotations"),
        owner_refs: owners,
    })
}
fn kfast_scanner(j: &[u8], _: &mut Vec<u8>) -> Option<Meta> {
    kfast_scan(j).ok()
}

const INVALID: [&str; 8] = [
    "truncated",
    "invalid UTF-8 in a skipped string",
    "raw control character in a skipped string",
    "number with leading zero",
    "lone surrogate escape",
    "bad literal",
    "trailing comma",
    "trailing garbage",
];

fn invalid_objects(pod: &str) -> Vec<Vec<u8>> {
    let b = pod.as_bytes();
    let at = pod.find("\"restartPolicy\":\"Always\"").unwrap() + 17;
    let mut bad_utf8 = b.to_vec();
    bad_utf8[at] = 0xff;
    let mut ctrl = b.to_vec();
    ctrl[at] = 0x01;
    vec![
        b[..b.len() - 1].to_vec(),                                    // truncated
        bad_utf8,                                                     // invalid UTF-8 in a skipped string
        ctrl,                                                         // raw control char in a skipped string
        pod.replace("\"priority\":0", "\"priority\":01").into_bytes(), // bad number
        pod.replace("\"priority\":0", "\"priority\":\"\\ud800\"").into_bytes(), // lone surrogate
        pod.replace("\"enableServiceLinks\":true", "\"enableServiceLinks\":tru").into_bytes(),
        pod.replace("}],\"restartPolicy\"", "},],\"restartPolicy\"").into_bytes(), // trailing comma
        format!("{pod} x").into_bytes(),                              // trailing garbage
    ]
}

fn bench(name: &str, f: Extract, objs: &[Vec<u8>], pod: &str, reference: &[Meta]) {
    let mut buf = Vec::new();
    for (o, want) in objs.iter().zip(reference).take(200) {
        assert_eq!(f(o, &mut buf).as_ref(), Some(want), "{name} disagrees with the reference");
    }
    let bad = invalid_objects(pod);
    let accepted: Vec<&str> =
        bad.iter().zip(INVALID).filter(|(o, _)| f(o, &mut buf).is_some()).map(|(_, name)| name).collect();
    let rejects = bad.len() - accepted.len();
    let bytes: usize = objs.iter().map(|o| o.len()).sum();
    let mut best = u64::MAX;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        let c = cpu_ns();
        for o in objs {
            std::hint::black_box(f(o, &mut buf));
        }
        best = best.min(cpu_ns() - c);
    }
    let s = best as f64 / 1e9;
    println!(
        "| {name:<36} | {:>7.0} | {:>10.0} | {rejects}/{} {} |",
        bytes as f64 / s / 1e6,
        objs.len() as f64 / s,
        bad.len(),
        if accepted.is_empty() { String::new() } else { format!("(accepts: {})", accepted.join(", ")) }
    );
}

fn main() {
    let n = 8000;
    let objs: Vec<Vec<u8>> = (0..n).map(|i| pods::pod(i).into_bytes()).collect();
    let reference: Vec<Meta> = objs.iter().map(|o| serde_reference(o).unwrap()).collect();
    let pod = pods::pod(1);
    println!("object -> Meta, {n} pods, mean {} bytes; best run of ~3 s each, per CPU-second", objs.iter().map(|o| o.len()).sum::<usize>() / n);
    println!("| approach | MB/s | objects/s | invalid rejected |\n|---|---|---|---|");
    let all: [(&str, Extract); 7] = [
        ("serde_json (reference extract_meta)", serde_json_reference),
        ("serde_json borrowed Cow maps", serde_json_borrowed),
        ("sonic-rs serde", sonic_rs_serde),
        ("sonic-rs get_many (lazy) + serde", sonic_rs_lazy),
        ("simd-json serde (incl. copy)", simd_json_serde),
        ("simd-json borrowed DOM (incl. copy)", simd_json_dom),
        ("kfast scanner", kfast_scanner),
    ];
    let only = std::env::args().nth(1);
    for (name, f) in all {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        bench(name, f, &objs, &pod, &reference);
    }

    // Whole events: serde_json's natural design (event struct with a RawValue for the
    // object span, then metadata in a second pass) against the kfast decoder (one pass,
    // framing and line splitting included).
    let lines: Vec<String> = pods::events(n);
    let body = lines.concat().into_bytes();
    #[derive(Deserialize)]
    struct Ev<'a> {
        #[serde(rename = "type", borrow)]
        ty: Cow<'a, str>,
        #[serde(borrow)]
        object: &'a serde_json::value::RawValue,
    }
    let time = |label: &str, f: &dyn Fn() -> usize| {
        let mut best = u64::MAX;
        let t0 = Instant::now();
        let mut k = 0;
        while t0.elapsed() < Duration::from_secs(3) {
            let c = cpu_ns();
            k = f();
            best = best.min(cpu_ns() - c);
        }
        let s = best as f64 / 1e9;
        println!("| {label:<36} | {:>7.0} | {:>10.0} | events |", body.len() as f64 / s / 1e6, k as f64 / s);
    };
    println!("\nwhole event lines -> kind + object span + Meta ({n} events)");
    time("serde_json RawValue + extract_meta", &|| {
        let mut k = 0;
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let ev: Ev = serde_json::from_slice(line).unwrap();
            let m = serde_reference(ev.object.get().as_bytes()).unwrap();
            let o: Box<[u8]> = ev.object.get().as_bytes().into();
            std::hint::black_box((ev.ty, m, o));
            k += 1;
        }
        k
    });
    time("kfast Decoder (http=false)", &|| {
        let mut d = Decoder::new(DecoderOptions { http: false, ..Default::default() });
        let mut out = Vec::new();
        let mut k = 0;
        for p in body.chunks(1 << 20) {
            d.feed(p, &mut out).unwrap();
            k += out.len();
            out.clear();
        }
        k
    });
}
