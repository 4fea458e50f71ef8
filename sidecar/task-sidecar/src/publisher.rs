//! CloudWatch side: PutMetricData in batches, each point with its own timestamp, so points held
//! through an outage land at the time they were sampled.

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::buffer::Buffer;
use crate::metrics::Datum;

#[derive(Debug, thiserror::Error)]
#[error("PutMetricData to namespace {namespace} failed ({points} points kept for the next attempt): {message}")]
pub struct PublishError {
    pub namespace: String,
    pub points: usize,
    pub message: String,
}

#[derive(Clone)]
pub struct Publisher {
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
}

fn metric_datum(datum: &Datum) -> MetricDatum {
    let dimensions = datum
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(*name).value(value).build())
        .collect();
    MetricDatum::builder()
        .metric_name(datum.metric)
        .unit(StandardUnit::from(datum.unit.name()))
        .value(datum.value)
        .timestamp(DateTime::from_millis(datum.timestamp.timestamp_millis()))
        .set_dimensions(Some(dimensions))
        .build()
}

impl Publisher {
    pub fn new(client: aws_sdk_cloudwatch::Client, namespace: String) -> Publisher {
        Publisher { client, namespace }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Sends everything in the buffer, a batch at a time; a failed batch stays for the next flush.
    /// Returns the points sent.
    pub async fn flush(&self, buffer: &mut Buffer) -> Result<usize, PublishError> {
        let mut sent = 0;
        while !buffer.is_empty() {
            let batch = buffer.next_batch();
            self.client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(batch.iter().map(metric_datum).collect()))
                .send()
                .await
                .map_err(|err| PublishError {
                    namespace: self.namespace.clone(),
                    points: buffer.len(),
                    message: aws_sdk_cloudwatch::error::DisplayErrorContext(err).to_string(),
                })?;
            buffer.confirm(batch.len());
            sent += batch.len();
        }
        Ok(sent)
    }
}
