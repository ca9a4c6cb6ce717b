//! The uwsgi vars for an upstream request, exactly as nginx's stock `uwsgi_params` builds
//! them (`reference/uwsgi-protocol.md` §4.2–4.3).
//!
//! Order and content, as Debian's `/etc/nginx/uwsgi_params` (nginx-common 1.22.1-9+deb12u10)
//! plus nginx ≥ 1.23's joining of repeated fields:
//!
//! | var | value |
//! |---|---|
//! | `QUERY_STRING` | the raw query (after the first `?`), empty when none |
//! | `REQUEST_METHOD` | the method |
//! | `CONTENT_TYPE` | the `Content-Type` field, **empty** when absent |
//! | `CONTENT_LENGTH` | the decoded body length, **empty** when the request had no body framing |
//! | `REQUEST_URI` | the raw target (origin-form part of an absolute-form target) |
//! | `PATH_INFO` | the decoded, normalised path (nginx's `$document_uri`) |
//! | `DOCUMENT_ROOT` | the configured document root |
//! | `SERVER_PROTOCOL` | `HTTP/1.0` or `HTTP/1.1` |
//! | `REQUEST_SCHEME` | `http` or `https` |
//! | `HTTPS` | `on`, only for https (`if_not_empty`) |
//! | `REMOTE_ADDR`, `REMOTE_PORT` | the peer (`unix:` and empty for a unix socket) |
//! | `SERVER_PORT`, `SERVER_NAME` | the local port and the server's first `server_name` |
//! | `HTTP_HOST` | nginx's `$host`: request-line host, else `Host` without port, lower-cased, else `SERVER_NAME` |
//! | `SCRIPT_NAME` | only when configured (`uwsgi_param SCRIPT_NAME /app;`) |
//! | extra params | as configured |
//! | `HTTP_*` | each request field: `HTTP_` + name upper-cased with `-` → `_`; repeated fields joined with `", "` (`Cookie` with `"; "`) at the first one's position; fields whose var a param already sets (`HTTP_HOST`) left out |
//!
//! `Content-Length` and `Content-Type` also go out as `HTTP_CONTENT_LENGTH` /
//! `HTTP_CONTENT_TYPE`, and `Transfer-Encoding` as `HTTP_TRANSFER_ENCODING`, as nginx does;
//! the upstream must frame the body by `CONTENT_LENGTH`. Field names containing `_` are
//! left out by default (nginx's `underscores_in_headers off`), so `X_Forwarded_For` cannot
//! pose as `X-Forwarded-For`.

use std::borrow::Cow;
use std::net::SocketAddr;

use bytes::BytesMut;
use thiserror::Error;
use uwsgi_proto::{EncodeError, Modifier1, encode_request, vars_len};

use crate::path::{PathError, document_uri, split_target};

/// The scheme of the client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// Plain HTTP.
    #[default]
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A client request as plain data, independent of any HTTP library's types.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The method, e.g. `b"GET"`.
    pub method: &'a [u8],
    /// The raw request-target as received (`/a%20b?x=1`, or absolute-form).
    pub target: &'a [u8],
    /// The protocol of the request line, e.g. `b"HTTP/1.1"`.
    pub protocol: &'a [u8],
    /// The request's header fields in arrival order, as `(name, value)` byte pairs.
    pub fields: &'a [(&'a [u8], &'a [u8])],
    /// The client's address; `None` for a unix-socket client.
    pub peer: Option<SocketAddr>,
    /// The local (listening) address; `None` for a unix socket.
    pub local: Option<SocketAddr>,
    /// The connection's scheme.
    pub scheme: Scheme,
    /// The decoded length of the (buffered) request body, in bytes; `None` when the request
    /// had neither `Content-Length` nor `Transfer-Encoding`. A chunked body gives its
    /// de-chunked length, as nginx's `$content_length` does once the body is read.
    pub body_length: Option<u64>,
}

impl<'a> RequestInfo<'a> {
    /// The first field named `name` (ASCII case-insensitive).
    pub fn field(&self, name: &str) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|&(_, v)| v)
    }
}

