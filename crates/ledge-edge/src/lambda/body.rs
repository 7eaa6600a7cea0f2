//! IncludeBody (§2.5, §3.6): the start of the viewer's body, base64, for the function; the
//! whole body, unchanged, for the origin.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use ledge_model::event as ev;

use crate::body::{BoxError, RequestBody};
use crate::error::{EdgeError, ErrorKind};

/// Reads up to `limit` bytes of `body` (one more to know whether it is longer). Returns the
/// body to send on (the whole original) and the `request.body` object for the event.
pub(crate) async fn expose(
    body: RequestBody,
    limit: usize,
) -> Result<(RequestBody, ev::Body), EdgeError> {
    let mut body = body;
    let mut buf = BytesMut::new();
    let mut ended = false;
    while buf.len() <= limit {
        match body.frame().await {
            None => {
                ended = true;
                break;
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                let kind = if is_limit(&*e) {
                    ErrorKind::RequestBodyTooLarge
                } else {
                    ErrorKind::InvalidRequest
                };
                return Err(EdgeError::because(kind, e).explain("request body"));
            }
        }
    }
    let all = buf.freeze();
    let truncated = all.len() > limit;
    let mut exposed = ev::Body::from_bytes(&all[..all.len().min(limit)]);
    exposed.input_truncated = truncated;
    let onward = if ended {
        if all.is_empty() {
            RequestBody::Empty
        } else {
            RequestBody::Full(Some(all))
        }
    } else {
        RequestBody::Stream(
            Prefixed {
                prefix: Some(all),
                rest: body,
            }
            .boxed_unsync(),
        )
    };
    Ok((onward, exposed))
}

fn is_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Bytes already read, then the rest of the body.
struct Prefixed {
    prefix: Option<Bytes>,
    rest: RequestBody,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(p) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(p))));
        }
        Pin::new(&mut this.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let n = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        // Upper first: `set_lower` panics on a lower bound above the current upper one.
        let mut h = SizeHint::new();
        if let Some(u) = rest.upper() {
            h.set_upper(u + n);
        }
        h.set_lower(rest.lower() + n);
        h
    }
}
