//! Local stand-ins for task-sidecar's tests: the ECS Task Metadata endpoint v4 with faults on demand,
//! a TCP proxy that can cut the way to CloudWatch (an outage), and a CloudWatch client for the
//! bridge in front of moto.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::local::{Error, local_aws_config};

/// A CloudWatch client for AWS_ENDPOINT_URL_CLOUDWATCH (the CBOR bridge).
pub async fn cloudwatch_from_env() -> Result<aws_sdk_cloudwatch::Client, Error> {
    Ok(aws_sdk_cloudwatch::Client::new(
        &local_aws_config("AWS_ENDPOINT_URL_CLOUDWATCH").await?,
    ))
}

/// What the stand-in answers to `GET <endpoint>/task`.
#[derive(Debug, Clone)]
pub enum Reply {
    Json(Vec<u8>),
    Status(u16),
    /// Never answers: the client's timeout must fire.
    Hang,
}

/// The reply and how many JSON answers it has given, under one lock so that a switch of reply
/// tells exactly how many answers the previous one gave.
#[derive(Clone)]
struct StandInState {
    reply: Arc<Mutex<(Reply, u64)>>,
}

/// The Task Metadata endpoint v4 on loopback. `endpoint` is what ECS puts in
/// `ECS_CONTAINER_METADATA_URI_V4`.
pub struct MetadataStandIn {
    pub endpoint: String,
    state: StandInState,
}

async fn task(State(state): State<StandInState>) -> Response {
    let reply = match state.reply.lock() {
        Ok(mut current) => {
            if matches!(current.0, Reply::Json(_)) {
                current.1 += 1;
            }
            current.0.clone()
        }
        Err(_) => Reply::Status(500),
    };
    match reply {
        Reply::Json(body) => ([("content-type", "application/json")], body).into_response(),
        Reply::Status(code) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

impl MetadataStandIn {
    pub async fn start(reply: Reply) -> Result<MetadataStandIn, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = StandInState {
            reply: Arc::new(Mutex::new((reply, 0))),
        };
        let app = axum::Router::new()
            .route("/v4/standin/task", axum::routing::get(task))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(MetadataStandIn {
            endpoint: format!("http://{address}/v4/standin"),
            state,
        })
    }

    /// JSON answers the current reply has given.
    pub fn served(&self) -> u64 {
        self.state.reply.lock().map(|current| current.1).unwrap_or(0)
    }

    /// Switches the reply; returns how many JSON answers the previous reply gave.
    pub fn set(&self, reply: Reply) -> u64 {
        match self.state.reply.lock() {
            Ok(mut current) => std::mem::replace(&mut *current, (reply, 0)).1,
            Err(_) => 0,
        }
    }
}

/// A TCP proxy to `target` that an outage cuts: while down it closes new connections at once and
/// drops the open ones, as a network partition or a dead endpoint would.
pub struct OutageProxy {
    pub address: SocketAddr,
    down: watch::Sender<bool>,
}

async fn pipe(mut client: TcpStream, target: SocketAddr, mut down: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = down.wait_for(|down| *down) => {}
    }
}

impl OutageProxy {
    pub async fn start(target: SocketAddr) -> Result<OutageProxy, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (down, watching) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *watching.borrow() {
                    drop(client);
                    continue;
                }
                tokio::spawn(pipe(client, target, watching.clone()));
            }
        });
        Ok(OutageProxy { address, down })
    }

    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}
