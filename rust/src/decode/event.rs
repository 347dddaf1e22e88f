//! One watch line -> one `WatchEvent` (or the Status of an ERROR event).

use super::capture::{Captured, FieldPaths, Span, ABSENT, UNKNOWN};
use super::meta::{object_meta, object_meta_and_status, status_from_spans, StatusSpans};
use super::scan::{ScanError, ScanResult, Scanner};
use crate::error::Status;
use crate::object::{Meta, Object};
use crate::transform::Transform;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
    Bookmark,
}

impl EventKind {
    /// The wire name (`ADDED`, ...), which Python exposes as `WatchEvent.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
            EventKind::Bookmark => "BOOKMARK",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub kind: EventKind,
    /// Some for Added/Modified/Deleted; None for Bookmark (only its RV matters).
    pub object: Option<crate::object::ObjectRef>,
    /// The object's resourceVersion (for a bookmark: the bookmark's RV).
    pub resource_version: Box<str>,
    /// A BOOKMARK annotated `k8s.io/initial-events-end: "true"` (end of a WatchList's
    /// initial events).
    pub initial_events_end: bool,
}

/// What a non-blank line decoded to.
pub enum Line {
    Event(WatchEvent),
    Error(Status),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    Event(EventKind),
    Error,
}

fn parse_type(s: &Scanner<'_>, raw: super::scan::RawStr<'_>) -> ScanResult<Type> {
    let t = if raw.escaped { super::scan::unescape(raw.raw).into_bytes() } else { raw.raw.to_vec() };
    Ok(match &t[..] {
        b"ADDED" => Type::Event(EventKind::Added),
        b"MODIFIED" => Type::Event(EventKind::Modified),
        b"DELETED" => Type::Event(EventKind::Deleted),
        b"BOOKMARK" => Type::Event(EventKind::Bookmark),
        b"ERROR" => Type::Error,
        _ => return s.err("unknown watch event type"),
    })
}

/// The decoded `object` of an event, before we know (or once we know) its type. Lives on
/// the stack for one line only, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Decoded {
    None,
    /// Parsed with metadata extraction: (span, meta, status spans relative to the line).
    Parsed((usize, usize), Meta, StatusSpans),
    /// `object` came before `type`: validated and skipped, decoded once the type is known.
    Deferred((usize, usize)),
}

const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// Decode one line (already trimmed, non-empty). Errors carry the position in the line.
pub fn decode_line(line: &[u8], fp: &FieldPaths, tf: Option<&Transform>) -> ScanResult<Line> {
    let mut s = Scanner::line(line);
    let ev = decode_event(&mut s, line, fp, tf)?;
    s.end()?;
    Ok(ev)
}

/// Decode the line at the start of `buf` without knowing where it ends: parse the event,
/// then expect optional ' ', '\t', '\r' and a '\n'. Returns the index of that '\n' and the
/// result, or None when the caller must split the line the ordinary way (any error, or no
/// '\n' right after the value) so that errors stay exactly those of line splitting.
/// Because a watch-line scanner never treats '\n' as whitespace, success here means the
/// same bytes a line split would have produced, decoded the same way.
pub fn decode_prefix(buf: &[u8], fp: &FieldPaths, tf: Option<&Transform>) -> Option<(usize, Line)> {
    let mut s = Scanner::line(buf);
    let ev = decode_event(&mut s, buf, fp, tf).ok()?;
    let mut i = s.pos();
    loop {
        match buf.get(i)? {
            b'\n' => return Some((i, ev)),
            b' ' | b'\t' | b'\r' => i += 1,
            _ => return None,
        }
    }
}

