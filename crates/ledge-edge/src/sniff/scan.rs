//! An incremental HTTP/1 request framer: follows request heads and bodies byte by byte (body
//! data in bulk) and says where each head starts, whether it may pass, and where the
//! connection's framing is lost.
//!
//! It is deliberately stricter than hyper's parser: anything whose framing could be read two
//! ways (§1 of the edge semantics: CL+TE, two `Content-Length`s, a `Transfer-Encoding` other
//! than exactly `chunked`, whitespace before a colon, folded lines) is refused, so hyper only
//! ever sees heads both parsers frame the same way. The state is a few counters; the only
//! allocation is for a header name spelled other than `Canonical-Case` (functions see names
//! as spelled on the wire, which hyper does not keep).

/// Names longer than this keep CloudFront's capitalisation in events.
const MAX_SPELLED_NAME: usize = 64;

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Request line + headers over the head limit (413).
    HeadTooLarge,
    /// The request target over the URL limit (413).
    UrlTooLong,
    /// A malformed request line (400).
    BadRequestLine,
    /// A request target with bytes outside ASCII that are not UTF-8 (400): hyper takes raw
    /// UTF-8 but refuses anything else with a bare 400, without CloudFront's page.
    TargetNotUtf8,
    /// A malformed header line: bad name, whitespace before the colon, control bytes (400).
    BadHeader,
    /// A header continued on the next line (obsolete line folding, 400).
    FoldedHeader,
    /// `Content-Length` together with `Transfer-Encoding` (400).
    ContentLengthAndTransferEncoding,
    /// `Content-Length` twice, or not a plain decimal number (400).
    BadContentLength,
    /// `Transfer-Encoding` twice, or anything but `chunked` (400).
    BadTransferEncoding,
    /// `Transfer-Encoding` on an HTTP/1.0 request (400).
    TransferEncodingOnHttp10,
}

impl Refusal {
    /// Whether the answer is 413 (size limits) rather than 400.
    pub fn too_large(self) -> bool {
        matches!(self, Self::HeadTooLarge | Self::UrlTooLong)
    }

    /// A short description for logs.
    pub fn reason(self) -> &'static str {
        match self {
            Self::HeadTooLarge => "request head over the limit",
            Self::UrlTooLong => "URL over the limit",
            Self::BadRequestLine => "malformed request line",
            Self::TargetNotUtf8 => "request target neither ASCII nor UTF-8",
            Self::BadHeader => "malformed header line",
            Self::FoldedHeader => "folded header line",
            Self::ContentLengthAndTransferEncoding => "CL+TE",
            Self::BadContentLength => "duplicate or invalid Content-Length",
            Self::BadTransferEncoding => "duplicate or unsupported Transfer-Encoding",
            Self::TransferEncodingOnHttp10 => "Transfer-Encoding on HTTP/1.0",
        }
    }
}

/// What a call of [`Scanner::scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// Every byte framed; bytes from [`Scanner::unchecked_from`] on (a head not yet complete)
    /// may not pass yet.
    Clean,
    /// The head starting at stream offset `at` is refused; nothing from `at` on may pass.
    Refused { at: u64, why: Refusal },
    /// A request body's framing broke at stream offset `at`; the connection must end there.
    Broken { at: u64 },
}

const CONTENT_LENGTH: &[u8] = b"content-length";
const TRANSFER_ENCODING: &[u8] = b"transfer-encoding";
const CHUNKED: &[u8] = b"chunked";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests; empty lines are skipped.
    Idle,
    Method,
    Target,
    Version,
    /// At the start of a header line, or of the empty line ending the head.
    LineStart,
    Name,
    Value,
    /// A `Content-Length` body: bytes left.
    Body(u64),
    ChunkSize,
    ChunkSizeLws,
    ChunkExt,
    ChunkSizeLf,
    ChunkData(u64),
    ChunkDataCr,
    ChunkDataLf,
    /// After the last chunk: a trailer line or the final empty line.
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
    /// An HTTP/2 connection preface went by: nothing more to frame.
    Passthrough,
    /// Refused or broken: nothing more to frame.
    Done,
}