/// A failure to build the vars.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The request path cannot be decoded (nginx answers 400 before any upstream work).
    #[error("bad request path: {0}")]
    Path(#[from] PathError),
    /// The vars block is over 65535 bytes; nginx logs `uwsgi request is too big` and
    /// answers 500 without connecting.
    #[error("uwsgi request is too big: {size} bytes of vars (the limit is 65535)")]
    TooLarge {
        /// The size the vars block would have, in bytes.
        size: usize,
    },
    /// A configured extra param has an empty name.
    #[error("a uwsgi param has an empty name")]
    EmptyKey,
    /// Another encoding failure reported by `uwsgi-proto`.
    #[error("cannot encode the uwsgi request: {0}")]
    Encode(EncodeError),
}

impl ParamsError {
    /// The HTTP status to answer the client with: 400 for a bad path, 500 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            ParamsError::Path(_) => 400,
            _ => 500,
        }
    }
}

impl From<EncodeError> for ParamsError {
    fn from(e: EncodeError) -> ParamsError {
        match e {
            EncodeError::PayloadTooLarge { size } => ParamsError::TooLarge { size },
            EncodeError::EmptyKey => ParamsError::EmptyKey,
            other => ParamsError::Encode(other),
        }
    }
}

/// One var: a name (mostly static) and a value (mostly borrowed from the request).
pub type Var<'a> = (Cow<'static, [u8]>, Cow<'a, [u8]>);

/// The per-location settings that shape the vars (nginx's `uwsgi_param` lines, the
/// server's `root` and `server_name`, `uwsgi_modifier1/2`).
#[derive(Debug, Clone)]
pub struct UwsgiParams {
    document_root: Vec<u8>,
    server_name: Vec<u8>,
    script_name: Option<Vec<u8>>,
    strip_script_name: bool,
    extra: Vec<(Vec<u8>, Vec<u8>)>,
    underscores: bool,
    modifier1: Modifier1,
    modifier2: u8,
}

impl Default for UwsgiParams {
    fn default() -> UwsgiParams {
        UwsgiParams::new()
    }
}

impl UwsgiParams {
    /// Settings with nginx's defaults: see each setter.
    pub fn new() -> UwsgiParams {
        UwsgiParams {
            document_root: b"/usr/share/nginx/html".to_vec(),
            server_name: Vec::new(),
            script_name: None,
            strip_script_name: false,
            extra: Vec::new(),
            underscores: false,
            modifier1: Modifier1::WSGI,
            modifier2: 0,
        }
    }

    /// `DOCUMENT_ROOT`. Default is `/usr/share/nginx/html` (Debian nginx's compiled-in
    /// `root`).
    pub fn document_root(&mut self, root: impl Into<Vec<u8>>) -> &mut Self {
        self.document_root = root.into();
        self
    }

    /// `SERVER_NAME` (the server's first `server_name`), also the `HTTP_HOST` of a request
    /// without a host. Default is empty (nginx's `server_name ""`).
    pub fn server_name(&mut self, name: impl Into<Vec<u8>>) -> &mut Self {
        self.server_name = name.into();
        self
    }

    /// `SCRIPT_NAME`, the mount point of the app (`uwsgi_param SCRIPT_NAME /app;`). With
    /// `strip` the prefix is also cut from `PATH_INFO` when it matches at a `/` boundary
    /// (PEP 3333's split); without it `PATH_INFO` stays the full path, as with nginx, and
    /// the app server splits (ferrule's `mount`, uWSGI's `manage-script-name`).
    /// Default is none.
    pub fn script_name(&mut self, prefix: Option<Vec<u8>>, strip: bool) -> &mut Self {
        self.script_name = prefix;
        self.strip_script_name = strip;
        self
    }

