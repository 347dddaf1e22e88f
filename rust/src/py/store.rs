//! `IndexFunc` and `Indexer`: Python handles on the core index functions and store.
//!
//! A Python callable index function is wrapped as a core `IndexFn` that takes the GIL for
//! each call. The core never calls an index function while holding its lock, so this is
//! safe even when the store is written from a thread that released the GIL
//! (`process_batch`). Errors raised by the callable travel through the core as
//! `Error::IndexFunc` and are re-raised unchanged by `py/error.rs`.

use crate::error::Foreign;
use crate::index::{BuiltinIndex, IndexDef, IndexFn};
use crate::object::ObjectRef;
use crate::py::object::{PyDeletedFinalStateUnknown, PyStoredObject};
use crate::store::Store;
use parking_lot::Mutex;
use pyo3::exceptions::{PyAssertionError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3::{PyTraverseError, PyVisit};
use std::sync::Arc;

#[pyclass(name = "IndexFunc", module = "kfast._native", frozen)]
pub struct PyIndexFunc {
    pub inner: BuiltinIndex,
}

#[pymethods]
impl PyIndexFunc {
    #[staticmethod]
    fn namespace() -> Self {
        PyIndexFunc { inner: BuiltinIndex::Namespace }
    }
    #[staticmethod]
    fn label(key: &str) -> Self {
        PyIndexFunc { inner: BuiltinIndex::Label(key.into()) }
    }
    #[staticmethod]
    fn annotation(key: &str) -> Self {
        PyIndexFunc { inner: BuiltinIndex::Annotation(key.into()) }
    }
    #[staticmethod]
    fn field(path: &str) -> Self {
        PyIndexFunc { inner: BuiltinIndex::Field(path.into()) }
    }
    #[staticmethod]
    fn owner_uid() -> Self {
        PyIndexFunc { inner: BuiltinIndex::OwnerUid }
    }
    #[staticmethod]
    fn owner_kind() -> Self {
        PyIndexFunc { inner: BuiltinIndex::OwnerKind }
    }
    fn values(&self, obj: PyRef<'_, PyStoredObject>) -> Vec<String> {
        self.inner.compute(&obj.inner)
    }
    fn __repr__(&self) -> String {
        format!("IndexFunc.{}", self.inner.describe())
    }
}

/// A Python callable used as an index function. `func` is an `Option` so the GC can clear
/// it (breaking a cycle through the callable's closure); a cleared function raises.
pub struct PyCallableIndex {
    func: Mutex<Option<Py<PyAny>>>,
}

impl IndexFn for PyCallableIndex {
    fn values(&self, obj: &ObjectRef) -> Result<Vec<String>, Foreign> {
        Python::with_gil(|py| {
            let func = self.func.lock().as_ref().map(|f| f.clone_ref(py));
            let func = func.ok_or_else(|| PyRuntimeError::new_err("index function was cleared by the GC"))?;
            let arg = Bound::new(py, PyStoredObject::from_ref(obj.clone()))?;
            let out = func.bind(py).call1((arg,))?;
            out.extract::<Vec<String>>()
        })
        .map_err(|e: PyErr| Foreign(Arc::new(e)))
    }
}

/// Parse `{name: IndexFunc | callable}` into core definitions; callables are also returned
/// so the owning pyclass can show them to the GC.
fn parse_indexers(indexers: Option<&Bound<'_, PyDict>>) -> PyResult<(Vec<IndexDef>, Vec<Arc<PyCallableIndex>>)> {
    let mut defs = Vec::new();
    let mut callables = Vec::new();
    let Some(indexers) = indexers else { return Ok((defs, callables)) };
    for (name, f) in indexers.iter() {
        let name: String = name.extract().map_err(|_| PyTypeError::new_err("index names must be str"))?;
        if let Ok(b) = f.downcast::<PyIndexFunc>() {
            defs.push(IndexDef::builtin(name, b.get().inner.clone()));
        } else if f.is_callable() {
            let c = Arc::new(PyCallableIndex { func: Mutex::new(Some(f.unbind())) });
            callables.push(c.clone());
            defs.push(IndexDef::new(name, c));
        } else {
            return Err(PyTypeError::new_err(format!("index {name:?}: expected IndexFunc or a callable")));
        }
    }
    Ok((defs, callables))
}

pub(crate) fn stored_list<'py>(py: Python<'py>, objs: Vec<ObjectRef>) -> PyResult<Bound<'py, PyList>> {
    let items = objs.into_iter().map(|o| Bound::new(py, PyStoredObject::from_ref(o))).collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn str_list<'py, S: std::ops::Deref<Target = str>>(py: Python<'py>, keys: Vec<S>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, keys.iter().map(|k| &**k))
}

