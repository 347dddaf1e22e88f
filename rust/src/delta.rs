//! Deltas: what the DeltaFIFO queues per key and the processor applies to the store.

use crate::object::ObjectRef;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeltaType {
    Added,
    Updated,
    Deleted,
    Replaced,
    Sync,
}

impl DeltaType {
    pub fn as_str(self) -> &'static str {
        match self {
            DeltaType::Added => "Added",
            DeltaType::Updated => "Updated",
            DeltaType::Deleted => "Deleted",
            DeltaType::Replaced => "Replaced",
            DeltaType::Sync => "Sync",
        }
    }
}

/// What a Delta carries: the object, or for a deletion the client did not observe, a
/// tombstone (client-go's `DeletedFinalStateUnknown`) with the last state known, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaObject {
    Object(ObjectRef),
    Tombstone { key: Arc<str>, obj: Option<ObjectRef> },
}

impl DeltaObject {
    pub fn key(&self) -> &str {
        match self {
            DeltaObject::Object(o) => &o.key,
            DeltaObject::Tombstone { key, .. } => key,
        }
    }
    /// The key as the shared string the object (or tombstone) holds.
    pub fn shared_key(&self) -> Arc<str> {
        match self {
            DeltaObject::Object(o) => o.key.clone(),
            DeltaObject::Tombstone { key, .. } => key.clone(),
        }
    }
    /// The object itself, or the tombstone's last known state.
    pub fn object(&self) -> Option<&ObjectRef> {
        match self {
            DeltaObject::Object(o) => Some(o),
            DeltaObject::Tombstone { obj, .. } => obj.as_ref(),
        }
    }
    pub fn is_tombstone(&self) -> bool {
        matches!(self, DeltaObject::Tombstone { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub kind: DeltaType,
    pub object: DeltaObject,
}
