//! DeltaFIFO (client-go `tools/cache/delta_fifo.go` semantics, see
//! shared/docs/protocol.md): a queue of keys, each with its ordered Deltas.
//!
//! Lock order: the FIFO lock may be held while reading `known_objects` (the store's read
//! lock); the store never calls into the FIFO, so there is no cycle. Nothing here ever
//! needs the GIL.

pub use crate::delta::{Delta, DeltaObject, DeltaType};
use crate::object::ObjectRef;
use crate::store::Store;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One popped key: all its deltas, oldest first.
#[derive(Debug, Clone)]
pub struct Popped {
    pub key: Arc<str>,
    pub deltas: Vec<Delta>,
    /// The FIFO had not synced when this key was popped (client-go's isInInitialList).
    pub is_in_initial_list: bool,
    /// This pop decremented `initial_population_count` (undone by `requeue_front`).
    pub(crate) counted: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PopError {
    Timeout,
    /// Closed and drained: nothing will ever come.
    Closed,
}

#[derive(Default)]
struct State {
    /// Each key's deltas, oldest first. Invariant: never empty; never two consecutive
    /// Deleted (see `dedup_last`); every delta's object has this key.
    items: HashMap<Arc<str>, Vec<Delta>>,
    /// Keys in first-queued order. Invariant: no duplicates; same key set as `items`.
    queue: VecDeque<Arc<str>>,
    /// Deltas queued, over all keys. Invariant: the sum of `items`' lengths. What a
    /// producer that must not run far ahead of the consumer waits on (`wait_for_room`).
    deltas: usize,
    /// Set by the first add/update/delete/replace (client-go: "populated").
    populated: bool,
    /// Keys of the first replace not yet popped. Invariant: `<= queue.len()`.
    initial_population_count: usize,
    closed: bool,
    /// Keys handed out by `pop_batch_tracked` whose deltas may not have reached the store
    /// yet, each with the state the store will hold once they have (None: deleted), and
    /// the batch that popped it. replace/resync/delete read this before the store: client-go
    /// gets the same effect by processing under its FIFO lock, which we can't do (a Python
    /// index function needs the GIL, and the decoder must not wait for a whole batch).
    in_flight: HashMap<Arc<str>, (Option<ObjectRef>, u64)>,
    /// Id of the last tracked batch.
    batch_seq: u64,
    /// For each tracked batch not yet finished, how many of its keys came from the first
    /// replace. has_synced() waits for them: a consumer that asks whether the cache holds
    /// the initial list must not get "yes" while part of it is popped but not yet stored
    /// (client-go decrements its count only after processing an item).
    initial_in_flight: HashMap<u64, usize>,
}

pub struct DeltaFifo {
    state: Mutex<State>,
    /// Signalled when keys are queued or the FIFO closes.
    cond: Condvar,
    /// Signalled when keys are popped or the FIFO closes (see `wait_for_room`).
    room: Condvar,
    /// The store the processor fills; replace() and resync() consult it.
    known_objects: Option<Arc<Store>>,
}

impl State {
    fn has_synced(&self) -> bool {
        self.all_initial_popped() && self.initial_in_flight.is_empty()
    }

    fn all_initial_popped(&self) -> bool {
        self.populated && self.initial_population_count == 0
    }

    /// Append a delta for its key (client-go queueActionLocked).
    fn queue_action_locked(&mut self, kind: DeltaType, object: DeltaObject) {
        let key: &str = object.key();
        match self.items.get_mut(key) {
            // client-go: a Sync after a pending Deleted would resurrect the object.
            Some(deltas) if kind == DeltaType::Sync && deltas.last().is_some_and(|d| d.kind == DeltaType::Deleted) => {}
            Some(deltas) => {
                let n = deltas.len();
                deltas.push(Delta { kind, object });
                dedup_last(deltas);
                let grew = deltas.len() - n;
                self.deltas += grew;
            }
            None => {
                let key = object.shared_key();
                self.queue.push_back(key.clone());
                self.items.insert(key, vec![Delta { kind, object }]);
                self.deltas += 1;
            }
        }
    }

    /// client-go's Delete: a deletion of something neither the store nor the queue knows
    /// is dropped (nothing downstream could act on it).
    fn delete_locked(&mut self, object: DeltaObject, known: Option<&Store>) {
        self.populated = true;
        let key = object.key();
        let known_has = self.known_state_locked(known, key).is_some();
        if !known_has && !self.items.contains_key(key) {
            return;
        }
        self.queue_action_locked(DeltaType::Deleted, object);
    }

    /// What the store holds (or is about to hold) for `key`, counting in-flight deltas.
    /// Always None without a known-objects store (client-go then checks only the queue).
    fn known_state_locked(&self, known: Option<&Store>, key: &str) -> Option<ObjectRef> {
        let store = known?;
        match self.in_flight.get(key) {
            Some((state, _)) => state.clone(),
            None => store.get_by_key(key),
        }
    }

