//! The 4-byte packet header and the modifier1 table.

use std::fmt;

use bytes::BufMut;

use crate::Error;

/// Length of a uwsgi packet header, in bytes.
pub const HEADER_LEN: usize = 4;

/// The largest `datasize` a header can carry, in bytes (a little-endian `u16`).
pub const MAX_DATASIZE: u16 = u16::MAX;

/// `modifier2` of a pong: the reply to a ping (modifier1 100).
pub const MODIFIER2_PONG: u8 = 1;

/// The packet type in byte 0 of the header.
///
/// A newtype over the raw byte so that values this crate has no name for stay
/// representable. Names follow uWSGI's `Protocol.rst` table and `uwsgi.h`; see
/// `reference/uwsgi-protocol.md` §2.1. Only a few of them matter to a WSGI server:
/// [`WSGI`](Self::WSGI) (0, what nginx sends), [`PING`](Self::PING) (100) and
/// [`RESPONSE`](Self::RESPONSE) (255).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Modifier1(pub u8);

macro_rules! modifier1_table {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, )*) => {
        impl Modifier1 {
            $( $(#[$doc])* pub const $name: Modifier1 = Modifier1($value); )*

            /// The constant's name for a known value (`"WSGI"`, `"PING"`, …), `None` otherwise.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($name)), )*
                    _ => None,
                }
            }
        }
    };
}

modifier1_table! {
    /// 0: WSGI/Python request (vars, then the body). What nginx's `uwsgi_pass` sends by default.
    WSGI = 0,
    /// 5: PSGI (Perl) request.
    PSGI = 5,
    /// 6: Lua WSAPI request.
    LUA = 6,
    /// 7: Rack (Ruby) request.
    RACK = 7,
    /// 8: JVM (JWSGI/Ring) request.
    JVM = 8,
    /// 9: CGI request.
    CGI = 9,
    /// 10: management request (flag in modifier2).
    MANAGEMENT = 10,
    /// 11: gccgo plugin.
    GCCGO = 11,
    /// 14: PHP request.
    PHP = 14,
    /// 15: Mono ASP.NET request.
    MONO = 15,
    /// 17: spooler request; the vars become the spooler's dict. Reply: modifier1 255.
    SPOOLER = 17,
    /// 18: symcall (call a C symbol).
    SYMCALL = 18,
    /// 19: SSI plugin.
    SSI = 19,
    /// 22: raw code eval (modifier2 0 Python, 5 Perl); the reply is not uwsgi-framed.
    EVAL = 22,
    /// 23: XSLT plugin.
    XSLT = 23,
    /// 24: V8 plugin.
    V8 = 24,
    /// 25: GridFS plugin.
    GRIDFS = 25,
    /// 26: fastfuncs (`UWSGI_MODIFIER_FASTFUNC` in `uwsgi.h`).
    FASTFUNC = 26,
    /// 27: GlusterFS plugin.
    GLUSTERFS = 27,
    /// 28: Rados plugin.
    RADOS = 28,
    /// 30: WSGI request with "strip SCRIPT_NAME from PATH_INFO" (deprecated; a no-op in
    /// uWSGI 2.0 under Python 3).
    WSGI_STRIP_SCRIPT_NAME = 30,
    /// 31: message passing, generic.
    MESSAGE = 31,
    /// 32: message passing, char array.
    MESSAGE_ARRAY = 32,
    /// 33: message passing, marshalled object.
    MESSAGE_MARSHAL = 33,
    /// 35: WebDAV plugin (also the emperor's internal channel).
    WEBDAV = 35,
    /// 48: SNMP.
    SNMP = 48,
    /// 72: `'H'`, the first byte of `HTTP/`: an HTTP *response* read as a uwsgi header.
    HTTP_RESPONSE_MARK = 72,
    /// 73: multicast announce.
    MULTICAST_ANNOUNCE = 73,
    /// 74: custom multicast message.
    MULTICAST = 74,
    /// 95: cluster membership (modifier2: 0 add, 1 remove, 2 enable, 3 disable).
    CLUSTER_NODE = 95,
    /// 96: remote logging.
    REMOTE_LOGGING = 96,
    /// 97: brutal reload.
    RELOAD_BRUTAL = 97,
    /// 98: graceful reload.
    RELOAD_GRACEFUL = 98,
    /// 99: configuration request.
    CONFIG = 99,
    /// 100: ping (modifier2 0, datasize 0); the pong has modifier2 1 and optional warning text.
    PING = 100,
    /// 101: echo; the payload comes back raw, with no header.
    ECHO = 101,
    /// 109: legion message.
    LEGION = 109,
    /// 110: signal (modifier2 = signal number). Reply: modifier1 255.
    SIGNAL = 110,
    /// 111: cache operation (modifier2: 0 get, 1 set, 2 del, …); payload is a key or an array.
    CACHE = 111,
    /// 123: corerouter special condition.
    CORE_ROUTER_SIGNAL = 123,
    /// 173: RPC; the payload is a [uwsgi array](crate::Array) (function name, then arguments).
    RPC = 173,
    /// 200: close mark for persistent connections.
    PERSISTENT_CLOSE = 200,
    /// 224: subscription packet.
    SUBSCRIPTION = 224,
    /// 250: example / C++ plugins.
    EXAMPLE = 250,
    /// 255: generic response (meaning depends on the request; status in modifier2).
    RESPONSE = 255,
}

