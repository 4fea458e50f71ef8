//! `task-sidecar check`: for container health checks. Asks the running monitor's endpoint; if no
//! monitor answers, reads the metadata endpoint itself. Exit 0 within bound, 1 otherwise.

use std::time::Duration;

use crate::reader::{get, http_client};

/// What the monitor answered: HTTP status and the JSON body.
pub async fn ask_monitor(listen: &str, max_error_ms: f64, timeout: Duration) -> Result<(u16, String), String> {
    let uri: hyper::Uri = format!("http://{listen}/clock?max_error_ms={max_error_ms}")
        .parse()
        .map_err(|err| format!("invalid --listen {listen:?}: {err}"))?;
    let (status, body) = get(&http_client(), &uri, timeout)
        .await
        .map_err(|err| format!("the monitor did not answer: {err}"))?;
    Ok((status.as_u16(), String::from_utf8_lossy(&body).into_owned()))
}
