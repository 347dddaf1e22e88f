//! Native transforms: drop fields from an object before it is cached, by splicing its JSON
//! bytes (design.md §2: "optional transform (drop managedFields etc.) by splicing bytes, not
//! re-serialising").
//!
//! A `Transform` is a set of field paths, each a list of object keys (`metadata.managedFields`
//! is `["metadata", "managedFields"]`; a key may itself contain dots, as the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation does). `removals` walks the
//! object along those paths only, everything else is skipped by the scanner, and returns the
//! byte ranges to cut: each removed member together with one comma next to it, so the rest
//! stays byte-for-byte what the server sent and the result is valid JSON. `Removals` then
//! splices the bytes and maps positions taken before the cut (the object's `Meta`, field
//! captures) onto the spliced bytes.

use crate::decode::scan::{ScanError, ScanResult, Scanner};
use crate::decode::{Captured, ABSENT, UNKNOWN};
use crate::error::Error;
use crate::json_buf::JsonBuf;
use crate::object::{Meta, Object};

/// Paths that may not be dropped: the cache key (namespace/name), uid and resourceVersion
/// are what the informer runs on (and `metadata` holds them).
const PROTECTED: &[&[&str]] =
    &[&["metadata", "name"], &["metadata", "namespace"], &["metadata", "uid"], &["metadata", "resourceVersion"]];

pub const MANAGED_FIELDS: &[&str] = &["metadata", "managedFields"];
pub const LAST_APPLIED: &[&str] = &["metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// Unique paths, each non-empty, in the order they were given.
    paths: Vec<Box<[Box<str>]>>,
    /// Bits of `ONCE` naming the first parts of all paths, when every path is nested
    /// under one of them (see `walk`); `NOT_ONCE` otherwise.
    top_once: u8,
}

/// Top-level members the metadata extraction rejects when repeated, so a validated object
/// has each at most once.
const ONCE: [&str; 3] = ["metadata", "apiVersion", "kind"];
const NOT_ONCE: u8 = u8::MAX;
/// Not an error: the walk stopped early because nothing after this point can match.
const DONE: &str = "transform walk done";

impl Transform {
    /// A transform dropping each path. Errors name the path that is empty or protected.
    pub fn new<P: AsRef<[S]>, S: AsRef<str>>(paths: impl IntoIterator<Item = P>) -> Result<Transform, Error> {
        let invalid = |message: String| Error::InvalidTransform { message };
        let mut t = Transform { paths: Vec::new(), top_once: NOT_ONCE };
        for p in paths {
            let parts: Box<[Box<str>]> = p.as_ref().iter().map(|s| Box::from(s.as_ref())).collect();
            if parts.is_empty() {
                return Err(invalid("an empty field path drops nothing".into()));
            }
            if PROTECTED
                .iter()
                .any(|pr| pr.len() >= parts.len() && pr.iter().zip(parts.iter()).all(|(a, b)| *a == &**b))
            {
                return Err(invalid(format!(
                    "field path {:?} cannot be dropped: the cache needs metadata.name, namespace, uid and resourceVersion",
                    parts.join(".")
                )));
            }
            if !t.paths.contains(&parts) {
                t.paths.push(parts);
            }
        }
        t.top_once = top_once(&t.paths);
        Ok(t)
    }

    pub fn paths(&self) -> &[Box<[Box<str>]>] {
        &self.paths
    }

    /// Both transforms' paths (applying the result equals applying one after the other).
    pub fn combine(&self, other: &Transform) -> Transform {
        let mut t = self.clone();
        for p in &other.paths {
            if !t.paths.contains(p) {
                t.paths.push(p.clone());
            }
        }
        t.top_once = top_once(&t.paths);
        t
    }

    /// The byte ranges of `json` to cut, sorted and disjoint. `json` must be an object the
    /// metadata extraction accepted (valid, and `metadata`/`apiVersion`/`kind` at most once
    /// at the top: the walk stops after them when no path goes elsewhere). Anything but an
    /// object at the top has nothing to drop; so does JSON that fails to scan.
    pub fn removals(&self, json: &[u8]) -> Removals {
        let mut ranges = Vec::new();
        let mut s = Scanner::new(json);
        s.ws();
        if self.paths.is_empty() || s.peek() != Some(b'{') {
            return Removals { ranges };
        }
        let all: Vec<usize> = (0..self.paths.len()).collect();
        match self.walk(&mut s, json, 0, &all, &mut ranges) {
            Ok(()) => {}
            Err(e) if e.msg == DONE => {}
            Err(_) => {
                debug_assert!(false, "transform applied to invalid JSON");
                ranges.clear();
            }
        }
        ranges.sort_unstable();
        Removals { ranges }
    }

