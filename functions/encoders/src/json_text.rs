//! JSON written by hand straight into an output buffer: strings escaped exactly as
//! `serde_json` escapes them, floats in its shortest round-trip form. Every JSON format
//! writes through these, so none allocates per record and all agree byte for byte.

/// How each byte is written inside a JSON string: 0 as is, else the letter of its
/// short escape (`n` for `\n`), or `u` for `\u00XX`. The same choices as serde_json.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// How the formats that stream records as one JSON array (JSON, JSON_TABULAR,
/// JSON_ADVANCED) frame them: one record per line between `[` and `]`.
pub const ARRAY_OPEN: &[u8] = b"[\n";
/// Between two records of the array.
pub const ARRAY_SEPARATOR: &[u8] = b",\n";
/// After the last record.
pub const ARRAY_CLOSE: &[u8] = b"\n]\n";

/// A JSON string, quoted and escaped. Bytes of multi-byte UTF-8 sequences are never
/// escaped, so runs of unescaped bytes are copied whole.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPE[byte as usize];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if escape == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(byte >> 4) as usize],
                HEX[(byte & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// A JSON array of strings.
pub fn write_str_array<'s>(out: &mut Vec<u8>, items: impl IntoIterator<Item = &'s str>) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, item);
    }
    out.push(b']');
}

/// A string or `null`.
pub fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// `"key":`, preceded by a comma unless it is the object's first key. `key` is a
/// constant that needs no escaping.
pub fn write_key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    debug_assert!(key.bytes().all(|b| ESCAPE[b as usize] == 0));
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// An integer.
pub fn write_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A finite float, formatted as `serde_json` formats it (shortest round-trip, `2.0`).
/// JSON has no NaN or infinity: the caller refuses those first.
pub fn write_finite(out: &mut Vec<u8>, v: f64) {
    debug_assert!(v.is_finite());
    // Labels hold pixel coordinates and confidences with a few decimals. When `v` is
    // exactly `n / 10^d` for a small `d`, the digits of `n` are the shortest text that
    // reads back as `v` (the division is correctly rounded), which is what ryu prints,
    // at a fraction of its cost.
    const SCALES: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];
    if v != 0.0 && v.abs() < 1e15 {
        for (decimals, scale) in SCALES.iter().enumerate() {
            let scaled = (v * scale).round();
            if scaled / scale == v {
                // |scaled| < 1e18, so the cast is exact.
                let n = scaled as i64;
                let mut digits = itoa::Buffer::new();
                let digits = digits.format(n.unsigned_abs()).as_bytes();
                if n < 0 {
                    out.push(b'-');
                }
                if decimals == 0 {
                    out.extend_from_slice(digits);
                    out.extend_from_slice(b".0");
                } else if digits.len() > decimals {
                    let (whole, fraction) = digits.split_at(digits.len() - decimals);
                    out.extend_from_slice(whole);
                    out.push(b'.');
                    out.extend_from_slice(fraction);
                } else {
                    out.extend_from_slice(b"0.");
                    out.extend(std::iter::repeat_n(b'0', decimals - digits.len()));
                    out.extend_from_slice(digits);
                }
                return;
            }
        }
    }
    out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_exactly_like_serde_json() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            140.9,
            -3.25,
            0.001,
            0.01,
            0.0005,
            1e-7,
            123456.789,
            0.1 + 0.2,
            1e15,
            1e16,
            2.5e-3,
            999.999,
            1e14 + 0.5,
            f64::MAX,
            f64::MIN_POSITIVE,
            0.606,
            1920.0,
            0.999,
            12.3456,
        ];
        // And many with up to four decimals, as generated data holds them.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let decimals = (x % 5) as i32;
            let n = (x >> 8) % 10_000_000;
            values.push(n as f64 / 10f64.powi(decimals) * if x & 1 == 0 { 1.0 } else { -1.0 });
        }
        for v in values {
            let mut out = Vec::new();
            write_finite(&mut out, v);
            let ours = std::str::from_utf8(&out).unwrap();
            let theirs = serde_json::to_string(&v).unwrap();
            // In exponent form ryu writes `1e16` where serde_json writes `1e+16`: the
            // same number, read back exactly.
            if theirs.contains('e') {
                assert_eq!(ours.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{v:?}");
            } else {
                assert_eq!(ours, theirs, "{v:?}");
            }
        }
    }

    #[test]
    fn strings_are_escaped_exactly_like_serde_json() {
        let mut all_bytes = String::new();
        for c in (0u8..0x80).map(char::from) {
            all_bytes.push(c);
        }
        let cases = [
            "",
            "plain",
            "quote \" backslash \\ slash /",
            "tab\tnewline\ncr\r\u{8}\u{c}\u{1}\u{1f}\u{7f}",
            "é 日本語 🙂 \u{2028}\u{2029}",
            &all_bytes,
        ];
        for case in cases {
            let mut out = Vec::new();
            write_str(&mut out, case);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(case).unwrap()
            );
        }
    }

    #[test]
    fn floats_match_serde_json_and_read_back_exactly() {
        for v in [
            0.0,
            -0.0,
            1.0,
            0.1,
            1e-7,
            1e21,
            123456.789,
            559.1259640102828,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let mut out = Vec::new();
            write_finite(&mut out, v);
            let text = String::from_utf8(out).unwrap();
            // serde_json writes `1e+21` where ryu writes `1e21`: the same JSON number.
            let theirs = serde_json::to_string(&v).unwrap();
            assert_eq!(text, theirs.replace("e+", "e"));
            assert_eq!(text.parse::<f64>().unwrap().to_bits(), v.to_bits());
        }
    }

    #[test]
    fn string_arrays_match_serde_json() {
        for items in [&[][..], &["a"], &["x\"y", "", "é"]] {
            let mut out = Vec::new();
            write_str_array(&mut out, items.iter().copied());
            assert_eq!(out, serde_json::to_vec(items).unwrap());
        }
    }

    #[test]
    fn keys_are_comma_separated_after_the_first() {
        let mut out = b"{".to_vec();
        let mut first = true;
        write_key(&mut out, &mut first, "a");
        write_int(&mut out, 1u32);
        write_key(&mut out, &mut first, "b");
        write_opt_str(&mut out, None);
        out.push(b'}');
        assert_eq!(out, br#"{"a":1,"b":null}"#);
    }
}
