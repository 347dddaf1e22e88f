//! `WatchPump`: the informer's watch decoder split across two threads, so that reading the
//! socket and decoding the events overlap (on 2 cores a single reader thread doing recv,
//! framing, JSON scan, object copies and FIFO pushes was the serial bottleneck).
//!
//! The caller's thread (Python's reader, which owns the socket and its TLS) hands each read
//! over as an owned buffer. HTTP framing runs right there (`Decoder::frame`, cheap: chunk
//! headers only), so the status, the headers and the end of the body are known as soon as
//! the bytes are; the body's byte ranges go, with the buffer, to a worker thread that runs
//! a body-only `Decoder` and pushes the events into the DeltaFIFO. The worker knows nothing
//! of Python and never takes the GIL.
//!
//! What the caller sees is what one `Decoder` + `push` per read would give, only later:
//! - events reach the FIFO in stream order, each exactly once;
//! - `take` reports what the worker finished (counts, the last resourceVersion, whether the
//!   initial-events-end bookmark passed): progress is only ever reported for events
//!   already queued, so a watch resumed from it loses nothing;
//! - errors keep their order: the worker's first error (a malformed line, an ERROR event)
//!   comes after the events before it were pushed; a framing error found by the caller's
//!   thread is held back until the worker has decoded every byte before it. After an error
//!   every call returns it again, as a poisoned `Decoder` does;
//! - `close` (or drop) stops the worker and joins it, dropping work not yet done: nothing
//!   enters the FIFO after it returns.

use crate::decode::{Decoder, DecoderOptions, EventKind, WatchEvent};
use crate::error::Error;
use crate::fifo::{DeltaFifo, DeltaObject, DeltaType};
use crate::transform::Transform;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Reads queued for (or being decoded by) the worker before `buffer` waits. A few, so that
/// a worker descheduled for a moment does not stall the reader, and memory stays bounded
/// (this many read buffers, recycled).
pub const MAX_IN_FLIGHT: usize = 4;

/// Deltas a FIFO may hold before the worker waits to push more (for `feed(.., bounded)`).
/// Without it a slow consumer (Python handlers) let the whole burst pile up in the FIFO:
/// 65-88 MB of RSS kept after a 32k-event burst where feeding on the reading thread kept
/// 12 MB (that thread was held back by the GIL the handlers hold). ~5 reads of pods.
pub const MAX_QUEUED_DELTAS: usize = 1024;
/// How often a worker waiting for room in the FIFO checks whether it was stopped.
const ROOM_SLICE: std::time::Duration = std::time::Duration::from_millis(20);

/// What the worker pushed into the FIFO (summed over the reads it finished).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Progress {
    /// ADDED/MODIFIED/DELETED events queued.
    pub events: usize,
    /// Of those, ADDED, MODIFIED and DELETED (the informer's events-by-type counters).
    pub by_type: [usize; 3],
    pub bookmarks: usize,
    /// resourceVersion of the last event or bookmark.
    pub last_rv: Option<Box<str>>,
    /// The initial-events-end bookmark was among them.
    pub initial_events_end: bool,
}

impl Progress {
    fn merge(&mut self, later: Progress) {
        self.events += later.events;
        for (a, b) in self.by_type.iter_mut().zip(later.by_type) {
            *a += b;
        }
        self.bookmarks += later.bookmarks;
        if later.last_rv.is_some() {
            self.last_rv = later.last_rv;
        }
        self.initial_events_end |= later.initial_events_end;
    }

    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.bookmarks == 0
    }
}

enum Job {
    /// Body bytes `buf[r]` for each range, in order, for `fifo`.
    /// `capture`: whose field-index paths to capture (None: `fifo`'s).
    Body { buf: Vec<u8>, ranges: Vec<Range<usize>>, fifo: Arc<DeltaFifo>, bounded: bool, capture: Option<Arc<DeltaFifo>> },
    /// The body is complete: decode a final line without '\n'.
    End { fifo: Arc<DeltaFifo>, bounded: bool },
    /// End of input without a complete body (a read-until-close body): a partial line is
    /// a truncation.
    Finish,
}

#[derive(Default)]
struct State {
    /// Jobs not yet started, in stream order.
    jobs: VecDeque<Job>,
    /// Jobs queued or being decoded. Invariant: `>= jobs.len()`.
    pending: usize,
    /// Read buffers queued or being decoded. Invariant: `<= MAX_IN_FLIGHT`.
    buffers_out: usize,
    /// Buffers the worker is done with, for the next reads (no page faults on reuse); one
    /// once the worker is idle, so a quiet watch holds one read buffer, not a burst's worth.
    free: Vec<Vec<u8>>,
    /// What finished since the caller last took it.
    done: Progress,
    /// The worker's first error; its decoder is poisoned, so nothing after it is pushed.
    error: Option<Error>,
    /// Set by `close`: the worker exits without finishing queued jobs.
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled whenever `state` changes.
    cond: Condvar,
}