    /// The scanner is at an object reached through part `level - 1` of every path in
    /// `active`. Records the ranges that drop its members named by part `level`.
    fn walk(
        &self,
        s: &mut Scanner<'_>,
        json: &[u8],
        level: usize,
        active: &[usize],
        out: &mut Vec<(u32, u32)>,
    ) -> ScanResult<()> {
        // (key start, value end, removed) of each member, in order.
        let mut members: Vec<(usize, usize, bool)> = Vec::new();
        let mut deeper: Vec<usize> = Vec::new();
        // At the top, paths that only go through members the metadata extraction allows
        // once (`metadata`, `apiVersion`, `kind`) are done once those members were seen:
        // the rest of the object (spec and status, most of its bytes) is not scanned.
        let mut unseen = if level == 0 { self.top_once } else { NOT_ONCE };
        s.object(|s, key| {
            if unseen == 0 {
                return Err(ScanError { pos: s.pos(), msg: DONE });
            }
            if unseen != NOT_ONCE {
                for (bit, name) in ONCE.iter().enumerate() {
                    if key.is(name.as_bytes()) {
                        unseen &= !(1 << bit);
                    }
                }
            }
            let key_start = key.raw.as_ptr() as usize - json.as_ptr() as usize - 1;
            let mut remove = false;
            deeper.clear();
            for &p in active {
                let parts = &self.paths[p];
                if key.is(parts[level].as_bytes()) {
                    if parts.len() == level + 1 {
                        remove = true;
                    } else {
                        deeper.push(p);
                    }
                }
            }
            if !remove && !deeper.is_empty() && s.peek() == Some(b'{') {
                let next = std::mem::take(&mut deeper);
                self.walk(s, json, level + 1, &next, out)?;
                deeper = next;
            } else {
                s.skip_value()?;
            }
            members.push((key_start, s.pos(), remove));
            Ok(())
        })
        .or_else(|e| if e.msg == DONE && level == 0 { Ok(()) } else { Err(e) })?;
        // Each run of removed members goes with the comma after it when a kept member
        // follows, else with the comma before it (after the previous kept member); a run
        // that is the whole object leaves `{}` (with whatever whitespace was there).
        let mut i = 0;
        while i < members.len() {
            if !members[i].2 {
                i += 1;
                continue;
            }
            let first = i;
            while i < members.len() && members[i].2 {
                i += 1;
            }
            let (start, end) = if i < members.len() {
                (members[first].0, members[i].0)
            } else if first > 0 {
                (members[first - 1].1, members[i - 1].1)
            } else {
                (members[first].0, members[i - 1].1)
            };
            out.push((crate::object::position(start), crate::object::position(end)));
        }
        Ok(())
    }

    /// `obj` with the paths dropped, or None when it has none of them (keep the same
    /// object: nothing is copied). Metadata positions and field captures are rebased.
    pub fn apply(&self, obj: &Object) -> Option<Object> {
        let r = self.removals(&obj.json);
        if r.is_empty() {
            return None;
        }
        let mut meta = obj.meta.clone();
        r.rebase_meta(&mut meta);
        let fields = obj.fields.as_ref().map(|c| {
            let mut spans = c.spans.to_vec();
            r.rebase_spans(&mut spans);
            Box::new(Captured { paths: c.paths.clone(), spans: spans.into() })
        });
        Some(Object { json: r.splice(&obj.json), meta, key: obj.key.clone(), fields })
    }
}

fn top_once(paths: &[Box<[Box<str>]>]) -> u8 {
    let mut bits = 0u8;
    for p in paths {
        match ONCE.iter().position(|n| *n == &*p[0]) {
            Some(i) if p.len() > 1 => bits |= 1 << i,
            _ => return NOT_ONCE,
        }
    }
    bits
}

/// Byte ranges to cut from one object's JSON, sorted and disjoint.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removals {
    ranges: Vec<(u32, u32)>,
}

impl Removals {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// Bytes cut in total.
    pub fn removed(&self) -> usize {
        self.ranges.iter().map(|(a, b)| (b - a) as usize).sum()
    }

    /// `json` without the ranges, in one exact-size buffer.
    pub fn splice(&self, json: &[u8]) -> JsonBuf {
        let mut pieces = Vec::with_capacity(self.ranges.len() + 1);
        let mut at = 0usize;
        for &(a, b) in &self.ranges {
            pieces.push(&json[at..a as usize]);
            at = b as usize;
        }
        pieces.push(&json[at..]);
        JsonBuf::concat(&pieces)
    }

    /// Where the byte at `p` is after the cut; None if it was cut.
    pub fn map(&self, p: u32) -> Option<u32> {
        let i = self.ranges.partition_point(|r| r.0 <= p);
        if i > 0 && p < self.ranges[i - 1].1 {
            return None;
        }
        Some(p - self.removed_before(i))
    }

    /// Where an exclusive end position `p` is after the cut (cuts before it shift it).
    pub fn map_end(&self, p: u32) -> u32 {
        let i = self.ranges.partition_point(|r| r.1 <= p);
        p - self.removed_before(i)
    }

    fn removed_before(&self, i: usize) -> u32 {
        self.ranges[..i].iter().map(|(a, b)| b - a).sum()
    }

    /// Positions of `meta` onto the spliced bytes; a field that was cut reads as absent.
    pub fn rebase_meta(&self, meta: &mut Meta) {
        meta.rebase(|p| self.map(p));
    }

    /// Field-capture spans onto the spliced bytes; a captured value that was cut is absent.
    pub fn rebase_spans(&self, spans: &mut [[u32; 2]]) {
        for s in spans.iter_mut().filter(|s| **s != UNKNOWN && **s != ABSENT) {
            *s = match self.map(s[0]) {
                Some(a) => [a, self.map_end(s[1])],
                None => ABSENT,
            };
        }
    }
}

#[cfg(test)]
mod tests;