/// The key of a StoredObject or DeletedFinalStateUnknown.
pub(crate) fn key_of(obj: &Bound<'_, PyAny>) -> PyResult<std::sync::Arc<str>> {
    if let Ok(o) = obj.downcast::<PyStoredObject>() {
        Ok(o.get().inner.key.clone())
    } else if let Ok(t) = obj.downcast::<PyDeletedFinalStateUnknown>() {
        Ok(t.get().key.clone())
    } else {
        Err(PyTypeError::new_err("expected StoredObject or DeletedFinalStateUnknown"))
    }
}

#[pyclass(name = "Indexer", module = "kfast._native")]
pub struct PyIndexer {
    pub store: Arc<Store>,
    /// Every Python callable the store's index definitions hold (for the GC).
    callables: Mutex<Vec<Arc<PyCallableIndex>>>,
}

#[pymethods]
impl PyIndexer {
    #[new]
    #[pyo3(signature = (indexers=None))]
    fn py_new(indexers: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let (defs, callables) = parse_indexers(indexers)?;
        Ok(PyIndexer { store: Arc::new(Store::new(defs)?), callables: Mutex::new(callables) })
    }

    fn add(&self, py: Python<'_>, obj: PyRef<'_, PyStoredObject>) -> PyResult<()> {
        let obj = obj.inner.clone();
        let store = &self.store;
        Ok(py.allow_threads(|| store.add(obj))?)
    }

    fn update(&self, py: Python<'_>, obj: PyRef<'_, PyStoredObject>) -> PyResult<()> {
        let obj = obj.inner.clone();
        let store = &self.store;
        Ok(py.allow_threads(|| store.update(obj))?)
    }

    fn delete(&self, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        let key = key_of(obj)?;
        drop(self.store.delete(&key));
        Ok(())
    }

    fn replace(&self, py: Python<'_>, objs: Vec<PyRef<'_, PyStoredObject>>, resource_version: &str) -> PyResult<()> {
        let objs: Vec<ObjectRef> = objs.iter().map(|o| o.inner.clone()).collect();
        let store = &self.store;
        Ok(py.allow_threads(|| store.replace(objs, resource_version))?)
    }

    fn get(&self, obj: PyRef<'_, PyStoredObject>) -> Option<PyStoredObject> {
        self.store.get_by_key(&obj.inner.key).map(PyStoredObject::from_ref)
    }

    fn get_by_key(&self, key: &str) -> Option<PyStoredObject> {
        self.store.get_by_key(key).map(PyStoredObject::from_ref)
    }

    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        stored_list(py, self.store.list())
    }

    fn list_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        str_list(py, self.store.list_keys())
    }

    fn add_indexers(&self, py: Python<'_>, indexers: &Bound<'_, PyDict>) -> PyResult<()> {
        let (defs, callables) = parse_indexers(Some(indexers))?;
        let store = &self.store;
        py.allow_threads(|| store.add_indexers(defs))?;
        self.callables.lock().extend(callables);
        Ok(())
    }

    fn index<'py>(&self, py: Python<'py>, name: &str, obj: PyRef<'_, PyStoredObject>) -> PyResult<Bound<'py, PyList>> {
        let objs = self.store.index(name, &obj.inner)?;
        stored_list(py, objs)
    }

    fn by_index<'py>(&self, py: Python<'py>, name: &str, value: &str) -> PyResult<Bound<'py, PyList>> {
        stored_list(py, self.store.by_index(name, value)?)
    }

    fn index_keys<'py>(&self, py: Python<'py>, name: &str, value: &str) -> PyResult<Bound<'py, PyList>> {
        str_list(py, self.store.index_keys(name, value)?)
    }

    fn list_index_values<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyList>> {
        str_list(py, self.store.list_index_values(name))
    }

    fn __len__(&self) -> usize {
        self.store.len()
    }

    fn __contains__(&self, key: &str) -> bool {
        self.store.contains_key(key)
    }

    #[getter]
    fn nbytes(&self) -> usize {
        self.store.nbytes()
    }

    fn check_invariants(&self) -> PyResult<()> {
        self.store.check_invariants().map_err(PyAssertionError::new_err)
    }

    fn __repr__(&self) -> String {
        format!("<Indexer {} objects>", self.store.len())
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        // try_lock: the GC must never block; the lock is only held for a push or a clone.
        if let Some(callables) = self.callables.try_lock() {
            for c in callables.iter() {
                if let Some(f) = c.func.try_lock() {
                    if let Some(f) = f.as_ref() {
                        visit.call(f)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        for c in self.callables.lock().iter() {
            c.func.lock().take();
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIndexFunc>()?;
    m.add_class::<PyIndexer>()?;
    Ok(())
}
