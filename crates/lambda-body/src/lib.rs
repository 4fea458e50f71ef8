//! The whole invocation body, byte for byte, for a handler that validates its own input.
//!
//! lambda_runtime 1.5 deserializes an invocation body into the handler's payload type with
//! `serde_json::Deserializer::from_slice` and never calls `end()`: whatever follows the first JSON
//! value is dropped before the handler runs, and an empty body fails with the runtime's generic
//! message. A handler taking `Box<RawValue>` therefore accepts `{...} x` and measures only the first
//! value against its size limit (issue 23).
//!
//! [`WholeBodyLayer`] sits in front of that deserializer and hands the body on as one JSON string
//! holding its bytes in base64, which [`WholeBody`] decodes: the handler then parses exactly what the
//! caller sent, trailing bytes, invalid UTF-8 and emptiness included. Base64 rather than a side channel
//! (a task-local) keeps the data flow visible in the payload type, and a handler deployed without the
//! layer fails closed: a raw event is not a base64 string.

use std::fmt::Debug;
use std::future::Future;
use std::task::{Context, Poll};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_runtime::layers::TracingLayer;
use lambda_runtime::streaming::Body;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::{Diagnostic, IntoFunctionResponse, LambdaEvent, LambdaInvocation, Runtime, service_fn};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// `lambda_runtime::run` for a handler of the whole body: the runtime with its tracing layer and
/// [`WholeBodyLayer`] in front, so `handler` gets every byte the caller sent.
pub async fn run<Handler, Answering, Answer, Failure>(handler: Handler) -> Result<(), lambda_runtime::Error>
where
    Handler: Fn(WholeBody) -> Answering,
    Answering: Future<Output = Result<Answer, Failure>>,
    Answer: Serialize + IntoFunctionResponse<Answer, Body>,
    Failure: Into<Diagnostic> + Debug,
{
    let service = service_fn(move |event: LambdaEvent<WholeBody>| handler(event.payload));
    Runtime::new(service)
        .layer(TracingLayer::new())
        .layer(WholeBodyLayer)
        .run()
        .await
}

/// The invocation body exactly as the Runtime API handed it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeBody(pub Vec<u8>);

impl WholeBody {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Wraps the runtime's services: `Runtime::new(service_fn(handler)).layer(WholeBodyLayer)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WholeBodyLayer;

impl<S> Layer<S> for WholeBodyLayer {
    type Service = WholeBodyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WholeBodyService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct WholeBodyService<S> {
    inner: S,
}

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for WholeBodyService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> Self::Future {
        invocation.body = encode(&invocation.body).into();
        self.inner.call(invocation)
    }
}

/// The body as the JSON string that [`WholeBody`] reads back.
fn encode(body: &[u8]) -> Vec<u8> {
    let mut json = Vec::with_capacity(body.len().div_ceil(3) * 4 + 2);
    json.push(b'"');
    let start = json.len();
    json.resize(start + base64::encoded_len(body.len(), true).unwrap_or(0), 0);
    let written = STANDARD.encode_slice(body, &mut json[start..]).unwrap_or(0);
    json.truncate(start + written);
    json.push(b'"');
    json
}

impl<'de> Deserialize<'de> for WholeBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Base64Body;

        impl Visitor<'_> for Base64Body {
            type Value = WholeBody;

            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("the invocation body as WholeBodyLayer encodes it (is the layer installed?)")
            }

            fn visit_str<E: de::Error>(self, encoded: &str) -> Result<WholeBody, E> {
                STANDARD.decode(encoded).map(WholeBody).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Base64Body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(body: &[u8]) -> Vec<u8> {
        serde_json::from_slice::<WholeBody>(&encode(body)).unwrap().0
    }

    #[test]
    fn every_byte_reaches_the_handler() {
        let with_trailing_bytes = br#"{"detail":{}} x"#;
        assert_eq!(round_trip(with_trailing_bytes), with_trailing_bytes);
        assert_eq!(round_trip(b""), b"");
        assert_eq!(round_trip(b"\xff\xfe not UTF-8"), b"\xff\xfe not UTF-8");
        let all_bytes: Vec<u8> = (0..=255).cycle().take(300_001).collect();
        assert_eq!(round_trip(&all_bytes), all_bytes);
    }

    #[test]
    fn a_raw_event_without_the_layer_is_refused() {
        let err = serde_json::from_slice::<WholeBody>(br#"{"detail":{}}"#).unwrap_err();
        assert!(err.to_string().contains("is the layer installed?"), "{err}");
    }

    #[tokio::test]
    async fn the_layer_rewrites_the_body_for_the_runtime() {
        // The inner service stands for the runtime's own deserializer into the handler's payload type.
        let runtime = lambda_runtime::tower::service_fn(|invocation: LambdaInvocation| async move {
            serde_json::from_slice::<WholeBody>(&invocation.body).map(|body| body.0)
        });
        let mut service = WholeBodyLayer.layer(runtime);
        let invocation = LambdaInvocation {
            parts: http::Response::new(()).into_parts().0,
            body: b"{} trailing".to_vec().into(),
            context: Default::default(),
        };
        assert_eq!(service.call(invocation).await.unwrap(), b"{} trailing");
    }
}
