use super::*;
use crate::process::{process_batch, Notification};
use crate::store::tests::pod;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn obj(name: &str, uid: &str) -> ObjectRef {
    pod("ns", name, uid, &[])
}

fn kinds(f: &DeltaFifo, key: &str) -> Vec<(DeltaType, bool)> {
    f.get_by_key(key).unwrap().iter().map(|d| (d.kind, d.object.is_tombstone())).collect()
}

#[test]
fn consecutive_deletes_collapse_keeping_the_real_object() {
    let f = DeltaFifo::new(None);
    f.add(obj("a", "1"));
    f.delete(DeltaObject::Tombstone { key: "ns/a".into(), obj: None });
    f.delete(DeltaObject::Object(obj("a", "1")));
    assert_eq!(kinds(&f, "ns/a"), vec![(DeltaType::Added, false), (DeltaType::Deleted, false)]);
    f.delete(DeltaObject::Tombstone { key: "ns/a".into(), obj: None });
    assert_eq!(kinds(&f, "ns/a"), vec![(DeltaType::Added, false), (DeltaType::Deleted, false)]);
    f.check_invariants().unwrap();
}

#[test]
fn delete_of_unknown_unqueued_key_is_ignored() {
    let store = Arc::new(Store::default());
    let f = DeltaFifo::new(Some(store.clone()));
    f.delete(DeltaObject::Object(obj("a", "1")));
    assert!(f.is_empty());
    store.add(obj("b", "1")).unwrap();
    f.delete(DeltaObject::Object(obj("b", "1")));
    assert_eq!(f.list_keys(), vec!["ns/b".into()]);
}

#[test]
fn replace_tombstones_known_and_queued_only_keys() {
    let store = Arc::new(Store::default());
    store.add(obj("known", "k1")).unwrap();
    let f = DeltaFifo::new(Some(store.clone()));
    f.add(obj("queued", "q1"));
    f.update(obj("queued", "q1"));
    f.replace(vec![obj("listed", "l1")], "10");
    assert_eq!(f.list_keys(), vec!["ns/queued".into(), "ns/listed".into(), "ns/known".into()]);
    let q = f.get_by_key("ns/queued").unwrap();
    assert_eq!(q.len(), 3);
    match &q[2].object {
        DeltaObject::Tombstone { key, obj: Some(o) } => assert_eq!((&**key, &*o.uid()), ("ns/queued", "q1")),
        other => panic!("expected tombstone, got {other:?}"),
    }
    match &f.get_by_key("ns/known").unwrap()[0].object {
        DeltaObject::Tombstone { obj: Some(o), .. } => assert_eq!(&*o.uid(), "k1"),
        other => panic!("expected tombstone, got {other:?}"),
    }
    // The add before replace populated the FIFO, so replace does not set the initial count.
    assert!(f.has_synced());
    f.check_invariants().unwrap();
}

#[test]
fn has_synced_waits_for_tracked_initial_batch_to_be_stored() {
    let store = Arc::new(Store::new(Vec::new()).unwrap());
    let f = DeltaFifo::new(Some(store.clone()));
    f.replace(vec![obj("a", "1"), obj("b", "1")], "1");
    let (popped, id) = f.pop_batch_tracked(10, Some(Duration::ZERO)).unwrap();
    assert_eq!(popped.len(), 2);
    assert!(popped.iter().all(|p| p.is_in_initial_list));
    // Everything is popped but nothing is stored yet: a caller that waits for sync and
    // then reads the store must not see a partial list.
    assert!(!f.has_synced());
    f.finish_batch(id);
    assert!(f.has_synced());
}

#[test]
fn has_synced_after_initial_items_popped() {
    let f = DeltaFifo::new(None);
    assert!(!f.has_synced());
    f.replace(vec![obj("a", "1"), obj("b", "1")], "1");
    assert!(!f.has_synced());
    let p = f.pop(Some(Duration::ZERO)).unwrap();
    assert!(p.is_in_initial_list);
    f.add(obj("c", "1"));
    let p = f.pop(Some(Duration::ZERO)).unwrap();
    assert!(p.is_in_initial_list && &*p.key == "ns/b");
    assert!(f.has_synced());
    assert!(!f.pop(Some(Duration::ZERO)).unwrap().is_in_initial_list);
    assert_eq!(f.pop(Some(Duration::from_millis(5))).unwrap_err(), PopError::Timeout);
    f.close();
    assert_eq!(f.pop(None).unwrap_err(), PopError::Closed);
}

