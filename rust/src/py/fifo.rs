//! `Delta`, `DeltaFIFO` and `process_batch`: Python handles on the core DeltaFIFO and the
//! informer's processor step. Waiting and the processing itself run with the GIL released.

use crate::fifo::{Delta, DeltaFifo, DeltaObject, PopError};
use crate::object::ObjectRef;
use crate::process::{self, Notification};
use crate::py::object::{PyDeletedFinalStateUnknown, PyStoredObject};
use crate::py::store::PyIndexer;
use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use pyo3::IntoPyObjectExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one GIL-released wait lasts before checking for signals (Ctrl-C).
const WAIT_SLICE: Duration = Duration::from_millis(100);

pub(crate) fn delta_object_to_py(py: Python<'_>, o: &DeltaObject) -> PyResult<PyObject> {
    match o {
        DeltaObject::Object(obj) => PyStoredObject::from_ref(obj.clone()).into_py_any(py),
        DeltaObject::Tombstone { key, obj } => {
            PyDeletedFinalStateUnknown { key: key.clone(), obj: obj.clone() }.into_py_any(py)
        }
    }
}

fn delta_object_from_py(obj: &Bound<'_, PyAny>) -> PyResult<DeltaObject> {
    if let Ok(o) = obj.downcast::<PyStoredObject>() {
        Ok(DeltaObject::Object(o.get().inner.clone()))
    } else if let Ok(t) = obj.downcast::<PyDeletedFinalStateUnknown>() {
        let t = t.get();
        Ok(DeltaObject::Tombstone { key: t.key.clone(), obj: t.obj.clone() })
    } else {
        Err(PyTypeError::new_err("expected StoredObject or DeletedFinalStateUnknown"))
    }
}

fn timeout_from_secs(t: f64) -> PyResult<Duration> {
    if t.is_nan() {
        return Err(PyValueError::new_err("timeout must be a number"));
    }
    Ok(Duration::try_from_secs_f64(t.max(0.0)).unwrap_or(Duration::MAX))
}

#[pyclass(name = "Delta", module = "kfast._native", frozen)]
pub struct PyDelta {
    inner: Delta,
}

#[pymethods]
impl PyDelta {
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        self.inner.kind.as_str()
    }
    #[getter]
    fn object(&self, py: Python<'_>) -> PyResult<PyObject> {
        delta_object_to_py(py, &self.inner.object)
    }
    fn __repr__(&self) -> String {
        format!("<Delta {} {}>", self.inner.kind.as_str(), self.inner.object.key())
    }
}

fn deltas_to_py(deltas: Vec<Delta>) -> Vec<PyDelta> {
    deltas.into_iter().map(|inner| PyDelta { inner }).collect()
}

#[pyclass(name = "DeltaFIFO", module = "kfast._native", frozen)]
pub struct PyDeltaFifo {
    pub fifo: Arc<DeltaFifo>,
}

#[pymethods]
impl PyDeltaFifo {
    #[new]
    #[pyo3(signature = (known_objects=None))]
    fn py_new(known_objects: Option<PyRef<'_, PyIndexer>>) -> Self {
        PyDeltaFifo { fifo: Arc::new(DeltaFifo::new(known_objects.map(|k| k.store.clone()))) }
    }

    fn add(&self, obj: PyRef<'_, PyStoredObject>) {
        self.fifo.add(obj.inner.clone());
    }

    fn update(&self, obj: PyRef<'_, PyStoredObject>) {
        self.fifo.update(obj.inner.clone());
    }

    fn delete(&self, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        self.fifo.delete(delta_object_from_py(obj)?);
        Ok(())
    }

    fn replace(&self, py: Python<'_>, objs: Vec<PyRef<'_, PyStoredObject>>, resource_version: &str) {
        let objs: Vec<ObjectRef> = objs.iter().map(|o| o.inner.clone()).collect();
        let fifo = &self.fifo;
        py.allow_threads(|| fifo.replace(objs, resource_version));
    }

    fn resync(&self, py: Python<'_>) {
        let fifo = &self.fifo;
        py.allow_threads(|| fifo.resync());
    }