    /// Adds a constant var after the stock ones (`uwsgi_param NAME VALUE;`). A name
    /// starting with `HTTP_` replaces the request field of that name, as in nginx.
    /// Default is none.
    pub fn param(&mut self, name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Whether fields with `_` in their name are passed (`underscores_in_headers`).
    /// Default is `false`.
    pub fn underscores(&mut self, pass: bool) -> &mut Self {
        self.underscores = pass;
        self
    }

    /// The packet header's modifier1 and modifier2 (`uwsgi_modifier1/2`). Default is
    /// 0 ([`Modifier1::WSGI`]) and 0.
    pub fn modifiers(&mut self, modifier1: Modifier1, modifier2: u8) -> &mut Self {
        self.modifier1 = modifier1;
        self.modifier2 = modifier2;
        self
    }

    /// Builds the vars in wire order (see the module docs). Repeated fields are joined
    /// as `ngx_http_uwsgi_create_request` does since nginx 1.23 (Debian 12's 1.22.1 sends
    /// repeated keys instead; uWSGI keeps the last, so joining loses nothing).
    ///
    /// About 20 small allocations per request; values borrow from `req` where they can.
    ///
    /// # Errors
    ///
    /// [`ParamsError::Path`] when the path cannot be decoded.
    pub fn vars<'a>(&self, req: &RequestInfo<'a>) -> Result<Vec<Var<'a>>, ParamsError> {
        let (raw_path, query) = split_target(req.target);
        let mut path_info = document_uri(raw_path)?;
        if let (Some(script), true) = (&self.script_name, self.strip_script_name) {
            let script = script.strip_suffix(b"/").unwrap_or(script);
            if path_info.starts_with(script)
                && matches!(path_info.get(script.len()), None | Some(b'/'))
            {
                path_info.to_mut().drain(..script.len());
            }
        }
        let content_length: Cow<'a, [u8]> = match req.body_length {
            Some(n) => Cow::Owned(n.to_string().into_bytes()),
            None => Cow::Borrowed(b""),
        };
        let (remote_addr, remote_port) = match req.peer {
            Some(a) => (a.ip().to_string(), a.port().to_string()),
            None => ("unix:".to_owned(), String::new()),
        };
        let server_port = req.local.map(|a| a.port().to_string()).unwrap_or_default();
        let content_type = joined(req.fields, b"content-type", b", ");

        let mut vars: Vec<Var<'a>> = Vec::with_capacity(20 + req.fields.len());
        let mut push =
            |k: &'static str, v: Cow<'a, [u8]>| vars.push((Cow::Borrowed(k.as_bytes()), v));
        push("QUERY_STRING", Cow::Borrowed(query.unwrap_or_default()));
        push("REQUEST_METHOD", Cow::Borrowed(req.method));
        push("CONTENT_TYPE", content_type.unwrap_or(Cow::Borrowed(b"")));
        push("CONTENT_LENGTH", content_length);
        push(
            "REQUEST_URI",
            Cow::Borrowed(crate::path::origin_form(req.target)),
        );
        push("PATH_INFO", path_info);
        push("DOCUMENT_ROOT", Cow::Owned(self.document_root.clone()));
        push("SERVER_PROTOCOL", Cow::Borrowed(req.protocol));
        push(
            "REQUEST_SCHEME",
            Cow::Borrowed(req.scheme.as_str().as_bytes()),
        );
        if req.scheme == Scheme::Https {
            push("HTTPS", Cow::Borrowed(b"on"));
        }
        push("REMOTE_ADDR", Cow::Owned(remote_addr.into_bytes()));
        push("REMOTE_PORT", Cow::Owned(remote_port.into_bytes()));
        push("SERVER_PORT", Cow::Owned(server_port.into_bytes()));
        push("SERVER_NAME", Cow::Owned(self.server_name.clone()));
        push(
            "HTTP_HOST",
            Cow::Owned(host_var(req, &self.server_name).into_owned()),
        );
        if let Some(script) = &self.script_name {
            push("SCRIPT_NAME", Cow::Owned(script.clone()));
        }
        for (k, v) in &self.extra {
            vars.push((Cow::Owned(k.clone()), Cow::Owned(v.clone())));
        }

        // Request fields. Lines with the same name (ASCII case-insensitive) are joined at
        // the first one's position, as nginx's `ngx_http_link_multi_headers` links them;
        // `X-A` and `X_A` are different names (two keys), as in nginx.
        let mut done = vec![false; req.fields.len()];
        for (i, &(name, value)) in req.fields.iter().enumerate() {
            if done[i] || name.is_empty() || (!self.underscores && name.contains(&b'_')) {
                continue;
            }
            let key = http_var_name(name);
            if key == b"HTTP_HOST" || self.extra.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let sep: &[u8] = if name.eq_ignore_ascii_case(b"cookie") {
                b"; "
            } else {
                b", "
            };
            let mut value: Cow<'a, [u8]> = Cow::Borrowed(value);
            for (j, &(other, more)) in req.fields.iter().enumerate().skip(i + 1) {
                if !done[j] && name.eq_ignore_ascii_case(other) {
                    done[j] = true;
                    let v = value.to_mut();
                    v.extend_from_slice(sep);
                    v.extend_from_slice(more);
                }
            }
            vars.push((Cow::Owned(key), value));
        }
        Ok(vars)
    }

    /// Builds the vars and appends the request packet (4-byte header + vars) to `dst`
    /// with one reservation. The body, `CONTENT_LENGTH` bytes, is the caller's to send
    /// after it.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use proxy_core::uwsgi_params::{RequestInfo, Scheme, UwsgiParams};
    /// use uwsgi_proto::{Limits, Vars};
    ///
    /// let fields: [(&[u8], &[u8]); 2] = [(b"Host", b"Example.org:8080"), (b"Cookie", b"a=1")];
    /// let req = RequestInfo {
    ///     method: b"GET",
    ///     target: b"/w%20rld?x=1",
    ///     protocol: b"HTTP/1.1",
    ///     fields: &fields,
    ///     peer: Some("192.0.2.7:40000".parse().unwrap()),
    ///     local: Some("192.0.2.1:80".parse().unwrap()),
    ///     scheme: Scheme::Http,
    ///     body_length: None,
    /// };
    /// let mut dst = BytesMut::new();
    /// UwsgiParams::new().server_name("example.org").encode(&req, &mut dst)?;
    /// let vars = Vars::parse(&dst[4..], &Limits::default()).unwrap();
    /// assert_eq!(vars.get(b"PATH_INFO"), Some(&b"/w rld"[..]));
    /// assert_eq!(vars.get(b"REQUEST_URI"), Some(&b"/w%20rld?x=1"[..]));
    /// assert_eq!(vars.get(b"HTTP_HOST"), Some(&b"example.org"[..]));
    /// assert_eq!(vars.get(b"CONTENT_LENGTH"), Some(&b""[..]));
    /// # Ok::<(), proxy_core::uwsgi_params::ParamsError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ParamsError::Path`] (400), [`ParamsError::TooLarge`] (500, nothing written) and
    /// [`ParamsError::EmptyKey`] (500).
    pub fn encode(&self, req: &RequestInfo<'_>, dst: &mut BytesMut) -> Result<(), ParamsError> {
        let vars = self.vars(req)?;
        let size = vars_len(&vars);
        if size > usize::from(u16::MAX) {
            return Err(ParamsError::TooLarge { size });
        }
        encode_request(self.modifier1, self.modifier2, &vars, dst)?;
        Ok(())
    }
}

