//! Body types of the pipeline: cheap for the common cases (no body, one shared buffer),
//! boxed only when a body really streams.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Error type of streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body: empty, one shared buffer (cache hits, generated pages) or a stream.
#[derive(Debug)]
pub enum EdgeBody {
    /// No bytes.
    Empty,
    /// One buffer, sent as is (cloning a [`Bytes`] shares it).
    Full(Option<Bytes>),
    /// Anything else, boxed.
    Stream(UnsyncBoxBody<Bytes, BoxError>),
}

/// A viewer's request body.
#[derive(Debug)]
pub enum RequestBody {
    /// No body.
    Empty,
    /// The bytes as they arrive from the viewer.
    Incoming(Incoming),
    /// A buffered body (e.g. set by a function).
    Full(Option<Bytes>),
    /// A stream with a size cap or other wrapper.
    Stream(UnsyncBoxBody<Bytes, BoxError>),
}

// === impl EdgeBody ===

impl EdgeBody {
    /// A body of one buffer.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let b = bytes.into();
        if b.is_empty() {
            Self::Empty
        } else {
            Self::Full(Some(b))
        }
    }

    /// Boxes any body with a compatible error.
    pub fn stream<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self::Stream(body.map_err(Into::into).boxed_unsync())
    }
}

impl Body for EdgeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Full(b) => b.is_none(),
            Self::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty => SizeHint::with_exact(0),
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Stream(s) => s.size_hint(),
        }
    }
}

// === impl RequestBody ===

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Incoming(i) => Pin::new(i).poll_frame(cx).map_err(Into::into),
            Self::Stream(s) => Pin::new(s).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Full(b) => b.is_none(),
            Self::Incoming(i) => i.is_end_stream(),
            Self::Stream(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty | Self::Full(None) => SizeHint::with_exact(0),
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Incoming(i) => i.size_hint(),
            Self::Stream(s) => s.size_hint(),
        }
    }
}