impl Modifier1 {
    /// Whether packets of this type are HTTP-style requests: the payload is a vars block
    /// and a body framed by `CONTENT_LENGTH` follows it on the stream.
    ///
    /// True for the language handlers (0, 5, 6, 7, 8, 9, 14, 15) and for 30. Other packet
    /// types carry their own payload (RPC arrays, cache keys, nothing for ping) and no body.
    pub const fn is_request(self) -> bool {
        matches!(self.0, 0 | 5 | 6 | 7 | 8 | 9 | 14 | 15 | 30)
    }
}

impl fmt::Debug for Modifier1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Modifier1::{name}"),
            None => write!(f, "Modifier1({})", self.0),
        }
    }
}

impl fmt::Display for Modifier1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<u8> for Modifier1 {
    fn from(value: u8) -> Self {
        Modifier1(value)
    }
}

impl From<Modifier1> for u8 {
    fn from(value: Modifier1) -> Self {
        value.0
    }
}

/// The 4-byte header that starts every uwsgi packet.
///
/// Wire layout (`struct uwsgi_header` in `uwsgi.h`, packed): byte 0 `modifier1`, bytes 1–2
/// `datasize` as a **little-endian** `u16`, byte 3 `modifier2`. For request packets
/// `datasize` covers only the vars block; the body follows it unframed.
///
/// ```
/// use uwsgi_proto::{Header, Modifier1};
///
/// let header = Header::decode(&[0, 0x2c, 0x01, 0]).unwrap();
/// assert_eq!(header.modifier1, Modifier1::WSGI);
/// assert_eq!(header.datasize, 300);
/// assert_eq!(header.encode(), [0, 0x2c, 0x01, 0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// Packet type (byte 0).
    pub modifier1: Modifier1,
    /// Length of the payload that follows the header, in bytes (bytes 1–2, little-endian).
    pub datasize: u16,
    /// Subtype (byte 3); 0 for ordinary requests.
    pub modifier2: u8,
}

impl Header {
    /// A header with the given fields.
    pub const fn new(modifier1: Modifier1, datasize: u16, modifier2: u8) -> Header {
        Header {
            modifier1,
            datasize,
            modifier2,
        }
    }

    /// The header of a ping request: modifier1 100, datasize 0, modifier2 0.
    pub const fn ping() -> Header {
        Header::new(Modifier1::PING, 0, 0)
    }

    /// The header of a pong: modifier1 100, modifier2 1, datasize = length of the warning
    /// text that follows (0 for a healthy server; `uwsgi --ping` then exits 0).
    pub const fn pong(warning_len: u16) -> Header {
        Header::new(Modifier1::PING, warning_len, MODIFIER2_PONG)
    }

    /// Reads a header from the first [`HEADER_LEN`] bytes of `buf`.
    ///
    /// Returns `None` when `buf` holds fewer than 4 bytes. Any 4 bytes are a valid header;
    /// deciding whether the values are acceptable is the decoder's job. O(1), no allocation.
    pub fn decode(buf: &[u8]) -> Option<Header> {
        let (&[m1, lo, hi, m2], _) = buf.split_first_chunk::<HEADER_LEN>()?;
        Some(Header {
            modifier1: Modifier1(m1),
            datasize: u16::from_le_bytes([lo, hi]),
            modifier2: m2,
        })
    }

