//! `WatchDecoder` and `WatchEvent`: the Python face of `crate::decode`. Parsing runs with
//! the GIL released; errors cross into Python only through `py/error.rs`.

use crate::decode::{Decoder, DecoderOptions, EventKind, WatchEvent};
use crate::error::Error;
use crate::fifo::{DeltaObject, DeltaType};
use crate::py::error::status_to_dict;
use crate::py::fifo::PyDeltaFifo;
use crate::py::object::PyStoredObject;
use crate::py::transform::PyObjectTransform;
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

#[pyclass(name = "WatchEvent", module = "kfast._native", frozen)]
pub struct PyWatchEvent {
    inner: WatchEvent,
}

#[pymethods]
impl PyWatchEvent {
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        self.inner.kind.as_str()
    }
    #[getter]
    fn object(&self) -> Option<PyStoredObject> {
        self.inner.object.clone().map(PyStoredObject::from_ref)
    }
    #[getter]
    fn resource_version(&self) -> &str {
        &self.inner.resource_version
    }
    #[getter]
    fn initial_events_end(&self) -> bool {
        self.inner.initial_events_end
    }
    /// Always None: an ERROR event is raised as the ApiError built from its Status rather
    /// than returned, so no event ever carries one. Kept for the documented surface.
    #[getter]
    fn status(&self) -> Option<PyObject> {
        None
    }
    fn __repr__(&self) -> String {
        match &self.inner.object {
            Some(o) => format!("<WatchEvent {} {} rv={}>", self.inner.kind.as_str(), o.key, self.inner.resource_version),
            None => format!("<WatchEvent {} rv={}>", self.inner.kind.as_str(), self.inner.resource_version),
        }
    }
}

#[pyclass(name = "WatchDecoder", module = "kfast._native")]
pub struct PyWatchDecoder {
    inner: Decoder,
    /// Reused copy of a mutable input buffer: a fresh 1 MiB `Vec` per call was freed back
    /// to the OS and page-faulted in again on every read (profiled).
    scratch: Vec<u8>,
}

impl PyWatchDecoder {
    /// Run `f` on the bytes of `data` with the GIL released. Immutable `bytes` are read in
    /// place; any other buffer (bytearray, memoryview of a reused recv buffer) may change
    /// under us once the GIL is gone, so it is copied first.
    fn with_bytes<R: Send>(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        f: impl FnOnce(&mut Decoder, &[u8]) -> R + Send,
    ) -> PyResult<R> {
        let inner = &mut self.inner;
        if let Ok(b) = data.downcast::<PyBytes>() {
            let bytes = b.as_bytes();
            return Ok(py.allow_threads(|| f(inner, bytes)));
        }
        let buf = PyBuffer::<u8>::get(data)?;
        let mut copy = std::mem::take(&mut self.scratch);
        copy.resize(buf.item_count(), 0);
        buf.copy_to_slice(py, &mut copy)?;
        let r = py.allow_threads(|| f(inner, &copy));
        self.scratch = copy;
        Ok(r)
    }
}

#[pymethods]
impl PyWatchDecoder {
    #[new]
    // The literal keeps the default visible to Python introspection (and stubtest).
    #[pyo3(signature = (*, http = true, max_line_bytes = 67108864, transform = None))]
    fn py_new(http: bool, max_line_bytes: usize, transform: Option<PyRef<'_, PyObjectTransform>>) -> Self {
        let mut inner = Decoder::new(DecoderOptions { http, max_line_bytes });
        inner.set_transform(transform.map(|t| t.inner.clone()));
        PyWatchDecoder { inner, scratch: Vec::new() }
    }

    #[getter]
    fn status_code(&self) -> Option<u16> {
        self.inner.status_code()
    }
    #[getter]
    fn headers(&self) -> Option<Vec<(String, String)>> {
        self.inner.headers().map(|h| h.to_vec())
    }
    #[getter]
    fn body_offset(&self) -> u64 {
        self.inner.body_offset()
    }
    #[getter]
    fn complete(&self) -> bool {
        self.inner.complete()
    }

    /// Events decoded before an error in the same call are returned; the decoder is then
    /// poisoned, so the error is raised by the next call (nothing is lost).
    fn feed<'py>(&mut self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let (events, result) = self.with_bytes(py, data, |d, bytes| {
            let mut out = Vec::new();
            let r = d.feed(bytes, &mut out);
            (out, r)
        })?;
        if let Err(e) = result {
            if events.is_empty() {
                return Err(e.into());
            }
        }
        let items = events
            .into_iter()
            .map(|inner| Bound::new(py, PyWatchEvent { inner }))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// The informer's path: events go straight from the decoder into the DeltaFIFO, all
    /// with the GIL released; no Python object is made per event. An ERROR event is
    /// reported in the result (the watch is over) rather than raised, so the events before
    /// it in the same buffer are never lost.
    #[pyo3(signature = (data, fifo, *, capture_for = None))]
    fn feed_fifo(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        fifo: PyRef<'_, PyDeltaFifo>,
        capture_for: Option<PyRef<'_, PyDeltaFifo>>,
    ) -> PyResult<FeedResult> {
        let fifo = fifo.fifo.clone();
        // A streaming list stages its initial events in a private FIFO; their field values
        // are captured for the informer's own indexes, which store them after the replace
        // (else each field index walks every object's JSON again: profiled at ~5 us a pod).
        let capture = capture_for.map(|c| c.fifo.clone()).unwrap_or_else(|| fifo.clone());
        if capture.known_objects().is_some() {
            self.inner.set_field_paths(field_paths_of(&capture));
        }
        let (summary, result) = self.with_bytes(py, data, |d, bytes| {
            let mut out = Vec::new();
            let r = d.feed(bytes, &mut out);
            let summary = push_events(&fifo, out);
            (summary, r)
        })?;
        let mut res = FeedResult {
            events: summary.events,
            added: summary.by_type[0],
            modified: summary.by_type[1],
            deleted: summary.by_type[2],
            bookmarks: summary.bookmarks,
            last_resource_version: summary.last_rv,
            initial_events_end: summary.initial_events_end,
            error_status: None,
        };
        match result {
            Ok(()) => {}
            Err(Error::Api(status)) => res.error_status = Some(status_to_dict(py, &status)?.unbind()),
            Err(e) => {
                if summary.events == 0 && summary.bookmarks == 0 {
                    return Err(e.into());
                }
            }
        }
        Ok(res)
    }

    fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        let inner = &mut self.inner;
        py.allow_threads(|| inner.finish())?;
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!(
            "<WatchDecoder status={:?} body_offset={} complete={}>",
            self.inner.status_code(),
            self.inner.body_offset(),
            self.inner.complete()
        )
    }
}

