//! `ObjectTransform`: the Python handle on a core `Transform` (fields dropped by splicing
//! bytes in Rust). Called on a `StoredObject` it returns the cut object; handed to a
//! `WatchDecoder` it cuts every object as it is decoded, with no Python call per event.

use crate::py::object::PyStoredObject;
use crate::transform::Transform;
use pyo3::prelude::*;
use std::sync::Arc;

#[pyclass(name = "ObjectTransform", module = "kfast._native", frozen)]
pub struct PyObjectTransform {
    pub inner: Arc<Transform>,
}

#[pymethods]
impl PyObjectTransform {
    #[new]
    fn py_new(paths: Vec<Vec<String>>) -> PyResult<Self> {
        Ok(PyObjectTransform { inner: Arc::new(Transform::new(paths)?) })
    }

    #[getter]
    fn paths(&self) -> Vec<Vec<String>> {
        self.inner.paths().iter().map(|p| p.iter().map(|s| s.to_string()).collect()).collect()
    }

    /// The object without the fields; the same object when it has none of them.
    fn __call__(&self, py: Python<'_>, obj: Py<PyStoredObject>) -> Py<PyStoredObject> {
        let inner = obj.get().inner.clone();
        let t = &self.inner;
        match py.allow_threads(|| t.apply(&inner)) {
            Some(cut) => Py::new(py, PyStoredObject::from_ref(Arc::new(cut))).expect("allocating a StoredObject"),
            None => obj,
        }
    }

    fn __add__(&self, other: PyRef<'_, PyObjectTransform>) -> Self {
        PyObjectTransform { inner: Arc::new(self.inner.combine(&other.inner)) }
    }

    fn __eq__(&self, other: PyRef<'_, PyObjectTransform>) -> bool {
        self.inner == other.inner
    }

    fn __repr__(&self) -> String {
        let paths: Vec<String> = self.inner.paths().iter().map(|p| format!("{:?}", p.join("."))).collect();
        format!("<ObjectTransform drop {}>", paths.join(", "))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyObjectTransform>()?;
    Ok(())
}