    /// The header's 4 wire bytes.
    pub const fn encode(&self) -> [u8; HEADER_LEN] {
        let [lo, hi] = self.datasize.to_le_bytes();
        [self.modifier1.0, lo, hi, self.modifier2]
    }

    /// Appends the header's 4 wire bytes to `dst`.
    pub fn write<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(&self.encode());
    }
}

/// Recognises the start of another protocol sent to a uwsgi socket by mistake.
///
/// Looks at up to the first 4 bytes of a connection and returns [`Error::LooksLikeHttp`] for
/// the start of an HTTP/1 request (`GET `, `HEAD`, `POST`, `PUT `, `DELE`, `OPTI`, `PATC`,
/// `CONN`, `TRAC`), the HTTP/2 preface (`PRI `) or an HTTP response (`HTTP`), and
/// [`Error::LooksLikeTls`] for a TLS handshake record (`0x16 0x03` then a version byte up to
/// 4). Returns `None` for anything else, including fewer than 4 bytes.
///
/// This is a heuristic: any 4 bytes are also a valid uwsgi header, so a packet whose header
/// spells one of these (modifier1 71 `'G'`, 72 `'H'`, 80 `'P'`, … or 22 with a `datasize`
/// whose low byte is 3) is reported too. No packet nginx or uWSGI's HTTP router sends can
/// match (their modifier1 is 0). [`Limits::sniff_foreign`](crate::Limits::sniff_foreign)
/// turns the check off in the decoder.
pub fn sniff_foreign_protocol(buf: &[u8]) -> Option<Error> {
    const HTTP: [&[u8; 4]; 11] = [
        b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC", b"PRI ",
        b"HTTP",
    ];
    let (first, _) = buf.split_first_chunk::<4>()?;
    if HTTP.contains(&first) {
        return Some(Error::LooksLikeHttp);
    }
    match first {
        [0x16, 0x03, 0..=4, _] => Some(Error::LooksLikeTls),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_little_endian() {
        let h = Header::new(Modifier1(30), 500, 7);
        assert_eq!(h.encode(), [30, 0xf4, 0x01, 7]);
        assert_eq!(Header::decode(&h.encode()), Some(h));
        assert_eq!(Header::decode(&[1, 2, 3]), None);
    }

    #[test]
    fn get_reads_as_datasize_21573() {
        let h = Header::decode(b"GET / HTTP/1.1").unwrap();
        assert_eq!(h.datasize, 21573);
        assert_eq!(
            sniff_foreign_protocol(b"GET / HTTP/1.1"),
            Some(Error::LooksLikeHttp)
        );
        assert_eq!(
            sniff_foreign_protocol(b"POST /"),
            Some(Error::LooksLikeHttp)
        );
        assert_eq!(
            sniff_foreign_protocol(b"PRI * HTTP/2.0"),
            Some(Error::LooksLikeHttp)
        );
        assert_eq!(
            sniff_foreign_protocol(&[0x16, 0x03, 0x01, 0x02]),
            Some(Error::LooksLikeTls)
        );
        assert_eq!(sniff_foreign_protocol(&[0, 0x10, 0, 0]), None);
        assert_eq!(sniff_foreign_protocol(b"GE"), None);
        assert_eq!(
            sniff_foreign_protocol(b"HTTP/1.1 200 OK"),
            Some(Error::LooksLikeHttp)
        );
        // Other upper-case letters and TLS-like bytes with an impossible version are uwsgi.
        assert_eq!(sniff_foreign_protocol(b"IJKL"), None);
        assert_eq!(sniff_foreign_protocol(&[0x16, 0x03, 0x09, 0x00]), None);
    }

    #[test]
    fn modifier_names() {
        assert_eq!(Modifier1::PING.name(), Some("PING"));
        assert_eq!(format!("{:?}", Modifier1(173)), "Modifier1::RPC");
        assert_eq!(format!("{:?}", Modifier1(3)), "Modifier1(3)");
        assert!(Modifier1::WSGI.is_request());
        assert!(!Modifier1::PING.is_request());
    }
}
