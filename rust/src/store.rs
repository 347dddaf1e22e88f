//! The informer's cache: a thread-safe store of objects by key with named indices
//! (client-go's ThreadSafeStore + Indexer).
//!
//! Locking: one `RwLock` over everything. Index values are computed before the lock is
//! taken (a Python index function needs the GIL, and a Python thread holding the GIL may be
//! waiting for this lock), so a write holds the lock only for map updates. Readers clone
//! `Arc`s out and let go. One writer (the informer's processor) is the expected use, but
//! concurrent writers are safe: a writer whose snapshot of the index definitions went stale
//! while it computed values simply recomputes.

use crate::error::{Error, Result};
use crate::index::{compute_values, IndexDef};
use crate::object::{Object, ObjectRef};
use parking_lot::RwLock;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Keys are the objects' own `Arc<str>` keys: an index entry costs a pointer, not a copy.
type KeySet = HashSet<Arc<str>>;

/// One index: value -> keys. A value is an `Arc<str>` shared with every entry indexed
/// under it (see `StoredValues`).
type IndexMap = HashMap<Arc<str>, KeySet>;

struct Entry {
    obj: ObjectRef,
    /// The values this object version was indexed under, kept so that an update or delete
    /// removes exactly these (the function may not be pure over time, and recomputing
    /// costs a call).
    values: StoredValues,
}

// The item table is a set of entries found by their object's key: a map from a copy of the
// key `Arc` to the entry spent 16 more bytes a slot (~20 B per cached object).
impl std::borrow::Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        &self.obj.key
    }
}
impl std::hash::Hash for Entry {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes, so that lookups by `&str` find it (the `Borrow` contract).
        (*self.obj.key).hash(state)
    }
}
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.obj.key == other.obj.key
    }
}
impl Eq for Entry {}

/// An entry's values for every index in one allocation: index 0's values, then a `None`,
/// index 1's values, and so on (no slots at all when every index has no value). Each
/// index's values are sorted and unique, and each is the index map's own key (a
/// reference count, not a copy). This replaced a boxed slice of boxed slices of boxed
/// strings: five allocations (~90 B) per pod with two single-valued indices, now one of
/// 48 B.
#[derive(Default)]
struct StoredValues(Box<[Option<Arc<str>>]>);

impl StoredValues {
    /// Index `i`'s values (every slot `Some`); empty past the last index.
    fn get(&self, i: usize) -> &[Option<Arc<str>>] {
        self.0.split(Option::is_none).nth(i).unwrap_or(&[])
    }

    /// How many indices these are values for (with no slots, any number of empty lists).
    fn segments(&self) -> usize {
        self.0.iter().filter(|v| v.is_none()).count() + 1
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &Arc<str>)> {
        let mut i = 0;
        self.0.iter().filter_map(move |v| match v {
            Some(v) => Some((i, v)),
            None => {
                i += 1;
                None
            }
        })
    }

    /// From per-index slots; trailing separators are dropped only when there are no
    /// values at all, so `get` stays positional.
    fn from_flat(flat: Vec<Option<Arc<str>>>) -> StoredValues {
        if flat.iter().all(Option::is_none) {
            StoredValues::default()
        } else {
            StoredValues(flat.into_boxed_slice())
        }
    }
}

fn find<'a>(seg: &'a [Option<Arc<str>>], v: &str) -> Option<&'a Arc<str>> {
    seg.binary_search_by(|o| (**o.as_ref().expect("a value slot")).cmp(v)).ok().and_then(|j| seg[j].as_ref())
}

/// Items and indices; built off-lock by `replace` and swapped in whole.
#[derive(Default)]
struct Tables {
    /// Entries by `obj.key`. Invariant: each entry has values for `indices.len()` indices.
    items: HashSet<Entry>,
    /// `indices[i]`: value -> keys, for index definition `i`.
    /// Invariant: `k ∈ indices[i][v]` iff `v ∈ items[k].values.get(i)`, and that value is
    /// the map's key itself (`Arc::ptr_eq`); no set is empty (an empty value disappears
    /// from `list_index_values`).
    indices: Vec<IndexMap>,
}

struct Inner {
    /// Index definitions in index order. Append-only (positions never change) and replaced
    /// as a whole, so a writer can detect with `Arc::ptr_eq` that its snapshot is stale.
    defs: Arc<[IndexDef]>,
    tables: Tables,
    /// Bumped by every mutation, so `add_indexers` (which indexes a snapshot of the items
    /// off-lock) can tell whether the items moved under it.
    generation: u64,
}

