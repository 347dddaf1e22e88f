//! Throughput and concurrency checks for the store path. The timing test is ignored by
//! default; run `cargo test --release --lib perf -- --ignored --nocapture`.

use crate::fifo::{DeltaFifo, DeltaObject, DeltaType};
use crate::index::{compute_values, BuiltinIndex, IndexDef};
use crate::object::{Object, ObjectRef};
use crate::process::process_batch;
use crate::store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pod(i: usize, rv: usize) -> ObjectRef {
    let j = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i}"), "namespace": format!("ns-{}", i % 50), "uid": format!("uid-{i}"),
            "resourceVersion": rv.to_string(), "labels": {"app": format!("app-{}", i % 200), "tier": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("rs-{}", i % 500),
                "uid": format!("rs-uid-{}", i % 500), "controller": true}]},
        "spec": {"nodeName": format!("node-{}", i % 100), "containers": [{"name": "c", "image": "nginx:1.27",
            "env": (0..20).map(|e| serde_json::json!({"name": format!("E{e}"), "value": "x".repeat(40)})).collect::<Vec<_>>()}]},
        "status": {"phase": "Running"}
    });
    Arc::new(Object::from_json(&serde_json::to_vec(&j).unwrap()).unwrap())
}

fn defs(with_field: bool) -> Vec<IndexDef> {
    let mut d = vec![
        IndexDef::builtin("namespace", BuiltinIndex::Namespace),
        IndexDef::builtin("app", BuiltinIndex::Label("app".into())),
        IndexDef::builtin("owner", BuiltinIndex::OwnerUid),
    ];
    if with_field {
        d.push(IndexDef::builtin("node", BuiltinIndex::Field("spec.nodeName".into())));
    }
    d
}

fn run(n: usize, with_field: bool) {
    let adds: Vec<ObjectRef> = (0..n).map(|i| pod(i, 1)).collect();
    let updates: Vec<ObjectRef> = (0..n).map(|i| pod(i, 2)).collect();
    let d = defs(with_field);
    let t = Instant::now();
    for o in &adds {
        std::hint::black_box(compute_values(&d, o).unwrap());
    }
    let per = t.elapsed().as_nanos() as f64 / n as f64;
    // Same work on 1000 cache-hot objects: what the values themselves (allocation) cost.
    let t = Instant::now();
    for _ in 0..100 {
        for o in &adds[..1000] {
            std::hint::black_box(compute_values(&d, o).unwrap());
        }
    }
    println!("field={with_field}: index values on hot objects {:.0} ns/obj", t.elapsed().as_nanos() as f64 / 100_000.0);
    let store = Arc::new(Store::new(d).unwrap());
    let fifo = DeltaFifo::new(Some(store.clone()));
    for (label, objs, kind) in [("add", &adds, DeltaType::Added), ("update", &updates, DeltaType::Updated)] {
        let t = Instant::now();
        fifo.push_many(objs.iter().map(|o| (kind, DeltaObject::Object(o.clone()))));
        let pushed = t.elapsed();
        let mut notes = 0;
        while notes < n {
            notes += process_batch(&fifo, &store, 4096, Some(Duration::ZERO)).notifications.len();
        }
        let total = t.elapsed();
        println!(
            "field={with_field} {label}: {n} objs, push_many {:.0}/s, push+process {:.0}/s (index values {per:.0} ns/obj)",
            n as f64 / pushed.as_secs_f64(),
            n as f64 / total.as_secs_f64()
        );
    }
    println!("store nbytes {} MB for {n} objects", store.nbytes() / 1_000_000);
    store.check_invariants().unwrap();
}

#[test]
#[ignore]
fn perf_push_and_process() {
    run(100_000, false);
    // PERF_NO_FIELD=1 skips the field() run (it re-parses each object's JSON: see
    // Object::field_values), to profile the store path alone.
    if std::env::var_os("PERF_NO_FIELD").is_none() {
        run(100_000, true);
    }
}

/// Readers and an `add_indexers` caller run while the processor writes; every state they
/// can observe must satisfy the invariants, and the final index must be complete.
#[test]
fn concurrent_readers_and_add_indexers_during_processing() {
    let store = Arc::new(Store::new(defs(false)).unwrap());
    let fifo = Arc::new(DeltaFifo::new(Some(store.clone())));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (s, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for o in s.by_index("app", "app-1").unwrap() {
                        assert_eq!(o.labels()[0].1, "app-1");
                    }
                    s.check_invariants().unwrap();
                }
            })
        })
        .collect();
    let adder = {
        let s = store.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            s.add_indexers(vec![IndexDef::builtin("tier", BuiltinIndex::Label("tier".into()))]).unwrap();
        })
    };
    for round in 0..4 {
        fifo.push_many((0..1000).map(|i| (DeltaType::Updated, DeltaObject::Object(pod(i, round)))));
        while !fifo.is_empty() {
            process_batch(&fifo, &store, 64, Some(Duration::ZERO));
        }
    }
    adder.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    store.check_invariants().unwrap();
    assert_eq!(store.index_keys("tier", "web").unwrap().len(), 1000);
    assert_eq!(store.index_keys("app", "app-1").unwrap().len(), 5);
}

/// `cargo test --release --lib perf_field -- --ignored --nocapture`: the field walk alone
/// (what a field index costs for an object the decoder did not capture paths for).
#[test]
#[ignore]
fn perf_field_walk() {
    let o = pod(7, 1);
    let t = Instant::now();
    for _ in 0..100_000 {
        std::hint::black_box(crate::decode::field_values(std::hint::black_box(&o.json), "spec.nodeName"));
    }
    let ns = t.elapsed().as_nanos() as f64 / 100_000.0;
    println!("field walk: {ns:.0} ns per lookup on {} B ({:.2} GB/s)", o.json.len(), o.json.len() as f64 / ns);
}
