//! `ListResponse`: the Python face of `crate::list_response` (a LIST answer read off kfast's
//! own keep-alive socket) and of the early `metadata` scan that lets the next page be
//! requested before this one has arrived.

use crate::list_response::ListResponse;
use crate::py::fifo::PyDeltaFifo;
use crate::py::object::PyStoredObject;
use crate::py::transform::PyObjectTransform;
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[pyclass(name = "ListResponse", module = "kfast._native")]
pub struct PyListResponse {
    inner: ListResponse,
    /// `(resourceVersion, continue)` once read off the body's first bytes.
    meta: Option<(String, Option<String>)>,
}

#[pymethods]
impl PyListResponse {
    #[new]
    fn py_new() -> Self {
        PyListResponse { inner: ListResponse::new(), meta: None }
    }

    /// Take the bytes of this response from `data` (any buffer); returns how many were
    /// its (the rest is the next response on the connection). Runs with the GIL held:
    /// a memcpy of at most one read, so the caller's buffer cannot change under it.
    fn feed(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let buf = PyBuffer::<u8>::get(data)?;
        if !buf.is_c_contiguous() {
            return Err(pyo3::exceptions::PyValueError::new_err("feed() needs a contiguous buffer"));
        }
        // SAFETY: the buffer is contiguous and stays alive and unchanged while we hold the
        // GIL and `buf` (no Python code runs in between).
        let bytes = unsafe { std::slice::from_raw_parts(buf.buf_ptr() as *const u8, buf.len_bytes()) };
        let n = self.inner.feed(bytes)?;
        if self.meta.is_none() && self.inner.status().is_some_and(|c| (200..300).contains(&c)) {
            self.meta = crate::decode::list_meta_prefix(self.inner.body());
        }
        let _ = py;
        Ok(n)
    }

    #[getter]
    fn status_code(&self) -> Option<u16> {
        self.inner.status()
    }
    #[getter]
    fn headers(&self) -> Option<Vec<(String, String)>> {
        self.inner.headers().map(|h| h.to_vec())
    }
    #[getter]
    fn complete(&self) -> bool {
        self.inner.is_done()
    }
    #[getter]
    fn reusable(&self) -> bool {
        self.inner.reusable()
    }
    #[getter]
    fn consumed(&self) -> u64 {
        self.inner.consumed()
    }
    /// `(resourceVersion, continue or None)` of a 2xx body once its `metadata` has been
    /// read (before `items`), else None.
    #[getter]
    fn early_metadata(&self) -> Option<(String, Option<String>)> {
        self.meta.clone()
    }

    /// The connection closed: StreamTruncated unless that ends the response.
    fn finish(&mut self) -> PyResult<()> {
        Ok(self.inner.finish()?)
    }

    /// The body as bytes (for a Status of a failed request).
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.body())
    }

    /// Decode the body as `decode_list` does (GIL released) and let it go.
    #[pyo3(signature = (*, capture_for = None, transform = None))]
    fn decode(
        &mut self,
        py: Python<'_>,
        capture_for: Option<PyRef<'_, PyDeltaFifo>>,
        transform: Option<PyRef<'_, PyObjectTransform>>,
    ) -> PyResult<(Vec<PyStoredObject>, String, Option<String>)> {
        let paths: Vec<Box<str>> = capture_for
            .and_then(|f| {
                f.fifo.known_objects().map(|store| {
                    store.index_defs().iter().filter_map(|d| d.func.field_path().map(Box::from)).collect()
                })
            })
            .unwrap_or_default();
        let fp = crate::decode::FieldPaths::new(paths);
        let tf = transform.map(|t| t.inner.clone());
        let body = self.inner.take_body();
        let page = py.allow_threads(move || {
            let r = crate::decode::decode_list(&body, &fp, tf.as_deref());
            drop(body);
            r
        })?;
        let items = page.items.into_iter().map(|o| PyStoredObject::from_ref(std::sync::Arc::new(o))).collect();
        Ok((items, page.resource_version, page.continue_token))
    }

    fn __repr__(&self) -> String {
        format!("<ListResponse status={:?} complete={} body={}B>", self.inner.status(), self.inner.is_done(), self.inner.body().len())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyListResponse>()
}