pub struct Store {
    inner: RwLock<Inner>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new(Vec::new()).expect("no indexers cannot clash")
    }
}

impl Tables {
    fn with_indices(n: usize) -> Tables {
        Tables { items: HashSet::new(), indices: (0..n).map(|_| HashMap::new()).collect() }
    }

    /// Insert or replace `obj`, moving its key between index values. Returns the old object.
    fn upsert(&mut self, obj: ObjectRef, values: &[Box<[Box<str>]>]) -> Option<ObjectRef> {
        let key = &obj.key;
        let old = self.items.get(&**key);
        let no_values = StoredValues::default();
        let old_values = old.as_ref().map_or(&no_values, |e| &e.values);
        let mut flat: Vec<Option<Arc<str>>> =
            Vec::with_capacity(values.iter().map(|v| v.len()).sum::<usize>() + values.len().saturating_sub(1));
        for (i, index) in self.indices.iter_mut().enumerate() {
            if i > 0 {
                flat.push(None);
            }
            let new = &values[i][..];
            let old_vals = old_values.get(i);
            // Both sides are sorted: remove only values that went away, add only new ones,
            // so ["a"] -> ["a","b"] leaves "a" untouched.
            for v in old_vals.iter().flatten().filter(|v| new.binary_search_by(|n| (**n).cmp(v)).is_err()) {
                remove_key(index, v, key);
            }
            for v in new.iter() {
                let shared = match find(old_vals, v) {
                    Some(kept) => kept.clone(),
                    None => add_key(index, v, key),
                };
                flat.push(Some(shared));
            }
        }
        let values = StoredValues::from_flat(flat);
        self.items.replace(Entry { obj, values }).map(|e| e.obj)
    }

    /// The entry under `k`, which an index set holds (so it exists, by the invariant).
    fn item(&self, k: &str) -> &Entry {
        self.items.get(k).expect("index sets hold only stored keys")
    }

    fn remove(&mut self, key: &str) -> Option<ObjectRef> {
        let old = self.items.take(key)?;
        for (i, v) in old.values.iter() {
            remove_key(&mut self.indices[i], v, key);
        }
        Some(old.obj)
    }
}

/// Add `key` under `value`; returns the index's own `Arc` of the value, for the entry.
fn add_key(index: &mut IndexMap, value: &str, key: &Arc<str>) -> Arc<str> {
    if let Some(set) = index.get_mut(value) {
        set.insert(key.clone());
        // A second lookup, but only when a value is new to this object; the map has no
        // stable API handing out its key and the value together mutably.
        return index.get_key_value(value).expect("present").0.clone();
    }
    let v: Arc<str> = value.into();
    index.insert(v.clone(), HashSet::from([key.clone()]));
    v
}

fn remove_key(index: &mut IndexMap, value: &str, key: &str) {
    if let Some(set) = index.get_mut(value) {
        set.remove(key);
        if set.is_empty() {
            index.remove(value);
        }
    }
}

impl Store {
    /// Errors with `IndexExists` if two definitions share a name.
    pub fn new(defs: Vec<IndexDef>) -> Result<Store> {
        check_names(&[], &defs)?;
        let n = defs.len();
        Ok(Store { inner: RwLock::new(Inner { defs: defs.into(), tables: Tables::with_indices(n), generation: 0 }) })
    }

    pub fn index_defs(&self) -> Arc<[IndexDef]> {
        self.inner.read().defs.clone()
    }

    /// Add or update (client-go's Add and Update are the same operation). Returns the
    /// object previously stored under the key.
    pub fn upsert(&self, obj: ObjectRef) -> Result<Option<ObjectRef>> {
        loop {
            let defs = self.index_defs();
            let values = compute_values(&defs, &obj)?;
            let mut g = self.inner.write();
            if !Arc::ptr_eq(&g.defs, &defs) {
                continue; // add_indexers ran meanwhile: values are missing some indices
            }
            g.generation += 1;
            return Ok(g.tables.upsert(obj, &values));
        }
    }

    pub fn add(&self, obj: ObjectRef) -> Result<()> {
        self.upsert(obj).map(drop)
    }

    pub fn update(&self, obj: ObjectRef) -> Result<()> {
        self.upsert(obj).map(drop)
    }

    /// Remove the object stored under `key`; returns it (None if there was none).
    pub fn delete(&self, key: &str) -> Option<ObjectRef> {
        let mut g = self.inner.write();
        let old = g.tables.remove(key);
        if old.is_some() {
            g.generation += 1;
        }
        old
    }

