//! The probe's HTTP client: sends exactly the headers it is given (including a chosen
//! `Host`, for the DNS-rebinding check), follows no redirect, treats every status as an
//! answer, and hands back every response header raw, repeated ones included.
//!
//! `http://` always; `https://` through rustls with the Mozilla root set.

use std::io::Read;
use std::time::Duration;

use ureq::Agent;
use ureq::http;
use url::Url;

use super::fetch::Headers;
use super::sse;

/// How long one exchange may take, connection and body included.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Response bodies are read up to this size; an MCP answer is far smaller.
const BODY_LIMIT: usize = 4 << 20;

/// How much of a response body the probe needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRead {
    /// The whole body (a JSON answer, or an SSE stream the server closes).
    Whole,
    /// An SSE stream read until the JSON-RPC response with this id arrived.
    UntilResponse(u64),
    /// Only the head: a GET stream stays open for as long as the session lives.
    HeadOnly,
}

/// One request as the browser would put it on the wire.
#[derive(Debug, Clone)]
pub struct Request {
    /// `OPTIONS`, `POST`, `GET`, `DELETE`.
    pub method: &'static str,
    /// The endpoint.
    pub url: Url,
    /// Every header, `Host` included, in the order sent.
    pub headers: Vec<(String, String)>,
    /// A JSON-RPC message, for POSTs.
    pub body: Option<String>,
    /// How much of the answer to read.
    pub read: BodyRead,
}

/// One answer.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Every header, names lower-cased, repeated ones kept.
    pub headers: Headers,
    /// The body read (see [`BodyRead`]), lossily decoded as UTF-8.
    pub body: String,
}

/// Why an exchange produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request could not be built from the given parts.
    #[error("cannot build the request: {0}")]
    Build(#[source] http::Error),
    /// Connecting, TLS, sending or reading the head failed.
    #[error("{0}")]
    Exchange(#[source] ureq::Error),
    /// Reading the body failed.
    #[error("reading the response body failed: {0}")]
    Body(#[source] std::io::Error),
}

/// Something that performs exchanges: the network, or a scripted server in tests.
pub trait Transport {
    /// Sends `request` and returns the answer.
    fn send(&mut self, request: &Request) -> Result<Response, HttpError>;
}

/// The real network.
pub struct Network {
    agent: Agent,
}

impl Network {
    /// A client that returns every status as an answer and follows no redirect (a
    /// browser never follows one on a preflight; the probe reports one elsewhere).
    pub fn new() -> Network {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(TIMEOUT))
            .user_agent(concat!("mcp-cors-tui-probe/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Network { agent }
    }
}

impl Transport for Network {
    fn send(&mut self, request: &Request) -> Result<Response, HttpError> {
        let mut builder = http::Request::builder()
            .method(request.method)
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let answer = match &request.body {
            Some(body) => {
                let built = builder.body(body.clone()).map_err(HttpError::Build)?;
                self.agent.run(built)
            }
            None => {
                let built = builder.body(()).map_err(HttpError::Build)?;
                self.agent.run(built)
            }
        }
        .map_err(HttpError::Exchange)?;
        let status = answer.status().as_u16();
        let headers = Headers(
            answer
                .headers()
                .iter()
                .map(|(n, v)| {
                    let value = String::from_utf8_lossy(v.as_bytes()).trim().to_owned();
                    (n.as_str().to_owned(), value)
                })
                .collect(),
        );
        let body = match request.read {
            BodyRead::HeadOnly => String::new(),
            read => read_body(answer.into_body().into_reader(), read)?,
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// Reads a body up to [`BODY_LIMIT`], stopping early once an awaited SSE response is in.
fn read_body(mut reader: impl Read, read: BodyRead) -> Result<String, HttpError> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    while raw.len() < BODY_LIMIT {
        let n = reader.read(&mut chunk).map_err(HttpError::Body)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if let BodyRead::UntilResponse(id) = read {
            // The server may keep the stream open after the answer, as SSE allows.
            if sse::find_response(&String::from_utf8_lossy(&raw), id).is_some() {
                break;
            }
        }
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}
