//! `StoredObject` and `DeletedFinalStateUnknown`: the Python handles on cached objects.
//! A `StoredObject` is an `Arc` clone of the core object; nothing is copied until Python
//! reads the JSON (and `msgspec.json.decode(obj)` reads it through the buffer protocol
//! without a copy).

use crate::object::{Object, ObjectRef};
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::borrow::Cow;
use std::os::raw::{c_int, c_void};
use std::sync::Arc;

#[pyclass(name = "StoredObject", module = "kfast._native", frozen)]
pub struct PyStoredObject {
    pub inner: ObjectRef,
}

impl PyStoredObject {
    pub fn from_ref(inner: ObjectRef) -> Self {
        PyStoredObject { inner }
    }
}

#[pymethods]
impl PyStoredObject {
    #[new]
    fn py_new(py: Python<'_>, json: pyo3::buffer::PyBuffer<u8>) -> PyResult<Self> {
        let bytes = json.to_vec(py)?;
        let obj = py.allow_threads(|| Object::from_json(&bytes))?;
        Ok(PyStoredObject { inner: Arc::new(obj) })
    }

    #[getter]
    fn key(&self) -> &str {
        &self.inner.key
    }
    #[getter]
    fn namespace(&self) -> Cow<'_, str> {
        self.inner.namespace()
    }
    #[getter]
    fn name(&self) -> Cow<'_, str> {
        self.inner.name()
    }
    #[getter]
    fn uid(&self) -> Cow<'_, str> {
        self.inner.uid()
    }
    #[getter]
    fn resource_version(&self) -> Cow<'_, str> {
        self.inner.resource_version()
    }
    #[getter]
    fn kind(&self) -> Cow<'_, str> {
        self.inner.kind()
    }
    #[getter]
    fn api_version(&self) -> Cow<'_, str> {
        self.inner.api_version()
    }
    #[getter]
    fn labels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.labels() {
            d.set_item(&*k, &*v)?;
        }
        Ok(d)
    }
    #[getter]
    fn owner_references<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let l = PyList::empty(py);
        for o in &self.inner.owner_refs() {
            let d = PyDict::new(py);
            d.set_item("apiVersion", &*o.api_version)?;
            d.set_item("kind", &*o.kind)?;
            d.set_item("name", &*o.name)?;
            d.set_item("uid", &*o.uid)?;
            d.set_item("controller", o.controller)?;
            l.append(d)?;
        }
        Ok(l)
    }
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.json.len()
    }
    fn raw<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.json)
    }
    fn __repr__(&self) -> String {
        format!(
            "<StoredObject {} {} rv={} ({} bytes)>",
            self.inner.kind(),
            self.inner.key,
            self.inner.resource_version(),
            self.inner.json.len()
        )
    }

    /// Read-only buffer over the JSON bytes. The bytes live in an `Arc` held by `self`,
    /// which the exporter keeps alive through `view.obj`.
    unsafe fn __getbuffer__(slf: Bound<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("NULL view"));
        }
        if (flags & ffi::PyBUF_WRITABLE) == ffi::PyBUF_WRITABLE {
            return Err(PyBufferError::new_err("StoredObject is read-only"));
        }
        let data: &[u8] = &slf.get().inner.json;
        (*view).obj = slf.clone().into_any().into_ptr();
        (*view).buf = data.as_ptr() as *mut c_void;
        (*view).len = data.len() as isize;
        (*view).readonly = 1;
        (*view).itemsize = 1;
        (*view).format = if (flags & ffi::PyBUF_FORMAT) == ffi::PyBUF_FORMAT {
            c"B".as_ptr() as *mut _
        } else {
            std::ptr::null_mut()
        };
        (*view).ndim = 1;
        (*view).shape = if (flags & ffi::PyBUF_ND) == ffi::PyBUF_ND { &mut (*view).len } else { std::ptr::null_mut() };
        (*view).strides = if (flags & ffi::PyBUF_STRIDES) == ffi::PyBUF_STRIDES {
            &mut (*view).itemsize
        } else {
            std::ptr::null_mut()
        };
        (*view).suboffsets = std::ptr::null_mut();
        (*view).internal = std::ptr::null_mut();
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}
}

#[pyclass(name = "DeletedFinalStateUnknown", module = "kfast._native", frozen)]
pub struct PyDeletedFinalStateUnknown {
    pub key: Arc<str>,
    pub obj: Option<ObjectRef>,
}

#[pymethods]
impl PyDeletedFinalStateUnknown {
    #[new]
    #[pyo3(signature = (key, obj))]
    fn py_new(key: &str, obj: Option<PyRef<'_, PyStoredObject>>) -> Self {
        PyDeletedFinalStateUnknown { key: key.into(), obj: obj.map(|o| o.inner.clone()) }
    }
    #[getter]
    fn key(&self) -> &str {
        &self.key
    }
    #[getter]
    fn obj(&self) -> Option<PyStoredObject> {
        self.obj.clone().map(PyStoredObject::from_ref)
    }
    fn __repr__(&self) -> String {
        format!("<DeletedFinalStateUnknown {}>", self.key)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStoredObject>()?;
    m.add_class::<PyDeletedFinalStateUnknown>()?;
    Ok(())
}
