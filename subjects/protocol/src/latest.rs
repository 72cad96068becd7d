//! The latest of something a subject observed, shared between `observe` and the tools that
//! describe "now" (a subject is called from several tasks at once).

use std::sync::Mutex;

#[derive(Debug)]
pub struct Latest<T>(Mutex<Option<T>>);

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T: Clone> Latest<T> {
    pub fn set(&self, value: T) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
    }

    pub fn get(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads without cloning the whole value; a poisoned lock still holds the last value.
    pub fn with<R>(&self, read: impl FnOnce(Option<&T>) -> R) -> R {
        read(self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref())
    }
}