    /// Keys the store holds or is about to hold (see `in_flight`), sorted.
    fn known_keys_locked(&self, known: Option<&Store>) -> Vec<Arc<str>> {
        let Some(store) = known else { return Vec::new() };
        let mut keys: Vec<Arc<str>> =
            store.list_keys().into_iter().filter(|k| !self.in_flight.contains_key(k)).collect();
        keys.extend(self.in_flight.iter().filter(|(_, (s, _))| s.is_some()).map(|(k, _)| k.clone()));
        keys.sort_unstable();
        keys
    }

    /// Tables a burst (the initial list: one key per object) grew and that are empty
    /// again go back to a small size, so the queue of a 100k-object replace does not stay
    /// allocated (~70 B per cached object) for the life of the informer. Small tables keep
    /// their capacity: a steady watch drains the queue every batch and should not churn.
    fn shrink_drained_locked(&mut self) {
        const KEEP: usize = 4096;
        if self.items.is_empty() && self.items.capacity() > KEEP {
            self.items = HashMap::new();
        }
        if self.queue.is_empty() && self.queue.capacity() > KEEP {
            self.queue = VecDeque::new();
        }
    }

    /// Capacity of the item table and the queue (tests).
    #[cfg(test)]
    pub(crate) fn capacities_locked(&self) -> (usize, usize) {
        (self.items.capacity(), self.queue.capacity())
    }

    fn pop_locked(&mut self) -> Option<Popped> {
        let is_in_initial_list = !self.all_initial_popped();
        let key = self.queue.pop_front()?;
        let counted = self.initial_population_count > 0;
        if counted {
            self.initial_population_count -= 1;
        }
        let deltas = self.items.remove(&key).expect("queue and items hold the same keys");
        self.deltas -= deltas.len();
        Some(Popped { key, deltas, is_in_initial_list, counted })
    }
}

/// Collapse the last two deltas if both are Deleted (client-go isDeletionDup): keep the
/// older one unless it is a tombstone, since a real final state beats a guess.
fn dedup_last(deltas: &mut Vec<Delta>) {
    let n = deltas.len();
    if n < 2 || deltas[n - 1].kind != DeltaType::Deleted || deltas[n - 2].kind != DeltaType::Deleted {
        return;
    }
    let newer = deltas.pop().expect("n >= 2");
    if deltas[n - 2].object.is_tombstone() {
        deltas[n - 2] = newer;
    }
}

impl DeltaFifo {
    pub fn new(known_objects: Option<Arc<Store>>) -> Self {
        DeltaFifo { state: Mutex::new(State::default()), cond: Condvar::new(), room: Condvar::new(), known_objects }
    }

    pub fn known_objects(&self) -> Option<&Arc<Store>> {
        self.known_objects.as_ref()
    }

    pub fn add(&self, obj: ObjectRef) {
        self.push_many([(DeltaType::Added, DeltaObject::Object(obj))]);
    }

    pub fn update(&self, obj: ObjectRef) {
        self.push_many([(DeltaType::Updated, DeltaObject::Object(obj))]);
    }

    pub fn delete(&self, obj: DeltaObject) {
        self.push_many([(DeltaType::Deleted, obj)]);
    }

    /// Queue many watch events under one lock acquisition (the decoder's path). Each item
    /// is treated exactly as `add`/`update`/`delete` would treat it (Deleted of an unknown,
    /// unqueued key is dropped). Replaced/Sync are queued as given.
    ///
    /// The iterator is drained with the FIFO lock held: pass something cheap (a `Vec`'s
    /// `drain(..)`), not a lazy decoder, or the processor waits for the decoding.
    pub fn push_many(&self, items: impl IntoIterator<Item = (DeltaType, DeltaObject)>) {
        let known = self.known_objects.as_deref();
        let mut st = self.state.lock();
        let before = st.queue.len();
        let mut pushed = false;
        for (kind, object) in items {
            pushed = true;
            if kind == DeltaType::Deleted {
                st.delete_locked(object, known);
            } else {
                st.populated = true;
                st.queue_action_locked(kind, object);
            }
        }
        let grew = st.queue.len() > before;
        drop(st);
        if pushed && grew {
            self.cond.notify_all();
        }
    }