/// `HTTP_` + the name with `a-z` upper-cased and `-` turned into `_` (nginx's mapping;
/// other bytes are kept).
pub fn http_var_name(name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(5 + name.len());
    key.extend_from_slice(b"HTTP_");
    key.extend(name.iter().map(|&b| match b {
        b'-' => b'_',
        _ => b.to_ascii_uppercase(),
    }));
    key
}

/// All values of the field `lower_name`, joined with `sep`; `None` when absent.
fn joined<'a>(
    fields: &[(&'a [u8], &'a [u8])],
    lower_name: &[u8],
    sep: &[u8],
) -> Option<Cow<'a, [u8]>> {
    let mut out: Option<Cow<'a, [u8]>> = None;
    for &(n, v) in fields {
        if n.eq_ignore_ascii_case(lower_name) {
            match &mut out {
                None => out = Some(Cow::Borrowed(v)),
                Some(existing) => {
                    let e = existing.to_mut();
                    e.extend_from_slice(sep);
                    e.extend_from_slice(v);
                }
            }
        }
    }
    out
}

/// nginx's `$host`: the host of an absolute-form target, else the `Host` field, lower-cased
/// without the port and a trailing dot, else the server name. Borrowed unless it had to be
/// lower-cased.
pub fn host_var<'a>(req: &RequestInfo<'a>, server_name: &'a [u8]) -> Cow<'a, [u8]> {
    let target = req.target;
    let authority = ["http://", "https://"].iter().find_map(|scheme| {
        let s = scheme.as_bytes();
        (target.len() > s.len() && target[..s.len()].eq_ignore_ascii_case(s)).then(|| {
            let rest = &target[s.len()..];
            let end = rest
                .iter()
                .position(|&b| b == b'/' || b == b'?')
                .unwrap_or(rest.len());
            &rest[..end]
        })
    });
    let Some(host) = authority.or_else(|| req.field("host")) else {
        return Cow::Borrowed(server_name);
    };
    let host = strip_port(host);
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() {
        return Cow::Borrowed(server_name);
    }
    if host.iter().any(u8::is_ascii_uppercase) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// `example.org:8080` → `example.org`; `[::1]:8080` → `[::1]`.
fn strip_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}
