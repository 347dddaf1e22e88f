//! Lookups in JSON that is already known to be valid: the bytes of a cached `Object`, which
//! every constructor validated (the watch decoder's scanner, or serde_json for
//! `Object::from_json`). Re-validating on each index computation was the processor's
//! largest cost (a field index re-scanned the whole ~5 KB pod per update, ~1.7 µs); here
//! strings are skipped with `memchr2` and containers by counting brackets.
//!
//! Semantics are exactly those of the validating `field::field_values` on valid input
//! (`tests` below compare the two): a repeated key's last occurrence wins, a path through
//! anything but objects gives nothing.
//!
//! On invalid input these functions give unspecified values, but never panic or read out
//! of bounds.

use super::scan::Scanner;
use super::field::push_scalar;

/// Index after the string whose opening quote is at `i`. Eight bytes at a time: strings
/// are most of a pod's bytes, and most are short, so a `memchr` call per string costs more
/// than it saves.
fn string_end(b: &[u8], i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has = |w: u64, c: u8| {
        let x = w ^ (ONES * c as u64);
        x.wrapping_sub(ONES) & !x & HIGH
    };
    let mut j = i + 1;
    loop {
        while let Some(chunk) = b.get(j..j + 8) {
            let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            let m = has(w, b'"') | has(w, b'\\');
            if m != 0 {
                // The lowest flagged byte is a real match (borrows only run upwards).
                j += (m.trailing_zeros() / 8) as usize;
                break;
            }
            j += 8;
        }
        match b.get(j) {
            None => return b.len(),
            Some(b'"') => return j + 1,
            Some(b'\\') => j += 2,
            Some(_) => j += 1,
        }
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// Index after the value starting at `i` (no leading whitespace).
fn skip(b: &[u8], mut i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            b.len()
        }
        Some(_) => {
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                i += 1;
            }
            i
        }
        None => i,
    }
}

/// The span of the member `key` of the object `v` (the last one if repeated), or None if
/// `v` is not an object or has no such member.
fn member<'a>(v: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    if v.first() != Some(&b'{') {
        return None;
    }
    let mut found = None;
    let mut i = ws(v, 1);
    while v.get(i) == Some(&b'"') {
        let k_end = string_end(v, i);
        let raw = v.get(i + 1..k_end.saturating_sub(1))?;
        let is_key = if raw.contains(&b'\\') {
            // Rare (an escaped key); the scanner checks the escapes before unescaping.
            Scanner::new(&v[i..k_end]).str_value().is_ok_and(|r| r.is(key))
        } else {
            raw == key
        };
        i = ws(v, k_end);
        if v.get(i) != Some(&b':') {
            return found;
        }
        let start = ws(v, i + 1);
        let end = skip(v, start);
        if is_key {
            found = Some(v.get(start..end)?);
        }
        i = ws(v, end);
        if v.get(i) != Some(&b',') {
            break;
        }
        i = ws(v, i + 1);
    }
    found
}

/// The document from its first value on (`member` stops at the object's end).
fn root(json: &[u8]) -> &[u8] {
    &json[ws(json, 0)..]
}

/// `field::field_values` for valid JSON.
pub fn field_values_trusted(json: &[u8], path: &str) -> Vec<String> {
    let mut v = root(json);
    for part in path.split('.') {
        match member(v, part.as_bytes()) {
            Some(m) => v = m,
            None => return Vec::new(),
        }
    }
    let mut out = Vec::new();
    if v.first() == Some(&b'[') {
        let mut s = Scanner::new(v);
        let _ = s.array(|s| {
            let (a, b) = s.skip_value()?;
            push_scalar(&v[a..b], &mut out);
            Ok(())
        });
    } else {
        push_scalar(v, &mut out);
    }
    out
}

/// The value of annotation `key` (`metadata.annotations[key]`) if it is a string.
pub fn annotation_trusted(json: &[u8], key: &str) -> Option<String> {
    let ann = member(member(root(json), b"metadata")?, b"annotations")?;
    let v = member(ann, key.as_bytes())?;
    let mut out = Vec::new();
    if v.first() == Some(&b'"') {
        push_scalar(v, &mut out);
    }
    out.pop()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::field_values;

    const DOCS: &[&str] = &[
        r#"{"kind":"Pod","metadata":{"name":"a","annotations":{"x.io/a":"1","k":"v\"q","k":"last"}},
            "spec":{"nodeName":"n1","ports":[1,2.5,"s",true,null,{"a":1},[3]],"e":{},"f":[],
            "s":"a\\\"b}]","n":-1e3,"nested":{"a":{"b":{"c":"deep"}}}},"spec2":null}"#,
        r#" { "spec" : { "nodeName" : "x" } , "spec" : { "nodeName" : "y" } } "#,
        r#"{"sp\u0065c":{"nodeName":"esc"}}"#,
        r#"["not","an","object"]"#,
        r#""str""#,
        r#"{}"#,
    ];
    const PATHS: &[&str] = &[
        "spec.nodeName", "spec.ports", "spec.e", "spec.f", "spec.s", "spec.n", "spec.nested.a.b.c",
        "spec.nested.a", "spec2", "spec2.x", "metadata.name", "missing", "spec.nodeName.x", "",
    ];

    #[test]
    fn agrees_with_validating_walk() {
        for doc in DOCS {
            for path in PATHS {
                assert_eq!(
                    field_values_trusted(doc.as_bytes(), path),
                    field_values(doc.as_bytes(), path),
                    "{doc} {path}"
                );
            }
        }
    }

    #[test]
    fn annotations() {
        let d = DOCS[0].as_bytes();
        assert_eq!(annotation_trusted(d, "x.io/a").as_deref(), Some("1"));
        assert_eq!(annotation_trusted(d, "k").as_deref(), Some("last"));
        assert_eq!(annotation_trusted(d, "nope"), None);
        assert_eq!(annotation_trusted(br#"{"metadata":{"annotations":null}}"#, "k"), None);
        assert_eq!(annotation_trusted(br#"{"metadata":null}"#, "k"), None);
    }

    #[test]
    fn invalid_input_does_not_panic() {
        for doc in DOCS {
            for cut in 0..doc.len() {
                for path in PATHS {
                    let _ = field_values_trusted(&doc.as_bytes()[..cut], path);
                }
                let _ = annotation_trusted(&doc.as_bytes()[..cut], "k");
            }
        }
    }
}
