//! Who may change an object: the tenant file that declares it, or the admin API. A file
//! is read again at every start and wins, so the API refuses to change what a file
//! owns instead of answering with a change the next start undoes.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagedBy {
    File,
    Api,
}

impl ManagedBy {
    /// The name the API answers, as people read it too.
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedBy::File => "file",
            ManagedBy::Api => "api",
        }
    }
}
