//! The request handler: routing by server and location, then static files, upstreams or
//! redirects.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_front::{
    BodyLength, ChannelBody, Either, Full, Handler, Request, RequestBody, RequestHead, Response,
    ResponseHead,
};

use super::Site;
use super::access_log::{AccessEntry, Logged};
use super::spool::{Spool, SpoolError};
use super::static_serve::{self, StaticAnswer};
use super::upstream::{self, Answer, AttemptError};
use crate::config::{Action, ServerBlock, expand_redirect};
use crate::forwarded::forwarded;
use crate::path::{document_uri, origin_form, split_target};
use crate::pool::{Outcome, RetryPolicy};
use crate::upstream_head::{BodyFraming, UpstreamProtocol};
use crate::upstream_request::encode_http_request;
use crate::uwsgi_params::{RequestInfo, Scheme, UwsgiParams, host_var};

/// The response body of [`ProxyHandler`]: a ready buffer or a stream, counted for the
/// access log.
pub type ProxyBody = Logged<Either<Full, ChannelBody>>;

type Answered = (ResponseHead, Either<Full, ChannelBody>);

/// The [`Handler`] of one client connection: it holds the configuration the connection
/// was accepted with, the listening address and the client's address.
pub struct ProxyHandler {
    site: Arc<Site>,
    listen: SocketAddr,
    local: SocketAddr,
    peer: Option<SocketAddr>,
    tls: bool,
}

impl fmt::Debug for ProxyHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHandler")
            .field("listen", &self.listen)
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .finish()
    }
}

impl ProxyHandler {
    pub(crate) fn new(
        site: Arc<Site>,
        listen: SocketAddr,
        local: SocketAddr,
        peer: Option<SocketAddr>,
        tls: bool,
    ) -> ProxyHandler {
        ProxyHandler {
            site,
            listen,
            local,
            peer,
            tls,
        }
    }

    fn scheme(&self) -> Scheme {
        if self.tls {
            Scheme::Https
        } else {
            Scheme::Http
        }
    }

    async fn route(&self, head: &RequestHead, body: &mut RequestBody<'_>) -> Answered {
        let host = host_name(head.host().unwrap_or_default());
        let Some(server) = self.site.config.server_for(self.listen, &host) else {
            return error(404);
        };
        let target = origin_form(head.raw_target());
        let (raw_path, query) = split_target(target);
        let Ok(uri) = document_uri(raw_path) else {
            return error(400);
        };
        let Some(location) = server.location_for(&uri) else {
            return error(404);
        };
        match &location.action {
            Action::Redirect { to, status } => {
                let host = if host.is_empty() {
                    server.primary_name()
                } else {
                    &*host
                };
                let uri = String::from_utf8_lossy(target);
                let to = expand_redirect(to, host, &uri, self.scheme().as_str());
                let Ok(mut rh) = ResponseHead::new(*status) else {
                    return error(500);
                };
                if rh.append("Location", to).is_err() {
                    return error(400);
                }
                let _ = rh.append("Content-Type", "text/html");
                (rh, Either::Left(Full::new(page(*status))))
            }
            Action::Static { files, fallback } => {
                match static_serve::serve(
                    files,
                    head,
                    raw_path,
                    query,
                    self.site.options.static_inline,
                )
                .await
                {
                    StaticAnswer::Response(rh, b) => (rh, b),
                    StaticAnswer::Status(s) => error(s),
                    StaticAnswer::NotFound => match fallback {
                        Some(name) => self.proxy(server, name, None, head, body).await,
                        None => error(404),
                    },
                }
            }
            Action::Uwsgi {
                upstream,
                script_name,
            } => {
                self.proxy(server, upstream, script_name.as_deref(), head, body)
                    .await
            }
            Action::Http { upstream } => self.proxy(server, upstream, None, head, body).await,
        }
    }