#[test]
fn pop_blocks_until_push_from_another_thread() {
    let f = Arc::new(DeltaFifo::new(None));
    let f2 = f.clone();
    let t = std::thread::spawn(move || f2.pop(None).map(|p| p.key));
    std::thread::sleep(Duration::from_millis(20));
    f.push_many([(DeltaType::Added, DeltaObject::Object(obj("a", "1")))]);
    assert_eq!(&*t.join().unwrap().unwrap(), "ns/a");
}

#[test]
fn recreate_during_gap_gives_delete_then_add() {
    let store = Arc::new(Store::default());
    let f = DeltaFifo::new(Some(store.clone()));
    f.replace(vec![obj("a", "old")], "1");
    process_batch(&f, &store, 10, None);
    // Watch gap: a was deleted and re-created with a new uid; the relist sees only the new.
    f.replace(vec![obj("a", "new")], "2");
    let out = process_batch(&f, &store, 10, None).notifications;
    assert!(
        matches!(&out[0], Notification::Delete { obj: DeltaObject::Tombstone { obj: Some(o), .. } } if &*o.uid() == "old")
    );
    assert!(matches!(&out[1], Notification::Add { obj, .. } if &*obj.uid() == "new"));
    assert_eq!(&*store.get_by_key("ns/a").unwrap().uid(), "new");
    // Same through the watch: Deleted then Added for one key, processed in order.
    f.push_many([
        (DeltaType::Deleted, DeltaObject::Object(obj("a", "new"))),
        (DeltaType::Added, DeltaObject::Object(obj("a", "newer"))),
    ]);
    let out = process_batch(&f, &store, 10, None).notifications;
    assert_eq!(out.iter().map(Notification::kind).collect::<Vec<_>>(), vec![2, 0]);
    assert_eq!(&*store.get_by_key("ns/a").unwrap().uid(), "newer");
}

// ---- property test against a reference model -------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum M {
    Obj(String, String),
    Tomb(String, Option<String>),
}

impl M {
    fn key(&self) -> &str {
        match self {
            M::Obj(k, _) | M::Tomb(k, _) => k,
        }
    }
    fn of(o: &DeltaObject) -> M {
        match o {
            DeltaObject::Object(o) => M::Obj(o.key.to_string(), o.uid().to_string()),
            DeltaObject::Tombstone { key, obj } => {
                M::Tomb(key.to_string(), obj.as_ref().map(|o| o.uid().to_string()))
            }
        }
    }
}

#[derive(Default)]
struct Model {
    queue: Vec<String>,
    items: BTreeMap<String, Vec<(DeltaType, M)>>,
    populated: bool,
    count: usize,
    known: BTreeMap<String, String>,
}

