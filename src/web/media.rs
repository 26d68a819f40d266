//! Bytes over HTTP: a track's original bytes for `stream` and `download` (HTTP Range, from
//! the 16 KiB piece that holds the first byte asked for), and cover pictures (scaled on request).
//! They come from the mesh as `meff stream` gets them: verified piece by piece, failing over
//! between holders, never written to disk, and pulled only as fast as the client reads.

use super::Web;
use super::reply::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;

/// Verified pieces (up to 64 KiB each) waiting for a client: a client that reads nothing holds at
/// most this many, enough for the fetch to run ahead of the socket.
const PIECES_IN_FLIGHT: usize = 16;
/// The largest side a scaled cover may be asked for.
const MAX_COVER_SIDE: u32 = 2048;

/// What a Range header asks of a body of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    Whole,
    /// Bytes `start..=end`.
    Part {
        start: u64,
        end: u64,
    },
    /// Starts at or past the end.
    Unsatisfiable,
    /// More than one range: not served (one byte range is what players ask for).
    Multiple,
}

/// Parses a `Range` header; what is not a byte range is ignored, as RFC 9110 allows.
pub fn parse_range(h: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Multiple;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = |s: &str| s.parse::<u64>().ok();
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match parsed(b) {
            Some(0) => RangeAsk::Unsatisfiable,
            Some(n) if size > 0 => RangeAsk::Part {
                start: size.saturating_sub(n),
                end: size - 1,
            },
            Some(_) => RangeAsk::Unsatisfiable,
            None => RangeAsk::Whole,
        },
        (false, _) => {
            let Some(start) = parsed(a) else {
                return RangeAsk::Whole;
            };
            let end = if b.is_empty() {
                Some(u64::MAX)
            } else {
                parsed(b)
            };
            match end {
                None => RangeAsk::Whole,
                Some(end) if end < start => RangeAsk::Whole,
                Some(_) if start >= size => RangeAsk::Unsatisfiable,
                Some(end) => RangeAsk::Part {
                    start,
                    end: end.min(size - 1),
                },
            }
        }
        (true, true) => RangeAsk::Whole,
    }
}

/// Aborts the fetch when the response body is dropped (the client went away).
struct FetchGuard(tokio::task::AbortHandle);

impl Drop for FetchGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The response to `stream`/`download` of the track shown under `name`.
pub async fn track(
    web: &Web,
    name: &str,
    headers: &HeaderMap,
    download: bool,
) -> Result<Response, ApiError> {
    let entry = web
        .node
        .entry(name)
        .map_err(|e| ApiError::new(70, format!("{e:#}")))?;
    let size = entry.size;
    let range = parse_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, start, end) = match range {
        RangeAsk::Whole => (StatusCode::OK, 0, size.saturating_sub(1)),
        RangeAsk::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end),
        RangeAsk::Unsatisfiable | RangeAsk::Multiple => {
            let why = if range == RangeAsk::Multiple {
                "only one byte range can be asked for"
            } else {
                "the range starts past the end of the track"
            };
            let mut r = (StatusCode::RANGE_NOT_SATISFIABLE, why).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let codec = entry.codec.clone();
    let len = if size == 0 { 0 } else { end - start + 1 };
    let skip = start - crate::store::outboard::piece_start(start);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(PIECES_IN_FLIGHT);
    let node = web.node.clone();
    let label = name.to_string();
    let task = tokio::spawn(async move {
        let on_source = move |p: crate::id::PeerId| {
            tracing::info!("HTTP bytes of '{label}' from {p}");
        };
        node.fetch_verified_from(&entry, start, tx, true, on_source)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let guard = FetchGuard(task.abort_handle());
    // The first verified piece, or why there is none, before any header goes out: a track
    // no holder can serve gets an answer, not a body that stops.
    let first = if len == 0 { None } else { rx.recv().await };
    if first.is_none() && len > 0 {
        let why = match task.await {
            Ok(Err(e)) => e,
            _ => "the fetch stopped".into(),
        };
        return Err(ApiError::new(0, format!("cannot fetch '{name}': {why}"))
            .with_status(StatusCode::SERVICE_UNAVAILABLE));
    }
    let state = (first, rx, skip, len, guard);
    let body = futures_util::stream::unfold(
        state,
        |(mut first, mut rx, mut skip, left, guard)| async move {
            if left == 0 {
                return None;
            }
            loop {
                let piece = match first.take() {
                    Some(p) => p,
                    None => match rx.recv().await {
                        Some(p) => p,
                        // The fetch ended before the range did: a holder-less gap; the client sees
                        // a short body and may ask again from where it stopped.
                        None => {
                            return Some((
                                Err(std::io::Error::other("the track's bytes stopped coming")),
                                (None, rx, 0, 0, guard),
                            ));
                        }
                    },
                };
                let p = piece.len() as u64;
                if skip >= p {
                    skip -= p;
                    continue;
                }
                let from = skip as usize;
                let take = (p - skip).min(left) as usize;
                // The verified piece itself goes out, sliced, not copied.
                let out = Bytes::from(piece).slice(from..from + take);
                return Some((Ok(out), (None, rx, 0, left - take as u64, guard)));
            }
        },
    );
    let mut r = Response::new(Body::from_stream(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::subsonic::content_type(&codec)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}"))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if download {
        let file = format!(
            "{}.{}",
            name.replace(['"', '\\'], "_"),
            crate::node::storage::extension_for(&codec)
        );
        let ascii: String = file
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"")) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(r)
}

fn image_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0xff, 0xd8]) {
        "image/jpeg"
    } else if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else if bytes.starts_with(b"GIF8") {
        "image/gif"
    } else if bytes.len() > 12 && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "application/octet-stream"
    }
}