pub struct WatchPump {
    /// HTTP half only (`Decoder::frame`); its body goes to the worker's decoder.
    framer: Decoder,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    /// A framing error (or the Status of a non-2xx answer), reported once every byte
    /// before it was decoded.
    held: Option<Error>,
    /// The error already returned by `take`; returned again by every later call.
    poison: Option<Error>,
    /// `Job::End` or `Job::Finish` was queued.
    ended: bool,
    ranges: Vec<Range<usize>>,
}

impl WatchPump {
    /// `opts.http` must be true (the pump frames raw HTTP responses). `transform`: fields
    /// the worker cuts from every object it decodes (as `Decoder::set_transform`).
    pub fn new(opts: DecoderOptions, transform: Option<Arc<Transform>>) -> std::io::Result<WatchPump> {
        let mut body = Decoder::new(DecoderOptions { http: false, ..opts.clone() });
        body.set_transform(transform);
        let framer = Decoder::new(DecoderOptions { http: true, ..opts });
        let shared = Arc::new(Shared { state: Mutex::new(State::default()), cond: Condvar::new() });
        let s = shared.clone();
        let worker = std::thread::Builder::new().name("kfast-decode".into()).spawn(move || run(&s, body))?;
        Ok(WatchPump { framer, shared, worker: Some(worker), held: None, poison: None, ended: false, ranges: Vec::new() })
    }

    /// HTTP status once the head was parsed.
    pub fn status_code(&self) -> Option<u16> {
        self.framer.status_code()
    }

    pub fn headers(&self) -> Option<&[(String, String)]> {
        self.framer.headers()
    }

    /// The body's end was seen (the worker may still be decoding up to it).
    pub fn complete(&self) -> bool {
        self.framer.complete()
    }

    /// A buffer of at least `len` bytes to read into: one the worker is done with, or a new
    /// one. Waits while `MAX_IN_FLIGHT` reads are queued (the worker is behind; TCP then
    /// slows the sender down).
    pub fn buffer(&self, len: usize) -> Vec<u8> {
        let mut st = self.shared.state.lock();
        while st.buffers_out >= MAX_IN_FLIGHT && !st.stop {
            self.shared.cond.wait(&mut st);
        }
        let mut buf = st.free.pop().unwrap_or_default();
        drop(st);
        buf.resize(len, 0);
        buf
    }

    /// Frame `buf` (all of it is input) and queue its body bytes for decoding into `fifo`.
    /// Returns at once; see `take` for the outcome. `bounded`: the worker waits to push
    /// while `fifo` holds `MAX_QUEUED_DELTAS` (only when another thread drains it: a caller
    /// that drains it itself after `take(true)` would wait for itself).
    pub fn feed(&mut self, buf: Vec<u8>, fifo: &Arc<DeltaFifo>, bounded: bool) {
        self.feed_capturing(buf, fifo, bounded, None)
    }

    /// As `feed`, with the field-index paths captured for `capture`'s store instead of
    /// `fifo`'s (a streaming list's staging FIFO feeding the informer's indexes later, as
    /// `WatchDecoder.feed_fifo(capture_for=)`).
    pub fn feed_capturing(&mut self, buf: Vec<u8>, fifo: &Arc<DeltaFifo>, bounded: bool, capture: Option<&Arc<DeltaFifo>>) {
        if self.held.is_some() || self.poison.is_some() || buf.is_empty() {
            self.recycle(buf);
            return;
        }
        let mut ranges = std::mem::take(&mut self.ranges);
        ranges.clear();
        if let Err(e) = self.framer.frame(&buf, &mut ranges) {
            self.held = Some(e);
        }
        if ranges.is_empty() {
            self.ranges = ranges;
            self.recycle(buf);
        } else {
            self.push_job(Job::Body { buf, ranges, fifo: fifo.clone(), bounded, capture: capture.cloned() });
        }
        if self.framer.complete() && self.held.is_none() && !self.ended {
            self.ended = true;
            self.push_job(Job::End { fifo: fifo.clone(), bounded });
        }
    }

    /// What the worker finished since the last call, and the error to report now, if any.
    /// With `wait`, first waits until everything fed so far is decoded (or failed).
    pub fn take(&mut self, wait: bool) -> (Progress, Option<Error>) {
        let mut st = self.shared.state.lock();
        if wait {
            while st.pending > 0 && st.error.is_none() && !st.stop {
                self.shared.cond.wait(&mut st);
            }
        }
        let progress = std::mem::take(&mut st.done);
        let error = match (&st.error, &self.held) {
            (Some(e), _) => Some(e.clone()),
            // Everything before the framing error has been decoded: its turn now.
            (None, Some(e)) if st.pending == 0 => Some(e.clone()),
            _ => None,
        };
        drop(st);
        if let Some(e) = &error {
            self.poison.get_or_insert_with(|| e.clone());
        }
        (progress, error.or_else(|| self.poison.clone()))
    }

    /// End of input (EOF): waits for the worker, then checks the stream ended where it may
    /// (as `Decoder::finish`). Progress the caller did not take yet is returned with it.
    pub fn finish(&mut self) -> (Progress, Option<Error>) {
        if self.held.is_none() && self.poison.is_none() {
            if let Err(e) = self.framer.finish() {
                self.held = Some(e);
            } else if !self.ended {
                self.ended = true;
                self.push_job(Job::Finish);
            }
        }
        self.take(true)
    }

