//! `WatchPump`: the Python face of `crate::pump` (reading stays in Python, decoding and
//! FIFO pushes run on a Rust worker thread). Same results and errors as
//! `WatchDecoder.feed_fifo`, delivered as the worker finishes them.

use crate::decode::DecoderOptions;
use crate::error::Error;
use crate::pump::{Progress, WatchPump};
use crate::py::decode::FeedResult;
use crate::py::error::status_to_dict;
use crate::py::fifo::PyDeltaFifo;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(name = "WatchPump", module = "kfast._native")]
pub struct PyWatchPump {
    inner: WatchPump,
}

/// A result in `feed_fifo`'s terms: an ERROR event (or non-2xx Status) is reported, any
/// other error raised, but only once the events before it were reported (they are then
/// raised by the next call, the pump being poisoned).
fn to_result(py: Python<'_>, p: Progress, err: Option<Error>) -> PyResult<FeedResult> {
    let mut error_status = None;
    match err {
        None => {}
        Some(Error::Api(status)) => error_status = Some(status_to_dict(py, &status)?.unbind()),
        Some(e) => {
            if p.is_empty() {
                return Err(e.into());
            }
        }
    }
    Ok(FeedResult::new(p.events, p.by_type, p.bookmarks, p.last_rv.map(String::from), p.initial_events_end, error_status))
}

#[pymethods]
impl PyWatchPump {
    #[new]
    #[pyo3(signature = (*, max_line_bytes = 67108864, transform = None))]
    fn py_new(max_line_bytes: usize, transform: Option<PyRef<'_, crate::py::transform::PyObjectTransform>>) -> PyResult<Self> {
        let tf = transform.map(|t| t.inner.clone());
        let inner = WatchPump::new(DecoderOptions { http: true, max_line_bytes }, tf)
            .map_err(|e| PyOSError::new_err(format!("cannot start the watch decoder thread: {e}")))?;
        Ok(PyWatchPump { inner })
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
    fn complete(&self) -> bool {
        self.inner.complete()
    }

    /// See `_native.pyi`.
    #[pyo3(signature = (data, fifo, *, wait = false, bounded = false, capture_for = None))]
    fn feed_fifo(
        &mut self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        fifo: PyRef<'_, PyDeltaFifo>,
        wait: bool,
        bounded: bool,
        capture_for: Option<PyRef<'_, PyDeltaFifo>>,
    ) -> PyResult<FeedResult> {
        let bounded = bounded && !wait;
        let fifo = fifo.fifo.clone();
        let capture = capture_for.map(|c| c.fifo.clone());
        let inner = &mut self.inner;
        let n = if let Ok(b) = data.downcast::<PyBytes>() {
            let bytes = b.as_bytes();
            if !bytes.is_empty() {
                let mut buf = py.allow_threads(|| inner.buffer(bytes.len()));
                buf.copy_from_slice(bytes);
                py.allow_threads(|| inner.feed_capturing(buf, &fifo, bounded, capture.as_ref()));
            }
            bytes.len()
        } else {
            let src = PyBuffer::<u8>::get(data)?;
            let n = src.item_count();
            if n > 0 {
                // Copied with the GIL held: a bytearray may change or move once it is gone.
                let mut buf = py.allow_threads(|| inner.buffer(n));
                src.copy_to_slice(py, &mut buf)?;
                py.allow_threads(|| inner.feed_capturing(buf, &fifo, bounded, capture.as_ref()));
            }
            n
        };
        let (p, err) = py.allow_threads(|| inner.take(wait || n == 0));
        to_result(py, p, err)
    }

    /// See `_native.pyi`.
    fn finish(&mut self, py: Python<'_>) -> PyResult<FeedResult> {
        let inner = &mut self.inner;
        let (p, err) = py.allow_threads(|| inner.finish());
        to_result(py, p, err)
    }

    fn close(&mut self, py: Python<'_>) {
        let inner = &mut self.inner;
        py.allow_threads(|| inner.close());
    }

    fn __repr__(&self) -> String {
        format!("<WatchPump status={:?} complete={}>", self.inner.status_code(), self.inner.complete())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyWatchPump>()
}
