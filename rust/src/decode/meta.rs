//! Metadata extraction on top of the scanner, in one pass over an object. It must agree
//! with the reference `object::extract_meta` (serde_json): the same fields, the same type
//! rules (strings must be strings, `labels`/`annotations`/`ownerReferences`/`metadata`/
//! `controller` may be null), duplicate struct fields rejected, map keys last-wins and
//! sorted. `tests/decode_meta.rs` checks the agreement on generated objects.

use super::capture::{FieldPaths, Span};
use super::scan::{ScanResult, Scanner};
use crate::error::Status;
use crate::object::{position, JsonStr, Meta};
use std::borrow::Cow;

/// Top-level fields of a Status, kept as spans because we only know the event is an ERROR
/// once `type` has been read (and an ordinary object may carry fields with these names).
#[derive(Default, Clone, Copy)]
pub struct StatusSpans {
    pub code: Option<(usize, usize)>,
    pub reason: Option<(usize, usize)>,
    pub message: Option<(usize, usize)>,
}

fn dup(s: &Scanner<'_>, seen: &mut u32, bit: u32) -> ScanResult<()> {
    if *seen & bit != 0 {
        return s.err("duplicate field");
    }
    *seen |= bit;
    Ok(())
}

/// Extract `Meta` from the object starting at the scanner's position, validating it.
pub fn object_meta(s: &mut Scanner<'_>, meta: &mut Meta) -> ScanResult<()> {
    object_meta_and_status(s, meta, &mut StatusSpans::default(), None)
}

/// Like `object_meta`, but also remembers where a Status's code/reason/message are, and
/// captures the values of `cap`'s field paths (see `capture`).
pub fn object_meta_and_status(
    s: &mut Scanner<'_>,
    meta: &mut Meta,
    st: &mut StatusSpans,
    mut cap: Option<(&FieldPaths, &mut [Span])>,
) -> ScanResult<()> {
    let mut seen = 0u32;
    s.object(|s, key| {
        if key.is(b"metadata") {
            dup(s, &mut seen, 1)?;
            if !s.null()? {
                metadata(s, meta)?;
            }
        } else if key.is(b"apiVersion") {
            dup(s, &mut seen, 2)?;
            let v = s.str_value()?;
            meta.api_version = s.json_str(v);
        } else if key.is(b"kind") {
            dup(s, &mut seen, 4)?;
            let v = s.str_value()?;
            meta.kind = s.json_str(v);
        } else if key.is(b"code") {
            st.code = Some(s.skip_value()?);
        } else if key.is(b"reason") {
            st.reason = Some(s.skip_value()?);
        } else if key.is(b"message") {
            st.message = Some(s.skip_value()?);
        } else {
            if let Some((fp, slots)) = cap.as_mut() {
                let m = fp.top_level(key);
                if m != 0 {
                    return fp.capture(s, m, 1, slots);
                }
            }
            s.skip_value()?;
        }
        Ok(())
    })
}

fn metadata(s: &mut Scanner<'_>, meta: &mut Meta) -> ScanResult<()> {
    let mut seen = 0u32;
    s.object(|s, key| {
        // Keys are tested roughly in the order the apiserver writes them.
        let k = key.raw;
        if key.escaped {
            return metadata_field(s, meta, &mut seen, crate::decode::scan::unescape(k).as_bytes());
        }
        metadata_field(s, meta, &mut seen, k)
    })
}

fn metadata_field(s: &mut Scanner<'_>, meta: &mut Meta, seen: &mut u32, k: &[u8]) -> ScanResult<()> {
    match k {
        b"name" => {
            dup(s, seen, 1)?;
            let v = s.str_value()?;
            meta.name = s.json_str(v);
        }
        b"namespace" => {
            dup(s, seen, 2)?;
            let v = s.str_value()?;
            meta.namespace = s.json_str(v);
        }
        b"uid" => {
            dup(s, seen, 4)?;
            let v = s.str_value()?;
            meta.uid = s.json_str(v);
        }
        b"resourceVersion" => {
            dup(s, seen, 8)?;
            let v = s.str_value()?;
            meta.resource_version = s.json_str(v);
        }
        b"labels" => {
            dup(s, seen, 16)?;
            let at = s.pos();
            meta.labels_at = 0;
            if !s.null()? {
                validate_string_map(s)?;
                meta.labels_at = position(at);
            }
        }
        b"annotations" => {
            dup(s, seen, 32)?;
            validate_string_map(s)?;
        }
        b"ownerReferences" => {
            dup(s, seen, 64)?;
            let at = s.pos();
            meta.owners_at = 0;
            if !s.null()? {
                s.array(|s| owner_ref(s).map(drop))?;
                meta.owners_at = position(at);
            }
        }
        _ => {
            s.skip_value()?;
        }
    }
    Ok(())
}

