//! A CloudWatch Logs group as the SOCI toolbox's `ecs-task-events` sample keeps one: each ECS event's
//! EventBridge JSON as a log message, at the event's time (for task-import's tests and benchmark).

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde_json::Value;

use crate::local::{Error, local_aws_config};

pub async fn logs_from_env() -> Result<Client, Error> {
    Ok(Client::new(&local_aws_config("AWS_ENDPOINT_URL").await?))
}

/// The event's time (epoch ms), where the sample's rule would have logged it.
pub fn event_millis(event: &Value) -> i64 {
    event["time"]
        .as_str()
        .and_then(|time| chrono::DateTime::parse_from_rfc3339(time).ok())
        .map_or(0, |time| time.timestamp_millis())
}

/// Creates `group` and writes `messages` (time, text) into `streams` streams, round robin, each in time order.
pub async fn write_group(
    client: &Client,
    group: &str,
    messages: &[(i64, String)],
    streams: usize,
) -> Result<(), Error> {
    client.create_log_group().log_group_name(group).send().await?;
    for stream in 0..streams {
        let name = format!("events-{stream}");
        client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(&name)
            .send()
            .await?;
        let mut mine: Vec<&(i64, String)> = messages.iter().skip(stream).step_by(streams).collect();
        mine.sort_by_key(|(time, _)| *time);
        for chunk in mine.chunks(1000) {
            let events = chunk
                .iter()
                .map(|(time, text)| InputLogEvent::builder().timestamp(*time).message(text).build())
                .collect::<Result<Vec<_>, _>>()?;
            client
                .put_log_events()
                .log_group_name(group)
                .log_stream_name(&name)
                .set_log_events(Some(events))
                .send()
                .await?;
        }
    }
    Ok(())
}
