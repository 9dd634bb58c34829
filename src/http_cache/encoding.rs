//! Compressing a tagged body once, here rather than in actix-web's
//! `Compress`: the response cache keeps the compressed bytes, so a kept
//! response is sent to a browser (which asks for `br` or `gzip`) without
//! compressing it again. `Compress` hands every body of 1 KiB or more to
//! the blocking pool and back; for an article that is four times the CPU
//! of the response and a third of its requests per second.

use std::io::{self, Write};

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{
    AcceptEncoding, CONTENT_TYPE, ContentEncoding, Encoding, Header, HeaderMap,
};
use actix_web::web::Bytes;

/// What `Compress` chooses from, as actix-web builds it with its default
/// features; identity first, as it lists it.
static COMPRESSIONS: [Encoding; 5] = [
    Encoding::identity(),
    Encoding::brotli(),
    Encoding::gzip(),
    Encoding::deflate(),
    Encoding::zstd(),
];

/// Bodies at least this large are compressed on the blocking pool, so
/// that a worker is not held up for milliseconds (a swagger-ui bundle);
/// an article or a list page takes less time to compress than the trip
/// there and back.
const INLINE_BELOW: usize = 64 * 1024;

/// The encoding `Compress` would choose for `req`, if not identity.
pub(super) fn negotiated(req: &ServiceRequest) -> Option<ContentEncoding> {
    if !req.headers().contains_key(AcceptEncoding::name()) {
        return None;
    }
    match AcceptEncoding::parse(req)
        .ok()?
        .negotiate(COMPRESSIONS.iter())?
    {
        Encoding::Known(chosen) if chosen != ContentEncoding::Identity => Some(chosen),
        _ => None,
    }
}

/// True when a body with these headers is worth compressing: not an
/// image (but SVG, which is text) or a video, as `Compress` decides.
pub(super) fn compressible(headers: &HeaderMap) -> bool {
    let kind = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    !(kind.starts_with("image/") && !kind.starts_with("image/svg") || kind.starts_with("video/"))
}

/// Brotli's settings in `Compress`: a 32 KiB buffer, quality 3 and a
/// window of 2^22 bytes. (A window cut to a small body's size saves
/// nothing at quality 3, and at 5 made an encoder 18 times slower.)
const BROTLI_BUFFER: usize = 32 * 1024;
const BROTLI_QUALITY: u32 = 3;
const BROTLI_WINDOW_BITS: u32 = 22;
/// Zstandard's level in `Compress`.
const ZSTD_LEVEL: i32 = 3;

/// `body` in `encoding`, at the settings `Compress` uses (fast gzip and
/// deflate, brotli quality 3, zstd level 3): cheap enough per request,
/// and the same size of answer as before. The bytes hold no more memory
/// than they take: the response cache weighs them by their length.
pub(super) async fn encode(encoding: ContentEncoding, body: Bytes) -> io::Result<Bytes> {
    if body.len() < INLINE_BELOW {
        return encode_now(encoding, &body).map(Bytes::from);
    }
    actix_web::rt::task::spawn_blocking(move || encode_now(encoding, &body))
        .await
        .map_err(io::Error::other)?
        .map(Bytes::from)
}

fn encode_now(encoding: ContentEncoding, body: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoded = encoded(encoding, body)?;
    // Grown a write at a time (zstd's is as large as the plain body).
    encoded.shrink_to_fit();
    Ok(encoded)
}

fn encoded(encoding: ContentEncoding, body: &[u8]) -> io::Result<Vec<u8>> {
    let fast = flate2::Compression::fast();
    match encoding {
        ContentEncoding::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), fast);
            encoder.write_all(body)?;
            encoder.finish()
        }
        ContentEncoding::Deflate => {
            let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), fast);
            encoder.write_all(body)?;
            encoder.finish()
        }
        ContentEncoding::Brotli => {
            let mut encoder = brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER,
                BROTLI_QUALITY,
                BROTLI_WINDOW_BITS,
            );
            encoder.write_all(body)?;
            Ok(encoder.into_inner())
        }
        ContentEncoding::Zstd => zstd::bulk::compress(body, ZSTD_LEVEL),
        other => Err(io::Error::other(format!(
            "no encoder for {}",
            other.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn every_encoding_gives_back_the_body() {
        let body = "<p>The harbour strike ended at noon.</p>".repeat(100);
        for encoding in [
            ContentEncoding::Gzip,
            ContentEncoding::Deflate,
            ContentEncoding::Brotli,
            ContentEncoding::Zstd,
        ] {
            let encoded = encode_now(encoding, body.as_bytes()).unwrap();
            assert!(encoded.len() < body.len() / 10, "{encoding:?}");
            assert_eq!(encoded.capacity(), encoded.len(), "{encoding:?} holds more");
            let mut plain = Vec::new();
            match encoding {
                ContentEncoding::Gzip => flate2::read::GzDecoder::new(&encoded[..])
                    .read_to_end(&mut plain)
                    .unwrap(),
                ContentEncoding::Deflate => flate2::read::ZlibDecoder::new(&encoded[..])
                    .read_to_end(&mut plain)
                    .unwrap(),
                ContentEncoding::Brotli => brotli::Decompressor::new(&encoded[..], 4096)
                    .read_to_end(&mut plain)
                    .unwrap(),
                _ => {
                    plain = zstd::bulk::decompress(&encoded, body.len()).unwrap();
                    plain.len()
                }
            };
            assert_eq!(plain, body.as_bytes(), "{encoding:?}");
        }
    }
}
