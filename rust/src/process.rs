//! The informer's processor step (client-go sharedIndexInformer.HandleDeltas /
//! processDeltas): pop keys from the DeltaFIFO, apply each delta to the store in order, and
//! produce the notifications handlers will see, in that same order.

use crate::error::Error;
use crate::fifo::{DeltaFifo, DeltaObject, DeltaType, PopError, Popped};
use crate::object::ObjectRef;
use crate::store::Store;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    Add {
        obj: ObjectRef,
        is_in_initial_list: bool,
    },
    Update {
        old: ObjectRef,
        new: ObjectRef,
    },
    /// `obj` may be a tombstone (a deletion seen only through a relist).
    Delete {
        obj: DeltaObject,
    },
}

impl Notification {
    /// The integer kind of the Python tuple form: 0 add, 1 update, 2 delete.
    pub fn kind(&self) -> u8 {
        match self {
            Notification::Add { .. } => 0,
            Notification::Update { .. } => 1,
            Notification::Delete { .. } => 2,
        }
    }
}

#[derive(Debug, Default)]
pub struct Processed {
    /// Notifications for every delta applied, in order.
    pub notifications: Vec<Notification>,
    /// The FIFO is closed and drained; nothing was popped.
    pub closed: bool,
    /// Applying a delta failed (an index function raised). The failing delta and everything
    /// after it were put back at the head of the FIFO, so nothing is lost; the same error
    /// will most likely recur on the next call.
    pub error: Option<Error>,
}

/// Apply one key's deltas. On failure returns the index of the failing delta.
pub(crate) fn apply_deltas(store: &Store, p: &Popped, out: &mut Vec<Notification>) -> Result<(), (usize, Error)> {
    for (i, d) in p.deltas.iter().enumerate() {
        match d.kind {
            DeltaType::Sync | DeltaType::Replaced | DeltaType::Added | DeltaType::Updated => {
                let obj = match &d.object {
                    DeltaObject::Object(o) => o.clone(),
                    // Only Deleted deltas carry tombstones; tolerate a stray one as a delete.
                    DeltaObject::Tombstone { .. } => {
                        store.delete(d.object.key());
                        out.push(Notification::Delete { obj: d.object.clone() });
                        continue;
                    }
                };
                match store.upsert(obj.clone()) {
                    Ok(Some(old)) => out.push(Notification::Update { old, new: obj }),
                    Ok(None) => out.push(Notification::Add { obj, is_in_initial_list: p.is_in_initial_list }),
                    Err(e) => return Err((i, e)),
                }
            }
            DeltaType::Deleted => {
                store.delete(d.object.key());
                out.push(Notification::Delete { obj: d.object.clone() });
            }
        }
    }
    Ok(())
}

/// Wait up to `timeout` for the FIFO, pop up to `max_keys` keys and apply them to `store`.
/// A timeout gives an empty, not-closed result.
pub fn process_batch(fifo: &DeltaFifo, store: &Store, max_keys: usize, timeout: Option<Duration>) -> Processed {
    let (popped, batch) = match fifo.pop_batch_tracked(max_keys, timeout) {
        Ok(p) => p,
        Err(PopError::Timeout) => return Processed::default(),
        Err(PopError::Closed) => return Processed { closed: true, ..Processed::default() },
    };
    let total: usize = popped.iter().map(|p| p.deltas.len()).sum();
    let mut notifications = Vec::with_capacity(total);
    let mut iter = popped.into_iter();
    while let Some(p) = iter.next() {
        if let Err((i, error)) = apply_deltas(store, &p, &mut notifications) {
            let mut rest = vec![Popped { deltas: p.deltas[i..].to_vec(), ..p }];
            rest.extend(iter);
            fifo.requeue_front(rest);
            fifo.finish_batch(batch);
            return Processed { notifications, closed: false, error: Some(error) };
        }
    }
    fifo.finish_batch(batch);
    Processed { notifications, closed: false, error: None }
}
