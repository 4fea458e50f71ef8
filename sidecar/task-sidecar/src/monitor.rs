//! The monitor's state: the last sample and who the task is. Sampling on the interval feeds the
//! buffer; on-demand checks reuse the last sample while it is fresh enough, else read a new one.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::Mutex;

use crate::buffer::Buffer;
use crate::metadata::TaskIdentity;
use crate::metrics::{DimensionPolicy, error_data, sample_data};
use crate::reader::MetadataReader;
use crate::sample::{ClockAnswer, Sample, answer, error_answer};

#[derive(Default)]
struct State {
    last: Option<Sample>,
    /// Kept from the last successful read, so a later failure is counted under the task's dimensions.
    identity: Option<TaskIdentity>,
}

impl State {
    fn remember(&mut self, sample: Sample) {
        self.identity = Some(sample.metadata.identity.clone());
        self.last = Some(sample);
    }
}

pub struct Monitor {
    reader: MetadataReader,
    policy: DimensionPolicy,
    max_sample_age: Duration,
    state: Mutex<State>,
    pub buffer: Mutex<Buffer>,
}

impl Monitor {
    pub fn new(reader: MetadataReader, policy: DimensionPolicy, max_sample_age: Duration, buffer: Buffer) -> Monitor {
        Monitor {
            reader,
            policy,
            max_sample_age,
            state: Mutex::new(State::default()),
            buffer: Mutex::new(buffer),
        }
    }

    /// The interval's sample: read, remember, and queue its data points (or MetadataErrors 1).
    pub async fn sample_and_queue(&self) {
        let mut state = self.state.lock().await;
        let data = match self.reader.read().await {
            Ok(sample) => {
                match sample.metadata.clock {
                    Some(clock) => tracing::info!(
                        clock_error_bound_ms = clock.error_bound_ms,
                        status = clock.status.name(),
                        reference_age_seconds = sample.reference_age_seconds(),
                        "clock sample"
                    ),
                    None => {
                        tracing::warn!("clock unavailable: the task metadata has no ClockDrift; no bound published")
                    }
                }
                let data = sample_data(&sample, self.policy);
                state.remember(sample);
                data
            }
            Err(err) => {
                tracing::error!(error = %err, "metadata read failed");
                error_data(state.identity.as_ref(), self.policy, Utc::now())
            }
        };
        drop(state);
        let dropped = self.buffer.lock().await.push(data);
        if dropped > 0 {
            tracing::warn!(dropped, "metric buffer full: oldest points dropped");
        }
    }

    /// The on-demand answer: from the last sample if younger than `max_sample_age`, else from a new
    /// read (which becomes the last sample; it is not published, the interval's samples are).
    pub async fn check(&self, max_error_ms: f64) -> ClockAnswer {
        let mut state = self.state.lock().await;
        let fresh = state.last.as_ref().is_some_and(|sample| {
            (Utc::now() - sample.sampled_at)
                .to_std()
                .is_ok_and(|age| age <= self.max_sample_age)
        });
        if !fresh {
            match self.reader.read().await {
                Ok(sample) => state.remember(sample),
                Err(err) => return error_answer(max_error_ms, &err.to_string()),
            }
        }
        match &state.last {
            Some(sample) => answer(sample, max_error_ms),
            None => error_answer(max_error_ms, "no sample yet"),
        }
    }
}