impl Model {
    fn push(&mut self, kind: DeltaType, m: M) {
        let key = m.key().to_string();
        let ds = self.items.entry(key.clone()).or_default();
        if ds.is_empty() {
            self.queue.push(key);
        }
        ds.push((kind, m));
        let n = ds.len();
        if n >= 2 && ds[n - 1].0 == DeltaType::Deleted && ds[n - 2].0 == DeltaType::Deleted {
            let newer = ds.pop().unwrap();
            if matches!(ds[n - 2].1, M::Tomb(..)) {
                ds[n - 2] = newer;
            }
        }
    }
    fn delete(&mut self, m: M) {
        self.populated = true;
        if self.known.contains_key(m.key()) || self.items.contains_key(m.key()) {
            self.push(DeltaType::Deleted, m);
        }
    }
    fn replace(&mut self, list: Vec<(String, String)>) {
        let mut listed = std::collections::BTreeSet::new();
        for (k, uid) in list {
            listed.insert(k.clone());
            let last = match self.items.get(&k).and_then(|d| d.last()) {
                Some((DeltaType::Deleted, _)) => None,
                Some((_, M::Obj(_, u))) => Some(u.clone()),
                Some((_, M::Tomb(_, u))) => u.clone(),
                None => self.known.get(&k).cloned(),
            };
            if let Some(old) = last.filter(|o| *o != uid) {
                self.push(DeltaType::Deleted, M::Tomb(k.clone(), Some(old)));
            }
            self.push(DeltaType::Replaced, M::Obj(k, uid));
        }
        let mut dels = 0;
        for k in self.queue.clone() {
            if !listed.contains(&k) {
                let newest = match &self.items[&k].last().unwrap().1 {
                    M::Obj(_, u) => Some(u.clone()),
                    M::Tomb(_, u) => u.clone(),
                };
                dels += 1;
                self.push(DeltaType::Deleted, M::Tomb(k, newest));
            }
        }
        for (k, uid) in self.known.clone() {
            if !listed.contains(&k) && !self.items.contains_key(&k) {
                dels += 1;
                self.push(DeltaType::Deleted, M::Tomb(k, Some(uid)));
            }
        }
        if !self.populated {
            self.populated = true;
            self.count = listed.len() + dels;
        }
    }
    fn process(&mut self, max: usize) -> Vec<(u8, M, Option<String>, bool)> {
        let mut out = Vec::new();
        for _ in 0..max.min(self.queue.len()) {
            let initial = !(self.populated && self.count == 0);
            let key = self.queue.remove(0);
            self.count = self.count.saturating_sub(1);
            for (kind, m) in self.items.remove(&key).unwrap() {
                if kind == DeltaType::Deleted {
                    self.known.remove(&key);
                    out.push((2, m, None, false));
                } else if let M::Obj(k, uid) = m.clone() {
                    match self.known.insert(k, uid) {
                        Some(old) => out.push((1, m, Some(old), false)),
                        None => out.push((0, m, None, initial)),
                    }
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
enum FOp {
    Add(u8, u8),
    Update(u8, u8),
    Delete(u8, u8),
    DeleteTomb(u8),
    Replace(Vec<(u8, u8)>),
    Resync,
    Process(usize),
    /// Pop a tracked batch but apply it only at `Finish`: ops in between must behave as if
    /// it had been applied (the model applies it at once).
    PopDeferred(usize),
    Finish,
}

fn fop() -> impl Strategy<Value = FOp> {
    prop_oneof![
        3 => (0u8..4, 0u8..3).prop_map(|(k, u)| FOp::Add(k, u)),
        3 => (0u8..4, 0u8..3).prop_map(|(k, u)| FOp::Update(k, u)),
        2 => (0u8..4, 0u8..3).prop_map(|(k, u)| FOp::Delete(k, u)),
        1 => (0u8..4).prop_map(FOp::DeleteTomb),
        2 => proptest::collection::vec((0u8..4, 0u8..3), 0..4).prop_map(FOp::Replace),
        1 => Just(FOp::Resync),
        3 => (1usize..4).prop_map(FOp::Process),
        2 => (1usize..4).prop_map(FOp::PopDeferred),
        2 => Just(FOp::Finish),
    ]
}

proptest! {
    #[test]
    fn fifo_and_processor_match_model(ops in proptest::collection::vec(fop(), 1..50)) {
        let store = Arc::new(Store::default());
        let f = DeltaFifo::new(Some(store.clone()));
        let mut m = Model::default();
        // A tracked batch popped but not yet applied, and what the model said it produces.
        type Note = (u8, M, Option<String>, bool);
        let mut deferred: Option<(Vec<Popped>, u64, Vec<Note>)> = None;
        let conv = |n: Notification| -> Note {
            match n {
                Notification::Add { obj, is_in_initial_list } => {
                    (0, M::Obj(obj.key.to_string(), obj.uid().to_string()), None, is_in_initial_list)
                }
                Notification::Update { old, new } => {
                    (1, M::Obj(new.key.to_string(), new.uid().to_string()), Some(old.uid().to_string()), false)
                }
                Notification::Delete { obj } => (2, M::of(&obj), None, false),
            }
        };
        let key = |k: u8| format!("ns/p{k}");
        let o = |k: u8, u: u8| obj(&format!("p{k}"), &format!("u{u}"));
        for op in ops {
            match op {
                FOp::Add(k, u) => { f.add(o(k, u)); m.populated = true; m.push(DeltaType::Added, M::Obj(key(k), format!("u{u}"))); }
                FOp::Update(k, u) => { f.update(o(k, u)); m.populated = true; m.push(DeltaType::Updated, M::Obj(key(k), format!("u{u}"))); }
                FOp::Delete(k, u) => { f.delete(DeltaObject::Object(o(k, u))); m.delete(M::Obj(key(k), format!("u{u}"))); }
                FOp::DeleteTomb(k) => {
                    f.delete(DeltaObject::Tombstone { key: key(k).into(), obj: None });
                    m.delete(M::Tomb(key(k), None));
                }
                FOp::Replace(list) => {
                    f.replace(list.iter().map(|(k, u)| o(*k, *u)).collect(), "1");
                    m.replace(list.iter().map(|(k, u)| (key(*k), format!("u{u}"))).collect());
                }
                FOp::Resync => {
                    f.resync();
                    for (k, uid) in m.known.clone() {
                        if !m.items.contains_key(&k) { m.push(DeltaType::Sync, M::Obj(k, uid)); }
                    }
                }
                // One processor per FIFO: no second batch while one is outstanding.
                FOp::Process(_) | FOp::PopDeferred(_) if deferred.is_some() => {}
                FOp::Process(n) => {
                    let got: Vec<_> = process_batch(&f, &store, n, Some(Duration::ZERO)).notifications.into_iter().map(conv).collect();
                    prop_assert_eq!(got, m.process(n));
                }
                FOp::PopDeferred(n) => {
                    if let Ok((popped, id)) = f.pop_batch_tracked(n, Some(Duration::ZERO)) {
                        deferred = Some((popped, id, m.process(n)));
                    }
                }
                FOp::Finish => {
                    if let Some((popped, id, want)) = deferred.take() {
                        let mut got = Vec::new();
                        for p in &popped {
                            crate::process::apply_deltas(&store, p, &mut got).map_err(|(_, e)| TestCaseError::fail(e.to_string()))?;
                        }
                        f.finish_batch(id);
                        prop_assert_eq!(got.into_iter().map(conv).collect::<Vec<_>>(), want);
                    }
                }
            }
            f.check_invariants().map_err(TestCaseError::fail)?;
            store.check_invariants().map_err(TestCaseError::fail)?;
            let keys: Vec<String> = f.list_keys().into_iter().map(|k| k.to_string()).collect();
            prop_assert_eq!(&keys, &m.queue);
            for k in &keys {
                let got: Vec<_> = f.get_by_key(k).unwrap().iter().map(|d| (d.kind, M::of(&d.object))).collect();
                prop_assert_eq!(&got, &m.items[k]);
            }
            // Initial items popped but not yet stored (a deferred batch) keep has_synced false.
            let initial_in_flight = deferred.as_ref().is_some_and(|(p, _, _)| p.iter().any(|p| p.counted));
            prop_assert_eq!(f.has_synced(), m.populated && m.count == 0 && !initial_in_flight);
            if deferred.is_none() {
                let known: BTreeMap<String, String> = store.list().iter().map(|o| (o.key.to_string(), o.uid().to_string())).collect();
                prop_assert_eq!(&known, &m.known);
            }
        }
    }
}

#[test]
fn relist_and_watch_delete_during_processing_see_in_flight_deltas() {
    let store = Arc::new(Store::default());
    let f = DeltaFifo::new(Some(store.clone()));
    f.add(obj("a", "1"));
    f.add(obj("c", "1"));
    let (popped, id) = f.pop_batch_tracked(10, None).unwrap();
    // The processor holds a's and c's Added but has not stored them yet; a relist without a
    // lands, and the watch deletes c. Both must act as if a and c were already stored.
    f.replace(vec![obj("b", "1")], "2");
    f.delete(DeltaObject::Object(obj("c", "1")));
    f.resync();
    assert_eq!(f.list_keys(), vec!["ns/b".into(), "ns/a".into(), "ns/c".into()]);
    match &f.get_by_key("ns/a").unwrap()[..] {
        [Delta { kind: DeltaType::Deleted, object: DeltaObject::Tombstone { obj: Some(o), .. } }] => {
            assert_eq!(&*o.uid(), "1")
        }
        other => panic!("expected one tombstone, got {other:?}"),
    }
    let mut out = Vec::new();
    for p in &popped {
        crate::process::apply_deltas(&store, p, &mut out).unwrap();
    }
    f.finish_batch(id);
    let out = process_batch(&f, &store, 10, None).notifications;
    assert_eq!(out.iter().map(Notification::kind).collect::<Vec<_>>(), vec![0, 2, 2]);
    assert_eq!(store.list_keys(), vec!["ns/b".into()]);
    // Nothing in flight any more: a delete of an unknown key is ignored again.
    f.delete(DeltaObject::Object(obj("a", "1")));
    assert!(f.is_empty());
}

#[test]
fn sync_after_pending_delete_is_dropped() {
    let f = DeltaFifo::new(None);
    f.add(obj("a", "1"));
    f.delete(DeltaObject::Object(obj("a", "1")));
    f.push_many([(DeltaType::Sync, DeltaObject::Object(obj("a", "1")))]);
    assert_eq!(kinds(&f, "ns/a"), vec![(DeltaType::Added, false), (DeltaType::Deleted, false)]);
}

#[test]
fn failed_batch_is_requeued_in_front_with_newer_deltas_after_it() {
    struct FailOn(&'static str);
    impl crate::index::IndexFn for FailOn {
        fn values(&self, obj: &ObjectRef) -> Result<Vec<String>, crate::error::Foreign> {
            if &*obj.name() == self.0 {
                Err(crate::error::Foreign(Arc::new(std::io::Error::other("boom"))))
            } else {
                Ok(vec![])
            }
        }
    }
    let store = Arc::new(Store::new(vec![crate::index::IndexDef::new("f", Arc::new(FailOn("b")))]).unwrap());
    let f = DeltaFifo::new(Some(store.clone()));
    f.replace(vec![obj("a", "1"), obj("b", "1"), obj("c", "1")], "1");
    let out = process_batch(&f, &store, 10, None);
    assert_eq!(out.notifications.len(), 1);
    assert!(matches!(out.error, Some(crate::error::Error::IndexFunc { .. })));
    // b and c are back in front, still counted as initial items: not synced yet.
    assert_eq!(f.list_keys(), vec!["ns/b".into(), "ns/c".into()]);
    assert!(!f.has_synced());
    f.check_invariants().unwrap();

    // Manual requeue merges with deltas queued meanwhile (older first).
    let popped = f.pop_batch(1, None).unwrap();
    f.update(obj("b", "2"));
    f.add(obj("d", "1"));
    f.requeue_front(popped);
    assert_eq!(f.list_keys(), vec!["ns/b".into(), "ns/c".into(), "ns/d".into()]);
    assert_eq!(kinds(&f, "ns/b"), vec![(DeltaType::Replaced, false), (DeltaType::Updated, false)]);
    f.check_invariants().unwrap();
}

#[test]
fn tables_grown_by_a_big_replace_shrink_once_drained() {
    let store = Arc::new(Store::default());
    let f = DeltaFifo::new(Some(store.clone()));
    let objs: Vec<ObjectRef> = (0..20_000).map(|i| obj(&format!("p{i}"), &i.to_string())).collect();
    f.replace(objs.clone(), "1");
    assert!(f.state.lock().capacities_locked().0 >= 20_000);
    let mut popped = 0;
    while popped < 20_000 {
        let batch = f.pop_batch(3000, Some(Duration::from_millis(10))).unwrap();
        popped += batch.len();
        if popped < 20_000 {
            // Not drained yet: nothing shrinks under a queue that still holds keys.
            assert!(f.state.lock().capacities_locked().0 >= 20_000 - popped);
        }
    }
    let (items, queue) = f.state.lock().capacities_locked();
    assert!(items <= 4096 && queue <= 4096, "{items} {queue}");
    // Still a working FIFO afterwards, and a small queue keeps its capacity.
    f.add(obj("p1", "x"));
    assert_eq!(f.pop_batch(10, Some(Duration::from_millis(10))).unwrap()[0].key.as_ref(), "ns/p1");
    f.add(obj("p2", "y"));
    f.check_invariants().unwrap();
}