    /// A relist: Replaced for each listed object; a tombstone Deleted for every key the
    /// queue or the store has that the list lacks.
    ///
    /// kfast extension (protocol.md, "delete then re-create during a gap"): when a listed
    /// object's uid differs from the last state known for its key (newest queued delta, or
    /// the store), a tombstone Deleted of the old state is queued just before its Replaced,
    /// so handlers see the delete of the old object before the add of the new one. client-go
    /// would deliver an Update between two different objects instead.
    pub fn replace(&self, objs: Vec<ObjectRef>, _resource_version: &str) {
        let known = self.known_objects.as_deref();
        let mut st = self.state.lock();
        let mut listed: HashSet<Arc<str>> = HashSet::with_capacity(objs.len());
        for obj in objs {
            listed.insert(obj.key.clone());
            if let Some(old) = last_known_locked(&st, known, &obj.key) {
                if !old.meta.uid.is_empty() && !obj.meta.uid.is_empty() && old.uid() != obj.uid() {
                    let key = obj.key.clone();
                    st.queue_action_locked(DeltaType::Deleted, DeltaObject::Tombstone { key, obj: Some(old) });
                }
            }
            st.queue_action_locked(DeltaType::Replaced, DeltaObject::Object(obj));
        }
        let mut deletions = 0usize;
        // Queued keys first, in queue order (deterministic, unlike Go's map walk). The
        // tombstone carries the newest queued state.
        let queued_missing: Vec<Arc<str>> = st.queue.iter().filter(|k| !listed.contains(*k)).cloned().collect();
        for key in queued_missing {
            let newest = st.items[&key].last().and_then(|d| d.object.object().cloned());
            deletions += 1;
            st.queue_action_locked(DeltaType::Deleted, DeltaObject::Tombstone { key, obj: newest });
        }
        let missing: Vec<Arc<str>> = st
            .known_keys_locked(known)
            .into_iter()
            .filter(|k| !listed.contains(k) && !st.items.contains_key(k))
            .collect();
        for key in missing {
            let obj = st.known_state_locked(known, &key);
            deletions += 1;
            st.queue_action_locked(DeltaType::Deleted, DeltaObject::Tombstone { key, obj });
        }
        if !st.populated {
            st.populated = true;
            st.initial_population_count = listed.len() + deletions;
        }
        let any = !st.queue.is_empty();
        drop(st);
        if any {
            self.cond.notify_all();
        }
    }

    /// A Sync delta for every known object whose key is not queued (a queued key already
    /// carries newer state than the store).
    pub fn resync(&self) {
        let Some(store) = self.known_objects.as_deref() else { return };
        let mut st = self.state.lock();
        let mut any = false;
        for key in st.known_keys_locked(Some(store)) {
            if st.items.contains_key(&key) {
                continue;
            }
            if let Some(obj) = st.known_state_locked(Some(store), &key) {
                st.queue_action_locked(DeltaType::Sync, DeltaObject::Object(obj));
                any = true;
            }
        }
        drop(st);
        if any {
            self.cond.notify_all();
        }
    }

    /// Wait (up to `timeout`, forever if None) for a key and pop it with all its deltas.
    /// A closed FIFO still hands out what it holds; `Closed` only once it is empty.
    pub fn pop(&self, timeout: Option<Duration>) -> Result<Popped, PopError> {
        let mut batch = self.pop_batch(1, timeout)?;
        Ok(batch.pop().expect("pop_batch returns at least one"))
    }

    /// Wait like `pop`, then pop up to `max_keys` keys (at least one) under one lock.
    pub fn pop_batch(&self, max_keys: usize, timeout: Option<Duration>) -> Result<Vec<Popped>, PopError> {
        self.pop_batch_inner(max_keys, timeout, false).map(|(p, _)| p)
    }

    /// `pop_batch` for a consumer that applies the deltas to `known_objects` (the
    /// processor): until `finish_batch(id)`, replace/resync/delete treat the popped deltas
    /// as already applied, exactly as if they had been processed under the FIFO lock.
    pub fn pop_batch_tracked(
        &self,
        max_keys: usize,
        timeout: Option<Duration>,
    ) -> Result<(Vec<Popped>, u64), PopError> {
        self.pop_batch_inner(max_keys, timeout, true)
    }

    /// The tracked batch `id` has been applied to the store (or requeued).
    pub fn finish_batch(&self, id: u64) {
        let mut st = self.state.lock();
        if !st.in_flight.is_empty() {
            st.in_flight.retain(|_, (_, b)| *b != id);
        }
        st.initial_in_flight.remove(&id);
    }

    fn pop_batch_inner(
        &self,
        max_keys: usize,
        timeout: Option<Duration>,
        track: bool,
    ) -> Result<(Vec<Popped>, u64), PopError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.state.lock();
        while st.queue.is_empty() {
            if st.closed {
                return Err(PopError::Closed);
            }
            match deadline {
                None => self.cond.wait(&mut st),
                Some(d) => {
                    if self.cond.wait_until(&mut st, d).timed_out() && st.queue.is_empty() {
                        return Err(if st.closed { PopError::Closed } else { PopError::Timeout });
                    }
                }
            }
        }
        let n = max_keys.max(1).min(st.queue.len());
        let popped: Vec<Popped> = (0..n).map(|_| st.pop_locked().expect("n <= queue length")).collect();
        if st.queue.is_empty() {
            st.shrink_drained_locked();
        }
        self.room.notify_all();
        let mut id = 0;
        if track && self.known_objects.is_some() {
            st.batch_seq += 1;
            id = st.batch_seq;
            for p in &popped {
                let state = match p.deltas.last() {
                    Some(d) if d.kind != DeltaType::Deleted => d.object.object().cloned(),
                    _ => None,
                };
                st.in_flight.insert(p.key.clone(), (state, id));
            }
            let initial = popped.iter().filter(|p| p.counted).count();
            if initial > 0 {
                st.initial_in_flight.insert(id, initial);
            }
        }
        Ok((popped, id))
    }