    /// Replace the whole content. The new tables are built off-lock and swapped in, so
    /// readers see either the old or the new content, never a mix. Later duplicates of a
    /// key win. (`resource_version` is accepted for client-go parity and not stored.)
    pub fn replace(&self, objs: Vec<ObjectRef>, _resource_version: &str) -> Result<()> {
        loop {
            let defs = self.index_defs();
            let mut tables = Tables::with_indices(defs.len());
            tables.items.reserve(objs.len());
            for obj in &objs {
                let values = compute_values(&defs, obj)?;
                tables.upsert(obj.clone(), &values);
            }
            let mut g = self.inner.write();
            if !Arc::ptr_eq(&g.defs, &defs) {
                continue;
            }
            g.generation += 1;
            let old = std::mem::replace(&mut g.tables, tables);
            drop(g);
            drop(old); // freeing the old maps is the slow part; do it outside the lock
            return Ok(());
        }
    }

    /// Add index definitions; objects already stored are indexed under them.
    pub fn add_indexers(&self, new_defs: Vec<IndexDef>) -> Result<()> {
        if new_defs.is_empty() {
            return Ok(());
        }
        loop {
            let (defs, snapshot, generation) = {
                let g = self.inner.read();
                let snap: Vec<ObjectRef> = g.tables.items.iter().map(|e| e.obj.clone()).collect();
                (g.defs.clone(), snap, g.generation)
            };
            check_names(&defs, &new_defs)?;
            let mut computed = HashMap::with_capacity(snapshot.len());
            for obj in &snapshot {
                computed.insert(obj.key.clone(), compute_values(&new_defs, obj)?);
            }
            let mut g = self.inner.write();
            if g.generation != generation || !Arc::ptr_eq(&g.defs, &defs) {
                continue; // items changed while we computed: redo against the new state
            }
            let base = defs.len();
            let mut all: Vec<IndexDef> = defs.iter().cloned().collect();
            all.extend(new_defs.iter().cloned());
            let inner = &mut *g;
            inner.tables.indices.extend((0..new_defs.len()).map(|_| HashMap::new()));
            // A set's entries cannot be changed in place: rebuild it (adding an indexer to a
            // full cache is rare).
            let old_items = std::mem::take(&mut inner.tables.items);
            inner.tables.items.reserve(old_items.len());
            for mut entry in old_items {
                let key = &entry.obj.key.clone();
                let extra = computed.remove(key).expect("snapshot covers every item");
                let mut flat: Vec<Option<Arc<str>>> = Vec::new();
                for i in 0..base {
                    if i > 0 {
                        flat.push(None);
                    }
                    flat.extend(entry.values.get(i).iter().cloned());
                }
                for (j, vals) in extra.iter().enumerate() {
                    if base + j > 0 {
                        flat.push(None);
                    }
                    let index = &mut inner.tables.indices[base + j];
                    for v in vals.iter() {
                        flat.push(Some(add_key(index, v, key)));
                    }
                }
                entry.values = StoredValues::from_flat(flat);
                inner.tables.items.insert(entry);
            }
            inner.defs = all.into();
            inner.generation += 1;
            return Ok(());
        }
    }

    pub fn get_by_key(&self, key: &str) -> Option<ObjectRef> {
        self.inner.read().tables.items.get(key).map(|e| e.obj.clone())
    }

    pub fn get(&self, obj: &Object) -> Option<ObjectRef> {
        self.get_by_key(&obj.key)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.inner.read().tables.items.contains(key)
    }