impl PyWatchDecoder {
    /// The core decoder, for glue that feeds events elsewhere (e.g. `feed_fifo`).
    pub fn decoder_mut(&mut self) -> &mut Decoder {
        &mut self.inner
    }
}

struct PushSummary {
    events: usize,
    /// `events` by type: ADDED, MODIFIED, DELETED.
    by_type: [usize; 3],
    bookmarks: usize,
    last_rv: Option<String>,
    initial_events_end: bool,
}

/// Queue decoded events into the FIFO under one lock acquisition.
fn push_events(fifo: &crate::fifo::DeltaFifo, events: Vec<WatchEvent>) -> PushSummary {
    let mut s = PushSummary { events: 0, by_type: [0; 3], bookmarks: 0, last_rv: None, initial_events_end: false };
    if let Some(last) = events.last() {
        s.last_rv = Some(last.resource_version.to_string());
    }
    let items = events.into_iter().filter_map(|ev| {
        let (kind, slot) = match ev.kind {
            EventKind::Added => (DeltaType::Added, 0),
            EventKind::Modified => (DeltaType::Updated, 1),
            EventKind::Deleted => (DeltaType::Deleted, 2),
            EventKind::Bookmark => {
                s.bookmarks += 1;
                s.initial_events_end |= ev.initial_events_end;
                return None;
            }
        };
        s.events += 1;
        s.by_type[slot] += 1;
        ev.object.map(|o| (kind, DeltaObject::Object(o)))
    });
    fifo.push_many(items.collect::<Vec<_>>());
    s
}

/// What one `feed_fifo` call queued.
#[pyclass(name = "FeedResult", module = "kfast._native", frozen, get_all)]
pub struct FeedResult {
    events: usize,
    added: usize,
    modified: usize,
    deleted: usize,
    bookmarks: usize,
    last_resource_version: Option<String>,
    initial_events_end: bool,
    error_status: Option<PyObject>,
}

impl FeedResult {
    /// For other feeders of a FIFO (`py/pump.rs`).
    pub(crate) fn new(
        events: usize,
        by_type: [usize; 3],
        bookmarks: usize,
        last_resource_version: Option<String>,
        initial_events_end: bool,
        error_status: Option<PyObject>,
    ) -> Self {
        let [added, modified, deleted] = by_type;
        FeedResult { events, added, modified, deleted, bookmarks, last_resource_version, initial_events_end, error_status }
    }
}

#[pymethods]
impl FeedResult {
    fn __repr__(&self) -> String {
        format!(
            "<FeedResult events={} bookmarks={} last_rv={:?} initial_events_end={} error={}>",
            self.events,
            self.bookmarks,
            self.last_resource_version,
            self.initial_events_end,
            self.error_status.is_some()
        )
    }
}

/// The field paths the field indexes of `fifo`'s known_objects read.
fn field_paths_of(fifo: &crate::fifo::DeltaFifo) -> Vec<Box<str>> {
    fifo.known_objects()
        .map(|store| store.index_defs().iter().filter_map(|d| d.func.field_path().map(Box::from)).collect())
        .unwrap_or_default()
}

/// See `_native.pyi`. Parsed with the GIL released.
#[pyfunction]
#[pyo3(signature = (body, *, capture_for = None, transform = None))]
pub fn decode_list(
    py: Python<'_>,
    body: &Bound<'_, PyBytes>,
    capture_for: Option<PyRef<'_, PyDeltaFifo>>,
    transform: Option<PyRef<'_, PyObjectTransform>>,
) -> PyResult<(Vec<PyStoredObject>, String, Option<String>)> {
    let paths = capture_for.map(|f| field_paths_of(&f.fifo)).unwrap_or_default();
    let fp = crate::decode::FieldPaths::new(paths);
    let tf = transform.map(|t| t.inner.clone());
    let bytes = body.as_bytes();
    let page = py.allow_threads(|| crate::decode::decode_list(bytes, &fp, tf.as_deref()))?;
    let items = page.items.into_iter().map(|o| PyStoredObject::from_ref(std::sync::Arc::new(o))).collect();
    Ok((items, page.resource_version, page.continue_token))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_list, m)?)?;
    m.add_class::<FeedResult>()?;
    m.add_class::<PyWatchEvent>()?;
    m.add_class::<PyWatchDecoder>()?;
    Ok(())
}

// `WatchDecoder.__new__` spells the default as a literal; keep it equal to the core's.
const _: () = assert!(crate::decode::DEFAULT_MAX_LINE_BYTES == 67108864);