fn decode_event(s: &mut Scanner<'_>, line: &[u8], fp: &FieldPaths, tf: Option<&Transform>) -> ScanResult<Line> {
    let mut ty: Option<Type> = None;
    let mut slots: Option<Vec<Span>> = None;
    let mut obj = Decoded::None;
    s.object(|s, key| {
        if key.is(b"type") {
            if ty.is_some() {
                return s.err("duplicate field `type`");
            }
            let r = s.str_value()?;
            ty = Some(parse_type(s, r)?);
        } else if key.is(b"object") {
            if !matches!(obj, Decoded::None) {
                return s.err("duplicate field `object`");
            }
            let start = s.pos();
            if ty.is_some() {
                let (mut meta, mut spans) = (Meta::default(), StatusSpans::default());
                let mut sl = if fp.is_empty() || ty == Some(Type::Error) { None } else { Some(fp.slots()) };
                object_meta_and_status(s, &mut meta, &mut spans, sl.as_deref_mut().map(|sl| (fp, sl)))?;
                // Found relative to the line; the object's JSON starts at `start`.
                meta.shift_down(start as u32);
                slots = sl;
                obj = Decoded::Parsed((start, s.pos()), meta, spans);
            } else {
                let span = s.skip_value()?;
                obj = Decoded::Deferred(span);
            }
        } else {
            s.skip_value()?;
        }
        Ok(())
    })?;
    let Some(ty) = ty else {
        return Err(ScanError { pos: 0, msg: "watch event has no `type`" });
    };
    let (span, meta, spans) = match obj {
        Decoded::None => return Err(ScanError { pos: 0, msg: "watch event has no `object`" }),
        Decoded::Parsed(span, meta, spans) => (span, meta, spans),
        Decoded::Deferred(span) => {
            let mut sub = Scanner::line(&line[span.0..span.1]);
            let (mut meta, mut spans) = (Meta::default(), StatusSpans::default());
            let r = if ty == Type::Error {
                object_meta_and_status(&mut sub, &mut meta, &mut spans, None)
            } else {
                object_meta(&mut sub, &mut meta)
            };
            r.map_err(|e| ScanError { pos: e.pos + span.0, msg: e.msg })?;
            let shift = |o: Option<(usize, usize)>| o.map(|(a, b)| (a + span.0, b + span.0));
            (span, meta, StatusSpans { code: shift(spans.code), reason: shift(spans.reason), message: shift(spans.message) })
        }
    };
    let json = &line[span.0..span.1];
    match ty {
        Type::Error => {
            let base = |o: Option<(usize, usize)>| o.map(|(a, b)| (a - span.0, b - span.0));
            let spans = StatusSpans { code: base(spans.code), reason: base(spans.reason), message: base(spans.message) };
            Ok(Line::Error(status_from_spans(json, spans, 500)))
        }
        Type::Event(EventKind::Bookmark) => {
            let initial_events_end =
                crate::decode::annotation_trusted(json, INITIAL_EVENTS_END).as_deref() == Some("true");
            Ok(Line::Event(WatchEvent {
                kind: EventKind::Bookmark,
                object: None,
                resource_version: meta.resource_version.resolve(json).into(),
                initial_events_end,
            }))
        }
        Type::Event(kind) => {
            // Every stored object has a name; without one its cache key would collide with
            // every other nameless object in the namespace, silently replacing them.
            if meta.name.is_empty() {
                return Err(ScanError { pos: span.0, msg: "watch event object has no metadata.name" });
            }
            let resource_version: Box<str> = meta.resource_version.resolve(json).into();
            // Captured relative to the line; the object's JSON starts at span.0.
            let object = build_object(json, meta, slots, span.0 as u32, fp, tf);
            let object = Arc::new(object);
            Ok(Line::Event(WatchEvent { kind, object: Some(object), resource_version, initial_events_end: false }))
        }
    }
}

/// The cached object for `json`, whose metadata `meta` (already relative to `json`) and
/// field captures `slots` (relative to the buffer `json` starts at offset `base` of) were
/// taken by one scan. A transform cuts its fields here, before the one copy of the bytes
/// into the object; positions move with the cut.
pub(crate) fn build_object(
    json: &[u8],
    mut meta: Meta,
    mut slots: Option<Vec<Span>>,
    base: u32,
    fp: &FieldPaths,
    tf: Option<&Transform>,
) -> Object {
    if let Some(sl) = &mut slots {
        for s in sl.iter_mut().filter(|s| **s != UNKNOWN && **s != ABSENT) {
            *s = [s[0] - base, s[1] - base];
        }
    }
    let buf = match tf.map(|t| t.removals(json)).filter(|r| !r.is_empty()) {
        Some(r) => {
            r.rebase_meta(&mut meta);
            if let Some(sl) = &mut slots {
                r.rebase_spans(sl);
            }
            r.splice(json)
        }
        None => json.into(),
    };
    let mut object = Object::new(buf, meta);
    if let Some(sl) = slots {
        object.fields = Some(Box::new(Captured { paths: fp.paths.clone(), spans: sl.into() }));
    }
    object
}
