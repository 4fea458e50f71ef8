//! `GET /clock?max_error_ms=N` on localhost: the clock's state as JSON, 200 when synchronized and
//! within N ms, 503 otherwise, so an application can gate time-sensitive work on it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::monitor::Monitor;

pub struct ServerState {
    pub monitor: Arc<Monitor>,
    /// Used when the request names no maximum.
    pub default_max_error_ms: f64,
}

pub fn router(state: Arc<ServerState>) -> axum::Router {
    axum::Router::new().route("/clock", get(clock)).with_state(state)
}

/// `max_error_ms`: a finite number ≥ 0, or absent for the default.
pub fn max_error_ms(query: &HashMap<String, String>, default: f64) -> Result<f64, String> {
    if let Some(unknown) = query.keys().find(|key| key.as_str() != "max_error_ms") {
        return Err(format!("unknown query parameter {unknown:?}; expected max_error_ms"));
    }
    match query.get("max_error_ms") {
        None => Ok(default),
        Some(text) => match text.parse::<f64>() {
            Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
            _ => Err(format!("max_error_ms {text:?} is not a number of milliseconds ≥ 0")),
        },
    }
}

async fn clock(State(state): State<Arc<ServerState>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let max = match max_error_ms(&query, state.default_max_error_ms) {
        Ok(max) => max,
        Err(message) => return (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response(),
    };
    let answer = state.monitor.check(max).await;
    let status = if answer.within_bound {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(answer)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maximum_is_checked() {
        let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(max_error_ms(&query(&[]), 1.0), Ok(1.0));
        assert_eq!(max_error_ms(&query(&[("max_error_ms", "0.5")]), 1.0), Ok(0.5));
        assert_eq!(
            max_error_ms(&query(&[("max_error_ms", "-1")]), 1.0),
            Err("max_error_ms \"-1\" is not a number of milliseconds ≥ 0".into())
        );
        assert!(max_error_ms(&query(&[("max_error_ms", "NaN")]), 1.0).is_err());
        assert_eq!(
            max_error_ms(&query(&[("max_err", "1")]), 1.0),
            Err("unknown query parameter \"max_err\"; expected max_error_ms".into())
        );
    }
}