    /// Stop the worker, dropping what it has not decoded yet, and wait for it to exit.
    pub fn close(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.cond.notify_all();
        if let Some(w) = self.worker.take() {
            // The worker only panics on a bug; its pushes so far are all the FIFO gets.
            let _ = w.join();
        }
    }

    fn push_job(&self, job: Job) {
        let mut st = self.shared.state.lock();
        if matches!(job, Job::Body { .. }) {
            st.buffers_out += 1;
        }
        st.pending += 1;
        st.jobs.push_back(job);
        drop(st);
        self.shared.cond.notify_all();
    }

    fn recycle(&self, buf: Vec<u8>) {
        if buf.capacity() > 0 {
            self.shared.state.lock().free.push(buf);
        }
    }

    /// Check the documented invariants of the shared state.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        let st = self.shared.state.lock();
        if st.pending < st.jobs.len() {
            return Err(format!("{} jobs queued but {} pending", st.jobs.len(), st.pending));
        }
        if st.buffers_out > MAX_IN_FLIGHT {
            return Err(format!("{} buffers out, limit {MAX_IN_FLIGHT}", st.buffers_out));
        }
        Ok(())
    }
}

impl Drop for WatchPump {
    fn drop(&mut self) {
        self.close();
    }
}

/// The worker: decode jobs in order until stopped.
fn run(shared: &Shared, mut dec: Decoder) {
    let mut out: Vec<WatchEvent> = Vec::new();
    loop {
        let job = {
            let mut st = shared.state.lock();
            loop {
                if st.stop {
                    return;
                }
                if let Some(j) = st.jobs.pop_front() {
                    break j;
                }
                shared.cond.wait(&mut st);
            }
        };
        let mut progress = Progress::default();
        let mut spent = None;
        let result = match job {
            Job::Body { buf, ranges, fifo, bounded, capture } => {
                if let Some(store) = capture.as_ref().unwrap_or(&fifo).known_objects() {
                    // The decoder captures the store's field-index paths (see feed_fifo).
                    let paths = store.index_defs().iter().filter_map(|d| d.func.field_path().map(Box::from)).collect();
                    dec.set_field_paths(paths);
                }
                let mut r = Ok(());
                for range in ranges.iter().cloned() {
                    r = dec.feed(&buf[range], &mut out);
                    if r.is_err() {
                        break;
                    }
                }
                if bounded && !out.is_empty() && !wait_for_room(shared, &fifo) {
                    return;
                }
                push_events(&fifo, &mut out, &mut progress);
                spent = Some(buf);
                r
            }
            Job::End { fifo, bounded } => {
                let r = dec.body_end(&mut out);
                if bounded && !out.is_empty() && !wait_for_room(shared, &fifo) {
                    return;
                }
                push_events(&fifo, &mut out, &mut progress);
                r
            }
            Job::Finish => dec.finish(),
        };
        let mut st = shared.state.lock();
        st.done.merge(progress);
        if let Err(e) = result {
            st.error.get_or_insert(e);
        }
        st.pending -= 1;
        let mut surplus = None;
        if let Some(buf) = spent {
            st.buffers_out -= 1;
            // A burst may have needed several buffers; an idle stream keeps one.
            if st.jobs.is_empty() && !st.free.is_empty() {
                surplus = Some(buf);
            } else {
                st.free.push(buf);
            }
        }
        drop(st);
        drop(surplus);
        shared.cond.notify_all();
    }
}

/// Wait until `fifo` has room for more deltas; false if the pump was stopped meanwhile.
fn wait_for_room(shared: &Shared, fifo: &DeltaFifo) -> bool {
    while !fifo.wait_for_room(MAX_QUEUED_DELTAS, ROOM_SLICE) {
        if shared.state.lock().stop {
            return false;
        }
    }
    true
}

/// Queue decoded events into the FIFO under one lock acquisition (as `feed_fifo` does).
fn push_events(fifo: &DeltaFifo, events: &mut Vec<WatchEvent>, p: &mut Progress) {
    let Some(last) = events.last() else { return };
    p.last_rv = Some(last.resource_version.clone());
    let mut items = Vec::with_capacity(events.len());
    for ev in events.drain(..) {
        let (kind, t) = match ev.kind {
            EventKind::Added => (DeltaType::Added, 0),
            EventKind::Modified => (DeltaType::Updated, 1),
            EventKind::Deleted => (DeltaType::Deleted, 2),
            EventKind::Bookmark => {
                p.bookmarks += 1;
                p.initial_events_end |= ev.initial_events_end;
                continue;
            }
        };
        p.events += 1;
        p.by_type[t] += 1;
        if let Some(o) = ev.object {
            items.push((kind, DeltaObject::Object(o)));
        }
    }
    fifo.push_many(items);
}

#[cfg(test)]
#[path = "pump_tests.rs"]
mod tests;
