//! Field paths captured during the decode pass. A field index (`spec.nodeName`) used to
//! walk each object's JSON again in the processor, which profiling showed to be the
//! processor's largest cost (more than decoding the event). The decoder scans every byte
//! anyway, so it records where each requested path's value is as it goes; the index then
//! reads a few bytes at that span.
//!
//! Semantics are those of `field::field_values` (last occurrence of a repeated key wins; a
//! path through anything but objects has no value). Paths whose first part the metadata
//! extraction consumes itself (`metadata`, `apiVersion`, `kind`, and the Status fields)
//! are not captured; they fall back to the walk.

use super::scan::{ScanResult, Scanner};
use std::sync::Arc;

/// One path's capture: `UNKNOWN` (not captured: walk the JSON), `ABSENT`, or the value's
/// `[start, end)` in the object's JSON.
pub type Span = [u32; 2];
pub const UNKNOWN: Span = [u32::MAX, 0];
pub const ABSENT: Span = [0, 0];

/// At most this many paths are captured (a bit mask per level); more fall back to the walk.
const MAX_PATHS: usize = 64;

/// First parts that `meta::object_meta_and_status` reads itself.
const RESERVED: &[&str] = &["metadata", "apiVersion", "kind", "code", "reason", "message"];

/// The field paths the decoder should capture, shared by every object decoded with them.
#[derive(Default)]
pub struct FieldPaths {
    pub paths: Arc<[Box<str>]>,
    parts: Box<[Box<[Box<str>]>]>,
    /// Bit p: path p is captured.
    capturable: u64,
}

impl FieldPaths {
    pub fn new(paths: Vec<Box<str>>) -> FieldPaths {
        let parts: Box<[Box<[Box<str>]>]> =
            paths.iter().map(|p| p.split('.').map(Box::from).collect()).collect();
        let mut capturable = 0u64;
        for (i, parts) in parts.iter().enumerate().take(MAX_PATHS) {
            if !RESERVED.contains(&&*parts[0]) {
                capturable |= 1 << i;
            }
        }
        FieldPaths { paths: paths.into(), parts, capturable }
    }

    pub fn is_empty(&self) -> bool {
        self.capturable == 0
    }

    /// Fresh capture slots for one object.
    pub fn slots(&self) -> Vec<Span> {
        (0..self.paths.len()).map(|i| if self.capturable & (1 << i) != 0 { ABSENT } else { UNKNOWN }).collect()
    }

    /// Paths (as a mask) whose first part is `key`.
    pub fn top_level(&self, key: super::scan::RawStr<'_>) -> u64 {
        let mut m = 0;
        let mut rest = self.capturable;
        while rest != 0 {
            let p = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            if key.is(self.parts[p][0].as_bytes()) {
                m |= 1 << p;
            }
        }
        m
    }

    /// The scanner is at the value of the member named by part `level - 1` of every path
    /// in `mask`. Consume it, recording spans (relative to the scanned buffer).
    pub fn capture(&self, s: &mut Scanner<'_>, mask: u64, level: usize, slots: &mut [Span]) -> ScanResult<()> {
        let (mut done, mut deeper) = (0u64, 0u64);
        let mut rest = mask;
        while rest != 0 {
            let p = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            // A later occurrence of the key replaces whatever an earlier one gave.
            slots[p] = ABSENT;
            if self.parts[p].len() == level {
                done |= 1 << p;
            } else {
                deeper |= 1 << p;
            }
        }
        let start = s.pos();
        if deeper != 0 && s.peek() == Some(b'{') {
            s.object(|s, key| {
                let mut m = 0u64;
                let mut rest = deeper;
                while rest != 0 {
                    let p = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    if key.is(self.parts[p][level].as_bytes()) {
                        m |= 1 << p;
                    }
                }
                if m == 0 {
                    s.skip_value().map(drop)
                } else {
                    self.capture(s, m, level + 1, slots)
                }
            })?;
        } else {
            s.skip_value()?;
        }
        let span = [start as u32, s.pos() as u32];
        let mut rest = done;
        while rest != 0 {
            let p = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            slots[p] = span;
        }
        Ok(())
    }
}

/// The captures of one object: the paths (shared) and where each one's value is.
#[derive(Debug, PartialEq, Eq)]
pub struct Captured {
    pub paths: Arc<[Box<str>]>,
    pub spans: Box<[Span]>,
}

impl Captured {
    /// `Some(span)` if `path` was captured (`ABSENT` meaning no value), None to walk.
    pub fn get(&self, path: &str) -> Option<Span> {
        let i = self.paths.iter().position(|p| &**p == path)?;
        Some(self.spans[i]).filter(|s| *s != UNKNOWN)
    }
}

#[cfg(test)]
mod tests {
    use crate::decode::{field_values, Decoder, DecoderOptions};

    const DOCS: &[&str] = &[
        r#"{"kind":"Pod","metadata":{"name":"a"},"spec":{"nodeName":"n1","ports":[1,2.5,"s",true,null,{"a":1}],"e":{},"f":[],"n":-1e3,"nested":{"a":{"b":{"c":"deep"}}}},"spec2":null,"status":{"phase":"Running"}}"#,
        r#"{"spec":{"nodeName":"x"},"spec":{"nodeName":"y"},"metadata":{"name":"t"}}"#,
        r#"{"spec":{"nodeName":"x"},"spec":{"other":"y"},"metadata":{"name":"t"}}"#,
        r#"{"spec":{"nodeName":"x","nodeName":"z"},"spec":7,"metadata":{"name":"t"}}"#,
        r#"{"sp\u0065c":{"node\u004eame":"esc"},"metadata":{"name":"t"}}"#,
        r#"{"spec":"str","code":5,"message":"m","metadata":{"name":"t"}}"#,
    ];
    // Every doc has a name: the decoder refuses nameless watch objects.
    const PATHS: &[&str] = &[
        "spec.nodeName", "spec.ports", "spec.e", "spec.f", "spec.n", "spec.nested.a.b.c", "spec.nested.a",
        "spec", "spec2", "spec2.x", "metadata.name", "kind", "code", "missing", "spec.nodeName.x", "status.phase",
    ];

    #[test]
    fn captured_values_agree_with_the_walk() {
        let mut d = Decoder::new(DecoderOptions { http: false, ..Default::default() });
        d.set_field_paths(PATHS.iter().map(|p| (*p).into()).collect());
        for doc in DOCS {
            let mut out = Vec::new();
            d.feed(format!("{{\"type\":\"ADDED\",\"object\":{doc}}}\n").as_bytes(), &mut out).unwrap();
            let o = out[0].object.clone().unwrap();
            assert!(o.fields.is_some());
            for path in PATHS {
                assert_eq!(o.field_values(path), field_values(doc.as_bytes(), path), "{doc} {path}");
            }
        }
    }
}