    pub fn len(&self) -> usize {
        self.inner.read().tables.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn list(&self) -> Vec<ObjectRef> {
        self.inner.read().tables.items.iter().map(|e| e.obj.clone()).collect()
    }

    pub fn list_keys(&self) -> Vec<Arc<str>> {
        self.inner.read().tables.items.iter().map(|e| e.obj.key.clone()).collect()
    }

    fn position(defs: &[IndexDef], name: &str) -> Result<usize> {
        defs.iter().position(|d| &*d.name == name).ok_or_else(|| Error::IndexNotFound { name: name.to_string() })
    }

    /// Keys indexed under `value` in index `name`.
    pub fn index_keys(&self, name: &str, value: &str) -> Result<Vec<Arc<str>>> {
        let g = self.inner.read();
        let i = Self::position(&g.defs, name)?;
        Ok(g.tables.indices[i].get(value).map(|s| s.iter().cloned().collect()).unwrap_or_default())
    }

    pub fn by_index(&self, name: &str, value: &str) -> Result<Vec<ObjectRef>> {
        let g = self.inner.read();
        let i = Self::position(&g.defs, name)?;
        let t = &g.tables;
        Ok(t.indices[i].get(value).map(|s| s.iter().map(|k| t.item(k).obj.clone()).collect()).unwrap_or_default())
    }

    /// The values that currently have at least one object. An unknown index gives no values
    /// (client-go's ListIndexFuncValues does the same).
    pub fn list_index_values(&self, name: &str) -> Vec<Arc<str>> {
        let g = self.inner.read();
        match Self::position(&g.defs, name) {
            Ok(i) => g.tables.indices[i].keys().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Objects sharing at least one of `obj`'s values in index `name` (values computed now).
    pub fn index(&self, name: &str, obj: &ObjectRef) -> Result<Vec<ObjectRef>> {
        let defs = self.index_defs();
        let i = Self::position(&defs, name)?;
        let values = compute_values(&defs[i..=i], obj)?;
        let g = self.inner.read();
        let t = &g.tables;
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::new();
        for v in values[0].iter() {
            if let Some(set) = t.indices[i].get(&**v) {
                for k in set {
                    if seen.insert(k) {
                        out.push(t.item(k).obj.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// Approximate heap bytes: object JSON and metadata, keys, and index entries.
    pub fn nbytes(&self) -> usize {
        const MAP_SLOT: usize = 16; // hashbrown control byte + pointer-ish overhead per slot
        let g = self.inner.read();
        let t = &g.tables;
        let mut n = t.items.capacity() * (std::mem::size_of::<Entry>() + 1);
        for e in t.items.iter() {
            // The item key is the object's own `Arc<str>`, counted with the object; the
            // values are the index maps' keys, counted with the indices.
            n += object_heap_bytes(&e.obj) + e.values.0.len() * std::mem::size_of::<Option<Arc<str>>>();
        }
        for index in &t.indices {
            n += index.capacity() * (std::mem::size_of::<(Arc<str>, KeySet)>() + 1);
            for (v, set) in index {
                n += 16 + v.len() + set.capacity() * (std::mem::size_of::<Arc<str>>() + 1) + MAP_SLOT;
            }
        }
        n
    }

    /// Check every documented invariant; `Err` names the first violation.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        let g = self.inner.read();
        let t = &g.tables;
        if t.indices.len() != g.defs.len() {
            return Err(format!("{} indices for {} definitions", t.indices.len(), g.defs.len()));
        }
        for e in &t.items {
            let k = &e.obj.key;
            if !e.values.0.is_empty() && e.values.segments() != g.defs.len() {
                return Err(format!("item {k:?} has values for {} of {} indices", e.values.segments(), g.defs.len()));
            }
            for i in 0..g.defs.len() {
                let vals = e.values.get(i);
                if vals.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(format!("item {k:?} index {i}: values not sorted/unique"));
                }
                for v in vals.iter().flatten() {
                    match t.indices[i].get_key_value(&**v) {
                        Some((shared, s)) if s.contains(k) && Arc::ptr_eq(shared, v) => {}
                        _ => return Err(format!("index {:?} value {v:?} lacks key {k:?} or a shared value", g.defs[i].name)),
                    }
                }
            }
        }
        for (i, index) in t.indices.iter().enumerate() {
            for (v, set) in index {
                if set.is_empty() {
                    return Err(format!("index {:?} keeps empty value {v:?}", g.defs[i].name));
                }
                for k in set {
                    match t.items.get(&**k) {
                        Some(e) if find(e.values.get(i), v).is_some() => {}
                        _ => return Err(format!("index {:?} value {v:?} holds stale key {k:?}", g.defs[i].name)),
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_names(existing: &[IndexDef], new: &[IndexDef]) -> Result<()> {
    for (j, d) in new.iter().enumerate() {
        if existing.iter().chain(&new[..j]).any(|e| e.name == d.name) {
            return Err(Error::IndexExists { name: d.name.to_string() });
        }
    }
    Ok(())
}

/// Heap bytes owned by one object (the store counts every object it holds in full, even
/// if a queued delta or a Python view shares the `Arc`).
pub fn object_heap_bytes(o: &Object) -> usize {
    use std::mem::size_of;
    let fields = o.fields.as_ref().map_or(0, |f| size_of::<crate::decode::Captured>() + f.spans.len() * 8);
    // `Arc` header (two counts) + the object; json at glibc's granularity.
    2 * size_of::<usize>() + size_of::<Object>() + o.json.heap_bytes() + 16 + o.key.len() + fields
}

#[cfg(test)]
#[path = "store_tests.rs"]
pub(crate) mod tests;
