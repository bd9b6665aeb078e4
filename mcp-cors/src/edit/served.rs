//! The server's edits: the store serving the file is what an edit applies to, under its
//! appliers' lock, as the watcher applies a save.

use std::path::Path;
use std::sync::Arc;

use super::{Held, Serving};
use crate::error::PolicyError;
use crate::policy::Policy;
use crate::store::{Applied, Applying, PolicyStore};

impl Serving for PolicyStore {
    type Held<'a> = Applying<'a>;

    fn hold(&self) -> Applying<'_> {
        self.applying()
    }
}

impl Held for Applying<'_> {
    /// Usually these are the bytes the store applied last, which costs no parse at all:
    /// the serving policy is the file's. (Parsing a 100 000-origin file takes a good part
    /// of a second.)
    fn read(&mut self, bytes: &[u8], path: &Path) -> Result<Arc<Policy>, PolicyError> {
        if let Applied::Swapped(diff) = self.apply_source(bytes)? {
            tracing::info!(file = %path.display(), change = %diff, "policy reloaded before an edit");
        }
        Ok(self.serving())
    }

    fn apply_edit(&mut self, content: &[u8], _path: &Path) -> Result<(), PolicyError> {
        self.apply_unaudited(content).map(drop)
    }
}