/// Where in a header value we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValuePos {
    LeadingSpace,
    Token,
    TrailingSpace,
}

/// UTF-8 validation one byte at a time (RFC 3629: no overlong forms, no surrogates, nothing
/// above U+10FFFF), for request targets that arrive in pieces.
#[derive(Debug, Clone, Copy, Default)]
struct Utf8 {
    /// Continuation bytes still expected.
    need: u8,
    /// The range the next continuation byte must fall in.
    lo: u8,
    hi: u8,
}

impl Utf8 {
    /// Takes the next byte; false once the bytes cannot be UTF-8.
    fn push(&mut self, b: u8) -> bool {
        if self.need > 0 {
            if !(self.lo..=self.hi).contains(&b) {
                return false;
            }
            self.need -= 1;
            (self.lo, self.hi) = (0x80, 0xbf);
            return true;
        }
        let (need, lo, hi) = match b {
            0x00..=0x7f => return true,
            0xc2..=0xdf => (1, 0x80, 0xbf),
            0xe0 => (2, 0xa0, 0xbf),
            0xed => (2, 0x80, 0x9f),
            0xe1..=0xef => (2, 0x80, 0xbf),
            0xf0 => (3, 0x90, 0xbf),
            0xf1..=0xf3 => (3, 0x80, 0xbf),
            0xf4 => (3, 0x80, 0x8f),
            _ => return false,
        };
        *self = Self { need, lo, hi };
        true
    }

    /// Whether the bytes so far end on a whole character.
    fn complete(&self) -> bool {
        self.need == 0
    }
}

/// The framer of one connection.
#[derive(Debug, Clone)]
pub struct Scanner {
    max_head: u64,
    max_url: u64,
    state: State,
    /// Stream offset of the next byte.
    pos: u64,
    /// Stream offset of the current head's first byte.
    head_start: u64,
    /// Heads completed so far (the index of the next one).
    heads: u64,
    // ── the current head ──
    /// The previous byte was a CR ending a line.
    cr: bool,
    url_len: u64,
    target_utf8: Utf8,
    method_len: u8,
    /// The method is `PRI` so far and the target `*` (the HTTP/2 preface).
    pri: bool,
    version: [u8; 8],
    version_len: u8,
    http10: bool,
    content_length: Option<u64>,
    chunked: bool,
    // ── the current header line ──
    name_len: usize,
    /// The name's first bytes, and whether it differs from `Canonical-Case` so far.
    name: [u8; MAX_SPELLED_NAME],
    name_uncanonical: bool,
    /// `(head index, name)` of header names spelled otherwise than `Canonical-Case`.
    spellings: Vec<(u64, Box<str>)>,
    maybe_cl: bool,
    maybe_te: bool,
    value_pos: ValuePos,
    value_len: usize,
    number: u64,
    // ── chunked body ──
    chunk_digits: u8,
    chunk_size: u64,
}

impl Scanner {
    /// A framer refusing heads over `max_head` bytes and targets over `max_url` bytes.
    pub fn new(max_head: usize, max_url: usize) -> Self {
        Self {
            max_head: max_head as u64,
            max_url: max_url as u64,
            state: State::Idle,
            pos: 0,
            head_start: 0,
            heads: 0,
            cr: false,
            url_len: 0,
            target_utf8: Utf8::default(),
            method_len: 0,
            pri: true,
            version: [0; 8],
            version_len: 0,
            http10: false,
            content_length: None,
            chunked: false,
            name_len: 0,
            name: [0; MAX_SPELLED_NAME],
            name_uncanonical: false,
            spellings: Vec::new(),
            maybe_cl: false,
            maybe_te: false,
            value_pos: ValuePos::LeadingSpace,
            value_len: 0,
            number: 0,
            chunk_digits: 0,
            chunk_size: 0,
        }
    }

    /// Stream offset of the next byte to scan.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Heads completed (checked and passed) so far.
    pub fn heads(&self) -> u64 {
        self.heads
    }

