//! What the stores can fail with, and what a read cost.

use aws_sdk_dynamodb::error::SdkError;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SDK's error is kept as the source: `DisplayErrorContext` or an error reporter shows the chain.
    #[error("DynamoDB {operation} on table {table} failed")]
    Dynamo {
        operation: &'static str,
        table: String,
        #[source]
        source: BoxError,
    },
    #[error("DynamoDB {operation} on table {table} failed: {reason}")]
    Refused {
        operation: &'static str,
        table: String,
        reason: String,
    },
    #[error("task record could not be converted to or from a DynamoDB item: {0}")]
    Item(#[from] serde_dynamo::Error),
    #[error(transparent)]
    RollupItem(#[from] RollupItemError),
    #[error("DynamoDB request could not be built: {0}")]
    Request(#[from] aws_sdk_dynamodb::error::BuildError),
    #[error(
        "the request would read more than {limit} records of family {family:?} (the MAX_ROWS limit); \
         narrow the window or the filters"
    )]
    RowLimit { limit: u64, family: String },
}

impl StoreError {
    /// `operation` on `table` failed with the SDK's `err`.
    pub fn sdk<E, R>(operation: &'static str, table: &str, err: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        StoreError::Dynamo {
            operation,
            table: table.to_owned(),
            source: Box::new(err),
        }
    }
}

/// A rollup item that does not hold what the rollups write.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("rollup item {key:?}: {problem}")]
pub struct RollupItemError {
    pub key: String,
    pub problem: String,
}

/// `error: its source: that one's source: …`, for logs and Lambda's errorMessage.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut last = text.clone();
    let mut source = err.source();
    while let Some(cause) = source {
        // The SDK's service errors wrap a struct that says the same again: once is enough.
        let message = cause.to_string();
        if message != last {
            text.push_str(": ");
            text.push_str(&message);
            last = message;
        }
        source = cause.source();
    }
    text
}

/// How much a read cost: items DynamoDB evaluated (the filters run after the read, so these are the
/// ones paid for), items that matched, and Query calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadCount {
    pub items_read: u64,
    pub items_matched: u64,
    pub query_calls: u64,
}

impl ReadCount {
    /// Adds another read of the same answer.
    pub fn add(&mut self, other: &ReadCount) {
        self.items_read += other.items_read;
        self.items_matched += other.items_matched;
        self.query_calls += other.query_calls;
    }

    /// Counts one Query call and the items it evaluated; refuses once more than `max_rows` were read.
    pub(crate) fn count_call(&mut self, scanned: i32, max_rows: u64, family: &str) -> Result<(), StoreError> {
        self.query_calls += 1;
        self.items_read += u64::try_from(scanned).unwrap_or(0);
        if self.items_read > max_rows {
            return Err(StoreError::RowLimit {
                limit: max_rows,
                family: family.to_owned(),
            });
        }
        Ok(())
    }
}
