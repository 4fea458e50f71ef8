//! What can stop an import.

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("FilterLogEvents on {log_group} failed: {message}")]
    Read { log_group: String, message: String },
    #[error("PutLogEvents to {log_group} failed: {message}")]
    Metrics { log_group: String, message: String },
    #[error("the record write failed; run the import again to resume at this page: {0}")]
    Store(String),
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: String, message: String },
    #[error("rejected-lines file {path}: {message}")]
    Rejected { path: String, message: String },
    #[error("{0}")]
    Usage(String),
}
