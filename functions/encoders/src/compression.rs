//! Compression of output bytes, block by block.
//!
//! Each block becomes one complete, independent member (a gzip member, a zstd frame).
//! Members concatenate into one valid file that ordinary tools (`gunzip`, `zstd -d`,
//! flate2's `MultiGzDecoder`, zstd's streaming decoder) read as a single stream, so
//! the worker can compress blocks on several cores and append them in order.

use serde::{Deserialize, Serialize};
use std::io::Write;

/// gzip level. flate2 runs on zlib-rs (zlib-ng's algorithms in Rust), whose level 1
/// is zlib-ng's `deflate_quick`: measured by `cargo bench -p labelport-core --bench
/// pipeline` on 280 MB of NDJSON export lines, it compresses to 0.20 of the input and
/// keeps the gzip export at ~0.8 of the plain export's speed (425 vs 544 MB/s on two
/// cores; miniz_oxide's level 1, used before, ran at 360). Those who want smaller files
/// choose zstd, which is both faster and smaller.
const GZIP_LEVEL: u32 = 1;

/// zstd level. Level 3 is zstd's own default (~425 MB/s, ratio 0.148 on 20 MB of
/// synthetic export lines, one core).
const ZSTD_LEVEL: i32 = 3;

/// How the output file is compressed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain bytes.
    #[default]
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The file-name suffix added after the format's extension (`.gz`), or "".
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }

    /// The MIME type of a compressed file (`application/gzip`), whatever it holds. A
    /// compressed export is stored and served as the archive it is, never with a
    /// `Content-Encoding` that would make HTTP clients unpack it on the fly.
    pub fn content_type(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("application/gzip"),
            Compression::Zstd => Some("application/zstd"),
        }
    }

    /// Appends `input` to `out` as one complete, independent compressed member.
    /// Members concatenate into one valid file (RFC 1952 2.2; zstd frames), which is
    /// what lets the worker compress blocks on several cores at once.
    ///
    /// An empty `input` still makes a (small) member, which decodes to nothing.
    pub fn compress_block(self, input: &[u8], out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail, and neither encoder fails on valid
        // parameters (fixed here), so an error would be a bug in this function or
        // the library: a panic, not an error to hand on.
        const INFALLIBLE: &str = "compressing into memory with fixed parameters cannot fail";
        match self {
            Compression::None => out.extend_from_slice(input),
            Compression::Gzip => {
                let level = flate2::Compression::new(GZIP_LEVEL);
                let mut encoder = flate2::write::GzEncoder::new(out, level);
                encoder.write_all(input).expect(INFALLIBLE);
                encoder.finish().expect(INFALLIBLE);
            }
            Compression::Zstd => {
                zstd_frame(input, out).expect(INFALLIBLE);
            }
        }
    }
}

/// One zstd frame holding `input`, with its size in the header (decoders can size
/// their buffer) and a checksum of the content (corruption is detected).
fn zstd_frame(input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
    encoder.include_checksum(true)?;
    encoder.set_pledged_src_size(Some(input.len() as u64))?;
    encoder.write_all(input)?;
    encoder.finish()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Text that looks like an export, with some variety so it does not compress to
    /// nothing.
    fn sample(lines: usize, seed: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut x = seed;
        for i in 0..lines {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(
                format!(
                    "{{\"taskId\":\"t{i}\",\"x\":{},\"label\":\"class-{}\",\"text\":\"ünï ✓\"}}\n",
                    x >> 40,
                    x % 17
                )
                .as_bytes(),
            );
        }
        out
    }

    fn decode(compression: Compression, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match compression {
            Compression::None => out.extend_from_slice(bytes),
            Compression::Gzip => {
                flate2::read::MultiGzDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Compression::Zstd => {
                zstd::stream::read::Decoder::new(bytes)
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap();
            }
        }
        out
    }

    #[test]
    fn names_are_stable() {
        assert_eq!(Compression::default(), Compression::None);
        let names: Vec<String> = [Compression::None, Compression::Gzip, Compression::Zstd]
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        assert_eq!(names, ["\"none\"", "\"gzip\"", "\"zstd\""]);
        assert_eq!(
            serde_json::from_str::<Compression>("\"zstd\"").unwrap(),
            Compression::Zstd
        );
        assert_eq!(Compression::Gzip.suffix(), ".gz");
        assert_eq!(Compression::Zstd.suffix(), ".zst");
        assert_eq!(Compression::None.suffix(), "");
        assert_eq!(Compression::Gzip.content_type(), Some("application/gzip"));
        assert_eq!(Compression::Zstd.content_type(), Some("application/zstd"));
        assert_eq!(Compression::None.content_type(), None);
    }

    #[test]
    fn one_block_round_trips_and_shrinks() {
        let input = sample(2000, 1);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut out = Vec::new();
            c.compress_block(&input, &mut out);
            assert_eq!(decode(c, &out), input, "{c:?}");
            if c != Compression::None {
                assert!(out.len() < input.len() / 2, "{c:?}: {}", out.len());
            }
        }
    }

    #[test]
    fn blocks_are_appended_and_concatenated_members_decode_as_one_stream() {
        let blocks = [sample(500, 1), Vec::new(), sample(1, 2), sample(3000, 3)];
        let whole: Vec<u8> = blocks.concat();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut out = b"".to_vec();
            for block in &blocks {
                let before = out.len();
                c.compress_block(block, &mut out);
                // Each member is independent: it decodes on its own.
                assert_eq!(decode(c, &out[before..]), *block, "{c:?}");
            }
            assert_eq!(decode(c, &out), whole, "{c:?}");
        }
    }

    #[test]
    fn members_compressed_apart_concatenate_like_the_worker_does() {
        let blocks = [sample(700, 4), sample(900, 5), sample(10, 6)];
        for c in [Compression::Gzip, Compression::Zstd] {
            let parts: Vec<Vec<u8>> = std::thread::scope(|s| {
                let handles: Vec<_> = blocks
                    .iter()
                    .map(|b| {
                        s.spawn(move || {
                            let mut out = Vec::new();
                            c.compress_block(b, &mut out);
                            out
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(decode(c, &parts.concat()), blocks.concat(), "{c:?}");
        }
    }

    #[test]
    fn a_gzip_member_has_the_gzip_magic_and_a_zstd_frame_its_size() {
        let input = sample(10, 7);
        let mut out = Vec::new();
        Compression::Gzip.compress_block(&input, &mut out);
        assert_eq!(&out[..3], &[0x1f, 0x8b, 8]);
        let mut out = Vec::new();
        Compression::Zstd.compress_block(&input, &mut out);
        assert_eq!(&out[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&out).unwrap(),
            Some(input.len() as u64)
        );
    }
}