/// `null` or an object of strings, as a `BTreeMap<String, String>` would see it: sorted by
/// key, a repeated key keeps its last value.
fn string_map(s: &mut Scanner<'_>) -> ScanResult<Vec<(JsonStr, JsonStr)>> {
    let mut out: Vec<(Cow<'_, str>, JsonStr, JsonStr)> = Vec::new();
    if s.null()? {
        return Ok(Vec::new());
    }
    let mut sorted = true;
    s.object(|s, key| {
        let v = s.str_value()?;
        let v = s.json_str(v);
        let k = (key.to_cow(), s.json_str(key));
        if let Some(last) = out.last() {
            sorted &= last.0 < k.0;
        }
        out.push((k.0, k.1, v));
        Ok(())
    })?;
    // The apiserver writes maps sorted (Go's encoding/json), so this is rarely needed.
    if !sorted {
        // Stable sort keeps equal keys in input order; keep the last of each run.
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let mut dedup: Vec<(Cow<'_, str>, JsonStr, JsonStr)> = Vec::with_capacity(out.len());
        for kv in out {
            match dedup.last_mut() {
                Some(last) if last.0 == kv.0 => *last = kv,
                _ => dedup.push(kv),
            }
        }
        out = dedup;
    }
    Ok(out.into_iter().map(|(_, k, v)| (k, v)).collect())
}

/// The labels of an object whose `Meta::labels_at` is `at` (0: none), sorted by key with
/// unique keys. The object was validated when decoded, so this cannot fail.
pub fn labels_at(json: &[u8], at: u32) -> Vec<(JsonStr, JsonStr)> {
    if at == 0 {
        return Vec::new();
    }
    let r = string_map(&mut Scanner::at(json, at as usize));
    debug_assert!(r.is_ok(), "labels re-read at a validated position");
    r.unwrap_or_default()
}

/// The value of label `key` at `Meta::labels_at` `at` (the last, if the key repeats), without
/// building the sorted list.
pub fn label_at(json: &[u8], at: u32, key: &str) -> Option<JsonStr> {
    if at == 0 {
        return None;
    }
    let mut found = None;
    let mut s = Scanner::at(json, at as usize);
    let r = s.object(|s, k| {
        let v = s.str_value()?;
        if k.is(key.as_bytes()) {
            found = Some(s.json_str(v));
        }
        Ok(())
    });
    debug_assert!(r.is_ok(), "labels re-read at a validated position");
    found
}

/// The owner references at `Meta::owners_at` (0: none): `[apiVersion, kind, name, uid]`
/// and `controller` each.
pub fn owner_refs_at(json: &[u8], at: u32) -> Vec<([JsonStr; 4], bool)> {
    let mut out = Vec::new();
    if at != 0 {
        let r = Scanner::at(json, at as usize).array(|s| {
            out.push(owner_ref(s)?);
            Ok(())
        });
        debug_assert!(r.is_ok(), "owner references re-read at a validated position");
    }
    out
}

/// `null` or an object of strings, checked and skipped (annotations: see `Meta`).
fn validate_string_map(s: &mut Scanner<'_>) -> ScanResult<()> {
    if s.null()? {
        return Ok(());
    }
    s.object(|s, _| s.str_value().map(drop))
}

/// `[apiVersion, kind, name, uid]` (an absent one is an empty span) and `controller`.
fn owner_ref(s: &mut Scanner<'_>) -> ScanResult<([JsonStr; 4], bool)> {
    let mut o = ([JsonStr::default(); 4], false);
    let mut seen = 0u32;
    s.object(|s, key| {
        let slot = if key.is(b"apiVersion") {
            0
        } else if key.is(b"kind") {
            1
        } else if key.is(b"name") {
            2
        } else if key.is(b"uid") {
            3
        } else if key.is(b"controller") {
            dup(s, &mut seen, 16)?;
            o.1 = s.opt_bool()?.unwrap_or(false);
            return Ok(());
        } else {
            return s.skip_value().map(drop);
        };
        dup(s, &mut seen, 1 << slot)?;
        let v = s.str_value()?;
        o.0[slot] = s.json_str(v);
        Ok(())
    })?;
    Ok(o)
}

/// Build a Status from an object and the spans `object_meta_and_status` found in it.
/// Lenient on purpose: a Status that is odd in some way still becomes an ApiError.
pub fn status_from_spans(obj: &[u8], spans: StatusSpans, default_code: u16) -> Status {
    let text = |span: Option<(usize, usize)>| -> String {
        let Some((a, b)) = span else { return String::new() };
        let mut s = Scanner::new(&obj[a..b]);
        match s.str_value() {
            Ok(r) => r.to_boxed().into(),
            Err(_) => String::new(),
        }
    };
    let code = spans
        .code
        .and_then(|(a, b)| std::str::from_utf8(&obj[a..b]).ok()?.parse::<u16>().ok())
        .filter(|c| *c != 0)
        .unwrap_or(default_code);
    Status { code, reason: text(spans.reason), message: text(spans.message), raw: obj.to_vec() }
}

/// Parse a whole buffer as a Status object (non-2xx response bodies).
pub fn parse_status(body: &[u8], default_code: u16) -> Option<Status> {
    let mut s = Scanner::new(body);
    let mut meta = Meta::default();
    let mut spans = StatusSpans::default();
    s.ws();
    let start = s.pos();
    object_meta_and_status(&mut s, &mut meta, &mut spans, None).ok()?;
    let end = s.pos();
    s.end().ok()?;
    let obj = &body[start..end];
    // Spans are relative to `body`; rebase them onto `obj`.
    let rebase = |o: Option<(usize, usize)>| o.map(|(a, b)| (a - start, b - start));
    let spans = StatusSpans { code: rebase(spans.code), reason: rebase(spans.reason), message: rebase(spans.message) };
    Some(status_from_spans(obj, spans, default_code))
}