    /// Put popped-but-unprocessed keys back at the head of the queue, in their original
    /// order, ahead of any deltas queued for them since (used when processing fails, so no
    /// delta is lost or reordered).
    pub fn requeue_front(&self, popped: Vec<Popped>) {
        let mut st = self.state.lock();
        for p in popped.into_iter().rev() {
            if p.deltas.is_empty() {
                continue;
            }
            if p.counted {
                st.initial_population_count += 1;
            }
            let mut deltas = p.deltas;
            if let Some(newer) = st.items.remove(&p.key) {
                st.deltas -= newer.len();
                st.queue.retain(|k| *k != p.key);
                for d in newer {
                    deltas.push(d);
                    dedup_last(&mut deltas);
                }
            }
            st.queue.push_front(p.key.clone());
            st.deltas += deltas.len();
            st.items.insert(p.key, deltas);
        }
        drop(st);
        self.cond.notify_all();
    }

    pub fn list_keys(&self) -> Vec<Arc<str>> {
        self.state.lock().queue.iter().cloned().collect()
    }

    pub fn get_by_key(&self, key: &str) -> Option<Vec<Delta>> {
        self.state.lock().items.get(key).cloned()
    }

    pub fn has_synced(&self) -> bool {
        self.state.lock().has_synced()
    }

    pub fn close(&self) {
        self.state.lock().closed = true;
        self.cond.notify_all();
        self.room.notify_all();
    }

    /// Deltas queued, over all keys.
    pub fn deltas_len(&self) -> usize {
        self.state.lock().deltas
    }

    /// Wait up to `timeout` until fewer than `max` deltas are queued (or the FIFO is
    /// closed); returns whether that is so. For a producer that must not run unboundedly
    /// ahead of the consumer: client-go's DeltaFIFO is unbounded, and so is this one for
    /// every other caller.
    pub fn wait_for_room(&self, max: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        while st.deltas >= max && !st.closed {
            if self.room.wait_until(&mut st, deadline).timed_out() {
                return st.deltas < max || st.closed;
            }
        }
        true
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    pub fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn check_invariants(&self) -> Result<(), String> {
        let st = self.state.lock();
        if st.queue.len() != st.items.len() {
            return Err(format!("queue has {} keys, items {}", st.queue.len(), st.items.len()));
        }
        let mut seen = HashSet::with_capacity(st.queue.len());
        for k in &st.queue {
            if !seen.insert(k) {
                return Err(format!("key {k:?} queued twice"));
            }
            let Some(deltas) = st.items.get(k) else { return Err(format!("queued key {k:?} has no deltas")) };
            if deltas.is_empty() {
                return Err(format!("key {k:?} has an empty delta list"));
            }
            if let Some(d) = deltas.iter().find(|d| d.object.key() != &**k) {
                return Err(format!("key {k:?} holds a delta for {:?}", d.object.key()));
            }
            if deltas.windows(2).any(|w| w[0].kind == DeltaType::Deleted && w[1].kind == DeltaType::Deleted) {
                return Err(format!("key {k:?} has consecutive Deleted deltas"));
            }
        }
        let total: usize = st.items.values().map(Vec::len).sum();
        if total != st.deltas {
            return Err(format!("{} deltas queued but {} counted", total, st.deltas));
        }
        if st.initial_population_count > st.queue.len() {
            return Err(format!(
                "initial_population_count {} > queued {}",
                st.initial_population_count,
                st.queue.len()
            ));
        }
        if !st.populated && st.initial_population_count != 0 {
            return Err("initial_population_count set before populated".into());
        }
        Ok(())
    }
}

/// The last state known for `key`: the newest queued delta (None if that is a deletion),
/// else the store's object.
fn last_known_locked(st: &State, known: Option<&Store>, key: &str) -> Option<ObjectRef> {
    match st.items.get(key).and_then(|d| d.last()) {
        Some(d) if d.kind == DeltaType::Deleted => None,
        Some(d) => d.object.object().cloned(),
        None => st.known_state_locked(known, key),
    }
}

#[cfg(test)]
#[path = "fifo_tests.rs"]
mod tests;
