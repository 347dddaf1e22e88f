//! `JsonBuf`: an object's JSON bytes, allocated at their exact size from the system
//! allocator.
//!
//! Why not `Box<[u8]>`: the extension's global allocator is mimalloc (see `lib.rs`), whose
//! size classes are ~12.5% apart, so a 5,168-byte pod would sit in a 6,144-byte block:
//! ~900 B of every cached object wasted. glibc rounds to 16 bytes. These buffers are one
//! allocation per event (the many small ones stay on mimalloc), so glibc's cross-thread
//! free cost, which mimalloc was adopted for, is paid once per object rather than ~20 times.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;

pub struct JsonBuf {
    /// Allocated by `System` with `Layout::array::<u8>(len)`, or dangling when `len == 0`.
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: JsonBuf owns its bytes exclusively and never mutates them after construction.
unsafe impl Send for JsonBuf {}
unsafe impl Sync for JsonBuf {}

impl JsonBuf {
    pub fn new(bytes: &[u8]) -> JsonBuf {
        if bytes.is_empty() {
            return JsonBuf { ptr: NonNull::dangling(), len: 0 };
        }
        let layout = Layout::array::<u8>(bytes.len()).expect("length fits a layout");
        // SAFETY: layout has non-zero size; the copy stays within both buffers.
        unsafe {
            let p = System.alloc(layout);
            let Some(ptr) = NonNull::new(p) else { std::alloc::handle_alloc_error(layout) };
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.as_ptr(), bytes.len());
            JsonBuf { ptr, len: bytes.len() }
        }
    }

    /// The pieces one after another, copied once into an exact-size buffer (a transform's
    /// splice: the object without the cut ranges).
    pub fn concat(pieces: &[&[u8]]) -> JsonBuf {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        if len == 0 {
            return JsonBuf { ptr: NonNull::dangling(), len: 0 };
        }
        let layout = Layout::array::<u8>(len).expect("length fits a layout");
        // SAFETY: layout has non-zero size; the copies fill exactly `len` bytes.
        unsafe {
            let p = System.alloc(layout);
            let Some(ptr) = NonNull::new(p) else { std::alloc::handle_alloc_error(layout) };
            let mut at = 0;
            for piece in pieces {
                std::ptr::copy_nonoverlapping(piece.as_ptr(), ptr.as_ptr().add(at), piece.len());
                at += piece.len();
            }
            JsonBuf { ptr, len }
        }
    }

    /// Heap bytes this buffer occupies (glibc: 8 bytes of header, 16-byte granules).
    pub fn heap_bytes(&self) -> usize {
        if self.len == 0 {
            0
        } else {
            (self.len + 8).div_ceil(16) * 16
        }
    }
}

impl Drop for JsonBuf {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: allocated in `new` by System with this exact layout.
            unsafe { System.dealloc(self.ptr.as_ptr(), Layout::array::<u8>(self.len).expect("as allocated")) }
        }
    }
}

impl std::ops::Deref for JsonBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is valid for len bytes (or dangling with len 0, which is allowed).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl From<&[u8]> for JsonBuf {
    fn from(b: &[u8]) -> JsonBuf {
        JsonBuf::new(b)
    }
}

impl std::fmt::Debug for JsonBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonBuf({:?})", String::from_utf8_lossy(self))
    }
}

impl PartialEq for JsonBuf {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}
impl Eq for JsonBuf {}

#[cfg(test)]
mod tests {
    use super::JsonBuf;

    #[test]
    fn holds_the_bytes() {
        let j = JsonBuf::new(b"{\"a\":1}");
        assert_eq!(&*j, b"{\"a\":1}");
        assert_eq!(&*JsonBuf::new(b""), b"");
        assert_eq!(j, JsonBuf::from(&b"{\"a\":1}"[..]));
        assert_eq!(&*JsonBuf::concat(&[b"{\"a\"", b"", b":1}"]), b"{\"a\":1}");
        assert_eq!(&*JsonBuf::concat(&[b"", b""]), b"");
    }
}
