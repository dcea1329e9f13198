//! Request bodies, read whole before the request is routed.
//!
//! Every answer must leave a keep-alive connection usable or say that it does not
//! (SPEC §11). A body left unread when the answer goes out makes hyper close the
//! connection without a word, and an HTTP client does not resend a POST on a dropped
//! connection: a 429 or a 404 would reach its caller as a connection error. So the
//! body is read, within its limit and time, before anything can answer early; a body
//! that cannot be read whole within them is answered with `Connection: close`.

use super::ApiError;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::CONTENT_LENGTH;
use hyper::HeaderMap;
use std::time::Duration;

/// Most bytes read and thrown away after a body passed its limit, so that a client
/// that writes its whole body before reading still receives its answer: closing with
/// unread data would reset the connection and lose the answer.
const MAX_DRAINED_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a whole body within `limit` bytes (413 beyond it) and `timeout` (408). Any
/// error means the body was not read whole: its answer must close the connection.
pub(super) async fn read(
    headers: &HeaderMap,
    mut body: Incoming,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A declared length past what would be drained is refused without reading.
    if declared.is_some_and(|n| n > MAX_DRAINED_BYTES) {
        return Err(ApiError::PayloadTooLarge);
    }
    let limit = limit as u64;
    let read = async {
        // Most bodies arrive in one frame, which is kept as it is, without a copy.
        let mut first: Option<Bytes> = None;
        let mut collected = BytesMut::new();
        let mut seen: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|_| ApiError::BadRequest("the request body could not be read".into()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen += data.len() as u64;
            if seen > MAX_DRAINED_BYTES {
                break;
            }
            if seen > limit {
                continue;
            }
            match first.take() {
                None if collected.is_empty() => first = Some(data),
                None => collected.extend_from_slice(&data),
                Some(earlier) => {
                    collected.extend_from_slice(&earlier);
                    collected.extend_from_slice(&data);
                }
            }
        }
        Ok(if seen > limit {
            None
        } else {
            Some(first.unwrap_or_else(|| collected.freeze()))
        })
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(ApiError::Timeout),
        Ok(Err(e)) => Err(e),
        Ok(Ok(None)) => Err(ApiError::PayloadTooLarge),
        Ok(Ok(Some(_))) if declared.is_some_and(|n| n > limit) => Err(ApiError::PayloadTooLarge),
        Ok(Ok(Some(body))) => Ok(body),
    }
}