    /// Takes the header names spelled otherwise than `Canonical-Case` seen since the last
    /// call, with the index of the head each belongs to.
    pub fn take_spellings(&mut self) -> Vec<(u64, Box<str>)> {
        std::mem::take(&mut self.spellings)
    }

    /// Where unchecked bytes start: the first byte of a head still incomplete.
    pub fn unchecked_from(&self) -> Option<u64> {
        matches!(
            self.state,
            State::Method
                | State::Target
                | State::Version
                | State::LineStart
                | State::Name
                | State::Value
        )
        .then_some(self.head_start)
    }

    /// Frames the next bytes of the stream. After a `Refused` or `Broken` it frames nothing
    /// more (and returns `Clean`).
    pub fn scan(&mut self, bytes: &[u8]) -> Scan {
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                State::Passthrough | State::Done => {
                    self.pos += (bytes.len() - i) as u64;
                    return Scan::Clean;
                }
                State::Body(left) => {
                    let n = left.min((bytes.len() - i) as u64);
                    i += n as usize;
                    self.pos += n;
                    self.state = if n == left {
                        State::Idle
                    } else {
                        State::Body(left - n)
                    };
                    continue;
                }
                State::ChunkData(left) => {
                    let n = left.min((bytes.len() - i) as u64);
                    i += n as usize;
                    self.pos += n;
                    self.state = if n == left {
                        State::ChunkDataCr
                    } else {
                        State::ChunkData(left - n)
                    };
                    continue;
                }
                _ => {}
            }
            let b = bytes[i];
            let at = self.pos;
            i += 1;
            self.pos += 1;
            let step = match self.state {
                State::Idle => {
                    if b != b'\r' && b != b'\n' {
                        self.start_head(at);
                        self.head_byte(b)
                    } else {
                        Ok(())
                    }
                }
                State::Method
                | State::Target
                | State::Version
                | State::LineStart
                | State::Name
                | State::Value => self.head_byte(b),
                _ => {
                    if self.body_byte(b) {
                        Ok(())
                    } else {
                        self.state = State::Done;
                        return Scan::Broken { at };
                    }
                }
            };
            if let Err(why) = step {
                self.state = State::Done;
                return Scan::Refused {
                    at: self.head_start,
                    why,
                };
            }
        }
        Scan::Clean
    }

    fn start_head(&mut self, at: u64) {
        self.state = State::Method;
        self.head_start = at;
        self.cr = false;
        self.url_len = 0;
        self.target_utf8 = Utf8::default();
        self.method_len = 0;
        self.pri = self.heads == 0;
        self.version_len = 0;
        self.http10 = false;
        self.content_length = None;
        self.chunked = false;
    }

    /// One byte of a head (request line or header lines).
    fn head_byte(&mut self, b: u8) -> Result<(), Refusal> {
        if self.pos - self.head_start > self.max_head {
            return Err(Refusal::HeadTooLarge);
        }
        if self.cr {
            self.cr = false;
            return if b == b'\n' {
                self.end_of_line()
            } else {
                Err(self.line_error())
            };
        }
        match b {
            b'\r' => {
                self.cr = true;
                return Ok(());
            }
            b'\n' => return self.end_of_line(),
            _ => {}
        }
        match self.state {
            State::Method => {
                if b == b' ' && self.method_len > 0 {
                    self.state = State::Target;
                } else if is_tchar(b) {
                    self.pri &= usize::from(self.method_len) < 3
                        && b == b"PRI"[usize::from(self.method_len)];
                    self.method_len = self.method_len.saturating_add(1);
                } else {
                    return Err(Refusal::BadRequestLine);
                }
            }
            State::Target => {
                if b == b' ' && self.url_len > 0 {
                    if !self.target_utf8.complete() {
                        return Err(Refusal::TargetNotUtf8);
                    }
                    self.pri &= self.url_len == 1;
                    self.state = State::Version;
                } else if b > b' ' && b != 0x7f {
                    self.pri &= self.url_len == 0 && b == b'*';
                    if !self.target_utf8.push(b) {
                        return Err(Refusal::TargetNotUtf8);
                    }
                    self.url_len += 1;
                    if self.url_len > self.max_url {
                        return Err(Refusal::UrlTooLong);
                    }
                } else {
                    return Err(Refusal::BadRequestLine);
                }
            }
            State::Version => {
                let n = usize::from(self.version_len);
                if n >= self.version.len() {
                    return Err(Refusal::BadRequestLine);
                }
                self.version[n] = b;
                self.version_len += 1;
            }
            State::LineStart => {
                if b == b' ' || b == b'\t' {
                    return Err(Refusal::FoldedHeader);
                }
                self.state = State::Name;
                self.name_len = 0;
                self.name_uncanonical = false;
                self.maybe_cl = true;
                self.maybe_te = true;
                return self.name_byte(b);
            }
            State::Name => return self.name_byte(b),
            State::Value => return self.value_byte(b),
            _ => {}
        }
        Ok(())
    }

    fn line_error(&self) -> Refusal {
        match self.state {
            State::Method | State::Target | State::Version => Refusal::BadRequestLine,
            _ => Refusal::BadHeader,
        }
    }

    fn name_byte(&mut self, b: u8) -> Result<(), Refusal> {
        if b == b':' && self.name_len > 0 {
            self.state = State::Value;
            self.value_pos = ValuePos::LeadingSpace;
            self.value_len = 0;
            self.number = 0;
            self.maybe_cl &= self.name_len == CONTENT_LENGTH.len();
            self.maybe_te &= self.name_len == TRANSFER_ENCODING.len();
            if self.name_uncanonical && self.name_len <= MAX_SPELLED_NAME {
                // tchars are ASCII: always text.
                let name = String::from_utf8_lossy(&self.name[..self.name_len]);
                self.spellings.push((self.heads, name.into()));
            }
            return Ok(());
        }
        // Anything else, whitespace before the colon included, is a malformed name.
        if !is_tchar(b) {
            return Err(Refusal::BadHeader);
        }
        let lower = b.to_ascii_lowercase();
        let n = self.name_len;
        if n < MAX_SPELLED_NAME {
            let word_start = n == 0 || self.name[n - 1] == b'-';
            let canonical = if word_start {
                b.to_ascii_uppercase()
            } else {
                lower
            };
            self.name_uncanonical |= b != canonical;
            self.name[n] = b;
        }
        self.maybe_cl &= CONTENT_LENGTH.get(n) == Some(&lower);
        self.maybe_te &= TRANSFER_ENCODING.get(n) == Some(&lower);
        self.name_len += 1;
        Ok(())
    }

    fn value_byte(&mut self, b: u8) -> Result<(), Refusal> {
        let ows = b == b' ' || b == b'\t';
        if !(ows || (b'!'..=b'~').contains(&b) || b >= 0x80) {
            return Err(Refusal::BadHeader);
        }
        if !(self.maybe_cl || self.maybe_te) {
            return Ok(());
        }
        let bad = if self.maybe_cl {
            Refusal::BadContentLength
        } else {
            Refusal::BadTransferEncoding
        };
        match (self.value_pos, ows) {
            (ValuePos::LeadingSpace, true) => return Ok(()),
            (ValuePos::Token, true) => {
                self.value_pos = ValuePos::TrailingSpace;
                return Ok(());
            }
            (ValuePos::TrailingSpace, true) => return Ok(()),
            // Text after inner whitespace: a list, or garbage.
            (ValuePos::TrailingSpace, false) => return Err(bad),
            (_, false) => self.value_pos = ValuePos::Token,
        }
        if self.maybe_cl {
            let digit = b.checked_sub(b'0').filter(|d| *d <= 9).ok_or(bad)?;
            self.number = self
                .number
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(digit)))
                .ok_or(bad)?;
        } else if CHUNKED.get(self.value_len) != Some(&b.to_ascii_lowercase()) {
            return Err(bad);
        }
        self.value_len += 1;
        Ok(())
    }

    fn end_of_line(&mut self) -> Result<(), Refusal> {
        match self.state {
            State::Method | State::Target => Err(Refusal::BadRequestLine),
            State::Version => {
                let v = &self.version[..usize::from(self.version_len)];
                self.http10 = match v {
                    b"HTTP/1.1" => false,
                    b"HTTP/1.0" => true,
                    b"HTTP/2.0" if self.pri && self.method_len == 3 => {
                        // HTTP/2 with prior knowledge (over TLS: ALPN h2): binary frames follow.
                        self.state = State::Passthrough;
                        return Ok(());
                    }
                    _ => return Err(Refusal::BadRequestLine),
                };
                self.state = State::LineStart;
                Ok(())
            }
            State::Name => Err(Refusal::BadHeader),
            State::Value => {
                if self.maybe_cl {
                    if self.value_pos == ValuePos::LeadingSpace || self.content_length.is_some() {
                        return Err(Refusal::BadContentLength);
                    }
                    self.content_length = Some(self.number);
                } else if self.maybe_te {
                    if self.value_len != CHUNKED.len() || self.chunked {
                        return Err(Refusal::BadTransferEncoding);
                    }
                    self.chunked = true;
                }
                self.state = State::LineStart;
                Ok(())
            }
            State::LineStart => self.end_of_head(),
            _ => Ok(()),
        }
    }

    fn end_of_head(&mut self) -> Result<(), Refusal> {
        if self.chunked && self.content_length.is_some() {
            return Err(Refusal::ContentLengthAndTransferEncoding);
        }
        if self.chunked && self.http10 {
            return Err(Refusal::TransferEncodingOnHttp10);
        }
        self.heads += 1;
        self.state = if self.chunked {
            self.chunk_digits = 0;
            self.chunk_size = 0;
            State::ChunkSize
        } else {
            match self.content_length {
                Some(n) if n > 0 => State::Body(n),
                _ => State::Idle,
            }
        };
        Ok(())
    }

    /// One byte of chunked framing (as hyper's decoder reads it: CRLF only); `false` when
    /// the framing is broken.
    fn body_byte(&mut self, b: u8) -> bool {
        self.state = match (self.state, b) {
            (State::ChunkSize, b' ' | b'\t') if self.chunk_digits > 0 => State::ChunkSizeLws,
            (State::ChunkSize | State::ChunkSizeLws, b';') if self.chunk_digits > 0 => {
                State::ChunkExt
            }
            (State::ChunkSize | State::ChunkSizeLws, b'\r') if self.chunk_digits > 0 => {
                State::ChunkSizeLf
            }
            (State::ChunkSize, _) => {
                let Some(d) = (b as char).to_digit(16) else {
                    return false;
                };
                // Like hyper: at least one digit, and a size that overflows is an error.
                self.chunk_digits = self.chunk_digits.saturating_add(1);
                match self
                    .chunk_size
                    .checked_mul(16)
                    .and_then(|n| n.checked_add(u64::from(d)))
                {
                    Some(n) => self.chunk_size = n,
                    None => return false,
                }
                State::ChunkSize
            }
            (State::ChunkSizeLws, b' ' | b'\t') => State::ChunkSizeLws,
            (State::ChunkExt, b'\r') => State::ChunkSizeLf,
            (State::ChunkExt, b'\n') => return false,
            (State::ChunkExt, _) => State::ChunkExt,
            (State::ChunkSizeLf, b'\n') if self.chunk_size == 0 => State::TrailerStart,
            (State::ChunkSizeLf, b'\n') => State::ChunkData(self.chunk_size),
            (State::ChunkDataCr, b'\r') => State::ChunkDataLf,
            (State::ChunkDataLf, b'\n') => {
                self.chunk_digits = 0;
                self.chunk_size = 0;
                State::ChunkSize
            }
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::Trailer, b'\r') => State::TrailerLf,
            (State::TrailerStart | State::Trailer, _) => State::Trailer,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Idle,
            _ => return false,
        };
        true
    }
}

/// RFC 9110 `tchar`: the bytes of methods and header names.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
