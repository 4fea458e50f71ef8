//! `clock-monitor check`: for container health checks. Asks the running monitor's endpoint; if no
//! monitor answers, reads the metadata endpoint itself. Exit 0 within bound, 1 otherwise.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// What the monitor answered: HTTP status and the JSON body.
pub async fn ask_monitor(listen: &str, max_error_ms: f64, timeout: Duration) -> Result<(u16, String), String> {
    let uri: hyper::Uri = format!("http://{listen}/clock?max_error_ms={max_error_ms}")
        .parse()
        .map_err(|err| format!("invalid --listen {listen:?}: {err}"))?;
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let asked = tokio::time::timeout(timeout, async {
        let response = client.get(uri).await.map_err(|err| err.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| err.to_string())?
            .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&body).into_owned()))
    })
    .await
    .map_err(|_| {
        format!(
            "no answer from the monitor on {listen} within {} ms",
            timeout.as_millis()
        )
    })?;
    asked.map_err(|err| format!("the monitor on {listen} did not answer: {err}"))
}