    #[pyo3(signature = (timeout=None))]
    fn pop(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<(String, Vec<PyDelta>)>> {
        let deadline = timeout.map(timeout_from_secs).transpose()?.and_then(|t| Instant::now().checked_add(t));
        loop {
            // Wait in slices so Ctrl-C is noticed even by an unbounded pop.
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(WAIT_SLICE),
                None => WAIT_SLICE,
            };
            let fifo = &self.fifo;
            match py.allow_threads(|| fifo.pop(Some(slice))) {
                Ok(p) => return Ok(Some((p.key.to_string(), deltas_to_py(p.deltas)))),
                Err(PopError::Closed) => return Ok(None),
                Err(PopError::Timeout) => {
                    py.check_signals()?;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn list_keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.fifo.list_keys().iter().map(|k| &**k))
    }

    fn get_by_key(&self, key: &str) -> Option<Vec<PyDelta>> {
        self.fifo.get_by_key(key).map(deltas_to_py)
    }

    fn has_synced(&self) -> bool {
        self.fifo.has_synced()
    }

    fn close(&self) {
        self.fifo.close();
    }

    #[getter]
    fn closed(&self) -> bool {
        self.fifo.is_closed()
    }

    fn __len__(&self) -> usize {
        self.fifo.len()
    }

    fn check_invariants(&self) -> PyResult<()> {
        self.fifo.check_invariants().map_err(PyAssertionError::new_err)
    }

    fn __repr__(&self) -> String {
        format!("<DeltaFIFO {} keys{}>", self.fifo.len(), if self.fifo.is_closed() { ", closed" } else { "" })
    }
}

fn notification_to_py<'py>(py: Python<'py>, n: Notification) -> PyResult<Bound<'py, PyTuple>> {
    let kind = n.kind();
    let (obj, old, initial) = match n {
        Notification::Add { obj, is_in_initial_list } => {
            (PyStoredObject::from_ref(obj).into_py_any(py)?, py.None(), is_in_initial_list)
        }
        Notification::Update { old, new } => {
            (PyStoredObject::from_ref(new).into_py_any(py)?, PyStoredObject::from_ref(old).into_py_any(py)?, false)
        }
        Notification::Delete { obj } => (delta_object_to_py(py, &obj)?, py.None(), false),
    };
    PyTuple::new(py, [kind.into_py_any(py)?, obj, old, initial.into_py_any(py)?])
}

/// See `_native.pyi`. If an index function raised part-way, the notifications produced
/// before it are returned and the failing key is back at the head of the FIFO, so the
/// error surfaces on the next call; with nothing to return, it is raised now.
#[pyfunction]
#[pyo3(signature = (fifo, indexer, max_keys=4096, timeout=0.1, collect=true))]
pub fn process_batch(
    py: Python<'_>,
    fifo: PyRef<'_, PyDeltaFifo>,
    indexer: PyRef<'_, PyIndexer>,
    max_keys: usize,
    timeout: f64,
    collect: bool,
) -> PyResult<PyObject> {
    let timeout = timeout_from_secs(timeout)?;
    let (fifo, store) = (fifo.fifo.clone(), indexer.store.clone());
    // replace()/resync() reason about what the processor has stored; feeding a different
    // store than the one they consult would silently lose deletions.
    if fifo.known_objects().is_some_and(|k| !Arc::ptr_eq(k, &store)) {
        return Err(PyValueError::new_err("indexer must be the DeltaFIFO's known_objects"));
    }
    let deadline = Instant::now().checked_add(timeout);
    let out = loop {
        // Wait in slices so Ctrl-C reaches a processor blocked on an idle FIFO.
        let slice = deadline.map_or(WAIT_SLICE, |d| d.saturating_duration_since(Instant::now()).min(WAIT_SLICE));
        let (f, s) = (fifo.clone(), store.clone());
        let out = py.allow_threads(move || process::process_batch(&f, &s, max_keys, Some(slice)));
        let idle = !out.closed && out.error.is_none() && out.notifications.is_empty();
        if !idle || deadline.is_some_and(|d| Instant::now() >= d) {
            break out;
        }
        py.check_signals()?;
    };
    if out.closed {
        return (-1i64).into_py_any(py);
    }
    if let Some(err) = out.error {
        if out.notifications.is_empty() {
            return Err(err.into());
        }
    }
    if !collect {
        return out.notifications.len().into_py_any(py);
    }
    let items = out.notifications.into_iter().map(|n| notification_to_py(py, n)).collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)?.into_py_any(py)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDelta>()?;
    m.add_class::<PyDeltaFifo>()?;
    m.add_function(wrap_pyfunction!(process_batch, m)?)?;
    Ok(())
}
