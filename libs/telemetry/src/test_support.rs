//! What the unit tests of the log layers share: a writer that keeps what a subscriber wrote.

use std::sync::{Arc, Mutex};

/// A `MakeWriter` target (clone it into `with_writer(move || buffer.clone())`) that keeps
/// every byte written, for a test to read back with [`Buffer::text`].
#[derive(Clone, Default)]
pub struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