    async fn proxy(
        &self,
        server: &ServerBlock,
        name: &str,
        script_name: Option<&str>,
        head: &RequestHead,
        body: &mut RequestBody<'_>,
    ) -> Answered {
        let site = &self.site;
        let Some(up) = site.upstreams.get(name) else {
            tracing::error!("no upstream named {name:?}");
            return error(502);
        };
        let max = match server.client_max_body_size {
            0 => u64::MAX,
            n => n,
        };
        let spool = match head.body_length() {
            BodyLength::Empty => Spool::Mem(Bytes::new()),
            _ => match Spool::read(body, site.options.body_buffer, max).await {
                Ok(s) => s,
                // The driver answers client faults itself (400/408/413).
                Err(SpoolError::Client(e)) => return error(e.status().unwrap_or(400)),
                Err(SpoolError::TooLarge) => return error(413),
                Err(SpoolError::Io(e)) => {
                    tracing::error!("buffering the request body: {e}");
                    return error(500);
                }
            },
        };
        // The body goes upstream de-chunked with a length: a `Transfer-Encoding` var would
        // make uWSGI read it as chunked (HTTP upstreams drop the field anyway).
        let fields: Vec<(&[u8], &[u8])> = head
            .fields()
            .filter(|f| !f.raw_name().eq_ignore_ascii_case(b"transfer-encoding"))
            .map(|f| (f.raw_name(), f.value()))
            .collect();
        let body_length = match head.body_length() {
            BodyLength::Empty if head.field("content-length").is_none() => None,
            _ => Some(spool.len()),
        };
        let info = RequestInfo {
            method: head.raw_method(),
            target: head.raw_target(),
            protocol: head.version().as_str().as_bytes(),
            fields: &fields,
            peer: self.peer,
            local: Some(self.local),
            scheme: self.scheme(),
            body_length,
        };
        let mut request = BytesMut::with_capacity(1024);
        match up.protocol {
            UpstreamProtocol::Uwsgi => {
                let mut params = UwsgiParams::new();
                params.server_name(server.primary_name());
                if let Some(s) = script_name {
                    params.script_name(Some(s.as_bytes().to_vec()), false);
                }
                if let Err(e) = params.encode(&info, &mut request) {
                    tracing::error!("{e}");
                    return error(e.status());
                }
            }
            UpstreamProtocol::Http => {
                let fwd = forwarded(
                    self.peer.map(|p| p.ip()),
                    self.scheme(),
                    &fields,
                    &server.trusted_proxies,
                );
                let host = host_var(&info, server.primary_name().as_bytes());
                if encode_http_request(&info, &host, &fwd, &mut request).is_err() {
                    return error(400);
                }
            }
        }
        let policy = RetryPolicy::new();
        // One clock read for the first attempt's bookkeeping (server choice, idle
        // connection age, success); retries and failures read the clock again.
        let started = Instant::now();
        let mut now = started;
        let mut tried = lock(&up.pool).attempt();
        let mut last: Option<AttemptError> = None;
        loop {
            let picked = {
                let mut pool = lock(&up.pool);
                pool.select(&mut tried, now)
                    .map(|id| (id, pool.addr(id).clone()))
            };
            let Some((peer, addr)) = picked else {
                if last.is_none() {
                    tracing::error!(upstream = name, "no live upstreams");
                }
                break;
            };
            let attempt =
                upstream::attempt(site, up, peer, &addr, &request, &spool, head.is_head(), now);
            match attempt.await {
                Ok(answer) => {
                    // A streamed body reports to the pool when it ends.
                    if matches!(answer.body, Either::Left(_)) {
                        lock(&up.pool).finish(peer, Outcome::Success, now);
                    }
                    return respond(answer);
                }
                Err(e) => {
                    now = Instant::now();
                    lock(&up.pool).finish(peer, Outcome::Failure, now);
                    tracing::error!(upstream = name, server = %addr, "{}", e.cause);
                    let retry = policy.may_retry(
                        head.raw_method(),
                        e.failure,
                        e.sent,
                        tried.count(),
                        started,
                        now,
                    );
                    last = Some(e);
                    if !retry {
                        break;
                    }
                }
            }
        }
        error(last.map_or(502, |e| e.failure.status()))
    }
}

impl Handler for ProxyHandler {
    type Body = ProxyBody;

    async fn call(&self, req: Request<'_>) -> Response<ProxyBody> {
        let Request { head, mut body } = req;
        // The log line's request data is captured only when the `access` target is on.
        let entry = tracing::enabled!(target: "access", tracing::Level::INFO)
            .then(|| Box::new(AccessEntry::new(&head, self.peer)));
        let (rh, b) = self.route(&head, &mut body).await;
        let status = rh.status();
        Response::new(rh, Logged::new(b, entry, status))
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// nginx's `$host`: the host without the port, lower-case (borrowed when it already is).
fn host_name(raw: &[u8]) -> Cow<'_, str> {
    let host = if raw.first() == Some(&b'[') {
        match raw.iter().position(|&b| b == b']') {
            Some(end) => &raw[..=end],
            None => raw,
        }
    } else {
        match raw.iter().rposition(|&b| b == b':') {
            Some(i) if raw[i + 1..].iter().all(u8::is_ascii_digit) => &raw[..i],
            _ => raw,
        }
    };
    match std::str::from_utf8(host) {
        Ok(h) if !h.bytes().any(|b| b.is_ascii_uppercase()) => Cow::Borrowed(h),
        _ => Cow::Owned(String::from_utf8_lossy(host).to_ascii_lowercase()),
    }
}

/// Fields of an upstream response that are not passed on (nginx's `proxy_hide_header`
/// defaults; `Date` and `Server` are replaced by ours).
fn hidden(name: &str) -> bool {
    name.eq_ignore_ascii_case("date")
        || name.eq_ignore_ascii_case("server")
        || name.eq_ignore_ascii_case("x-pad")
        || name.len() >= 8 && name[..8].eq_ignore_ascii_case("x-accel-")
}

fn respond(answer: Answer) -> Answered {
    let h = &answer.head;
    let Ok(mut rh) = ResponseHead::new(h.status) else {
        return error(502);
    };
    if !h.reason().is_empty() {
        let _ = rh.set_reason(h.reason());
    }
    for (name, value) in h.fields() {
        if hidden(name) {
            continue;
        }
        if rh.append(name, value).is_err() {
            tracing::error!("upstream sent an invalid header field {name:?}");
            return error(502);
        }
    }
    if let (Some(n), BodyFraming::Length(_) | BodyFraming::None) = (h.content_length, h.framing) {
        if rh.set_content_length(n).is_err() {
            return error(502);
        }
    }
    match (h.framing, h.content_length) {
        (BodyFraming::None, Some(n)) if n > 0 => (rh, super::no_body()),
        _ => (rh, answer.body),
    }
}

fn page(status: u16) -> Bytes {
    let reason = http_front::response::reason_phrase(status);
    Bytes::from(format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>ferrule-proxy</center>\r\n</body>\r\n</html>\r\n"
    ))
}

/// An error page with `status`.
fn error(status: u16) -> Answered {
    let mut rh = ResponseHead::new(status)
        .or_else(|_| ResponseHead::new(500))
        .expect("invariant: 500 is a valid status");
    let _ = rh.append("Content-Type", "text/html");
    (rh, Either::Left(Full::new(page(status))))
}
