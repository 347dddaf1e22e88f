//! `Object::field_values` on the scanner: follow a dotted path through the JSON bytes
//! without building a `serde_json::Value` of the whole object (the Indexer calls it for
//! every object on every update of a field index).
//!
//! Semantics are those of the serde_json version it replaced (kept in
//! `rust/tests/decode_meta.rs` as the reference): invalid JSON gives no values; each path
//! part looks up an object key (a repeated key: the last one wins) and anything else ends
//! the walk; at the end a string gives its text, a bool or number its JSON text (numbers
//! formatted as serde_json formats them), null nothing, an array one value per scalar
//! element, an object nothing.

use super::scan::Scanner;

pub fn field_values(json: &[u8], path: &str) -> Vec<String> {
    walk(json, path).unwrap_or_default()
}

fn walk(json: &[u8], path: &str) -> Option<Vec<String>> {
    // The whole document must be valid, as with serde_json, even the parts off the path.
    // Walking the root object skips (so validates) every member, and `end` checks what
    // follows it; deeper levels re-walk only the already validated value they descend into.
    let mut span = json;
    for (level, part) in path.split('.').enumerate() {
        let mut s = Scanner::new(span);
        if level == 0 {
            s.ws();
            if s.peek() != Some(b'{') {
                // Not an object: no values, but only if it is valid JSON at all.
                s.skip_value().ok()?;
                s.end().ok()?;
                return Some(Vec::new());
            }
        } else if span.first() != Some(&b'{') {
            return Some(Vec::new());
        }
        let mut found: Option<(usize, usize)> = None;
        s.object(|s, key| {
            let v = s.skip_value()?;
            if key.is(part.as_bytes()) {
                found = Some(v);
            }
            Ok(())
        })
        .ok()?;
        if level == 0 {
            s.end().ok()?;
        }
        let (a, b) = found?;
        span = &span[a..b];
    }
    Some(values_at(span))
}

/// The values of the (validated) JSON value `span`, as `field_values` gives them.
pub(super) fn values_at(span: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    match span.first().copied().unwrap_or(b' ') {
        b'[' => {
            let mut s = Scanner::new(span);
            // `span` is validated JSON, so this cannot fail part-way.
            let _ = s.array(|s| {
                let (a, b) = s.skip_value()?;
                push_scalar(&span[a..b], &mut out);
                Ok(())
            });
        }
        _ => push_scalar(span, &mut out),
    }
    out
}

/// One validated scalar (or container, which gives nothing).
pub(super) fn push_scalar(v: &[u8], out: &mut Vec<String>) {
    match v.first() {
        Some(b'"') => {
            if let Ok(r) = Scanner::new(v).str_value() {
                out.push(r.to_boxed().into());
            }
        }
        Some(b't') => out.push("true".into()),
        Some(b'f') => out.push("false".into()),
        Some(b'-' | b'0'..=b'9') => {
            // Through serde_json so that numbers read exactly as before (`1e3` -> "1000.0").
            if let Ok(n) = serde_json::from_slice::<serde_json::Number>(v) {
                out.push(n.to_string());
            }
        }
        _ => {}
    }
}