/// Scales a picture to fit `side`×`side` as JPEG; None when it cannot be read.
fn scaled(bytes: &[u8], side: u32) -> Option<Vec<u8>> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(8192);
    limits.max_image_height = Some(8192);
    limits.max_alloc = Some(128 << 20);
    reader.limits(limits);
    let img = reader.decode().ok()?;
    if img.width() <= side && img.height() <= side {
        return None;
    }
    let small = img.thumbnail(side, side).into_rgb8();
    let mut out = Vec::new();
    small
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .ok()?;
    Some(out)
}

/// The cover behind `id` (a cover, album, artist or song id), scaled to `size` if asked.
pub async fn cover(web: &Web, id: &str, size: Option<u32>) -> Result<Response, ApiError> {
    let model = web.model();
    let hash = model
        .cover_hash(id)
        .ok_or_else(|| ApiError::not_found("cover art"))?;
    let song = model
        .songs
        .iter()
        .find(|s| s.meta.cover == Some(hash))
        .map(|s| s.meta.name.clone())
        .ok_or_else(|| ApiError::not_found("cover art"))?;
    drop(model);
    let bytes = web
        .node
        .cover(&song)
        .await
        .map_err(|e| {
            ApiError::new(0, format!("cannot fetch the cover: {e:#}"))
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
        })?
        .ok_or_else(|| ApiError::not_found("cover art"))?;
    let bytes = match size.map(|s| s.clamp(16, MAX_COVER_SIDE)) {
        Some(side) => {
            let _permit = web.scaling.acquire().await;
            let original = bytes.clone();
            tokio::task::spawn_blocking(move || scaled(&original, side))
                .await
                .ok()
                .flatten()
                .unwrap_or(bytes)
        }
        None => bytes,
    };
    let kind = image_type(&bytes);
    let mut r = Response::new(Body::from(bytes));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsk::*;
        assert_eq!(parse_range(None, 100), Whole);
        assert_eq!(
            parse_range(Some("bytes=0-"), 100),
            Part { start: 0, end: 99 }
        );
        assert_eq!(
            parse_range(Some("bytes=10-19"), 100),
            Part { start: 10, end: 19 }
        );
        assert_eq!(
            parse_range(Some("bytes=90-500"), 100),
            Part { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range(Some("bytes=-10"), 100),
            Part { start: 90, end: 99 }
        );
        assert_eq!(
            parse_range(Some("bytes=-1000"), 100),
            Part { start: 0, end: 99 }
        );
        assert_eq!(parse_range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,5-9"), 100), Multiple);
        assert_eq!(parse_range(Some("bytes=x-y"), 100), Whole);
        assert_eq!(parse_range(Some("bytes=20-10"), 100), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), Whole);
        assert_eq!(
            parse_range(Some("bytes=18446744073709551615-"), 100),
            Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
    }

    #[test]
    fn covers_are_scaled_and_bad_pictures_left_alone() {
        let img = image::RgbImage::from_pixel(300, 200, image::Rgb([200, 10, 10]));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(image_type(&png), "image/png");
        let small = scaled(&png, 100).unwrap();
        assert_eq!(image_type(&small), "image/jpeg");
        let back = image::load_from_memory(&small).unwrap();
        assert_eq!((back.width(), back.height()), (100, 67));
        assert!(scaled(&png, 400).is_none(), "not made larger");
        assert!(scaled(b"\x89PNG garbage", 100).is_none());
    }
}
