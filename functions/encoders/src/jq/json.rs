//! Values as JSON text and back, within the run's bounds: printed without recursion and
//! cut at a byte limit (a program's output, `tojson`, an error's message), and parsed
//! (`fromjson`) only after the text is scanned for its depth and charged for its size.

use super::bounds::{self, BYTES_PER_WORK};
use super::value::{Value, CONTAINER_BYTES, ENTRY_BYTES, STRING_BYTES};
use jaq_core::box_iter::box_once;
use jaq_core::{Error, Exn, ValXs};
use jaq_json::{Map, Val};
use std::fmt::{self, Write as _};

/// The longest value shown in a message (an error's text).
pub(super) const MESSAGE_BYTES: usize = 1024;

/// A `Write` into `out` that takes at most `left` bytes, and fails past them.
struct Limited<'o> {
    out: &'o mut Vec<u8>,
    left: usize,
}

impl fmt::Write for Limited<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.left = self.left.checked_sub(s.len()).ok_or(fmt::Error)?;
        bounds::work(s.len() / BYTES_PER_WORK);
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `bytes` as text, with `…` when they were `cut`.
fn cut_text(bytes: &[u8], cut: bool) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if cut {
        text.push('…');
    }
    text
}

/// An error of jaq_json's, for [`Value`]. jaq_json's errors show the values they are
/// about (`cannot use [1,2] as ...`), which may be large: the message is printed with a
/// bound. An error made of a string (jaq_json's `index 5 out of bounds`) prints as that
/// string in JSON, so it starts with a quote; its value is kept as it is, which takes no
/// printing.
pub(super) fn lift_error(error: Error<Val>) -> Error<Value> {
    let mut text = Vec::new();
    let mut out = Limited {
        out: &mut text,
        left: MESSAGE_BYTES,
    };
    let cut = write!(out, "{error}").is_err();
    if text.first() == Some(&b'"') {
        return Error::new(Value::measured(error.into_val()));
    }
    Error::str(cut_text(&text, cut))
}

/// Shown in messages (jaq's errors): cut to [`MESSAGE_BYTES`].
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shortened(self.as_val(), MESSAGE_BYTES))
    }
}

/// A value's JSON would pass the bytes it may take.
#[derive(Debug)]
pub struct TooLong;

impl From<fmt::Error> for TooLong {
    fn from(_: fmt::Error) -> Self {
        TooLong
    }
}

/// Appends `val` to `out` as compact JSON, as jaq prints it (invalid UTF-8 replaced),
/// without recursion. `Err` as soon as it would pass `limit` bytes: what it wrote
/// until then stays in `out`, cut.
pub fn write_json(val: &Val, out: &mut Vec<u8>, limit: usize) -> Result<(), TooLong> {
    /// A container being written, and how many of its parts are.
    enum Open<'v> {
        Array(&'v [Val], usize),
        Object(&'v Map, usize),
    }
    let mut out = Limited { out, left: limit };
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut next = Some(val);
    loop {
        if let Some(val) = next.take() {
            bounds::work(1);
            match val {
                Val::Arr(items) => {
                    out.write_char('[')?;
                    open.push(Open::Array(items, 0));
                }
                Val::Obj(members) => {
                    out.write_char('{')?;
                    open.push(Open::Object(members, 0));
                }
                leaf => write!(out, "{leaf}")?,
            }
        }
        let Some(innermost) = open.last_mut() else {
            return Ok(());
        };
        match innermost {
            Open::Array(items, written) => {
                let items: &[Val] = items;
                match items.get(*written) {
                    Some(item) => {
                        if *written > 0 {
                            out.write_char(',')?;
                        }
                        *written += 1;
                        next = Some(item);
                    }
                    None => {
                        out.write_char(']')?;
                        open.pop();
                    }
                }
            }
            Open::Object(members, written) => {
                let members: &Map = members;
                match members.get_index(*written) {
                    Some((key, value)) => {
                        let comma = if *written > 0 { "," } else { "" };
                        write!(out, "{comma}{key}:")?;
                        *written += 1;
                        next = Some(value);
                    }
                    None => {
                        out.write_char('}')?;
                        open.pop();
                    }
                }
            }
        }
    }
}

/// `val` as compact JSON in at most `limit` bytes, cut with `…` past them.
pub(crate) fn shortened(val: &Val, limit: usize) -> String {
    let mut text = Vec::new();
    let cut = write_json(val, &mut text, limit).is_err();
    cut_text(&text, cut)
}

/// `val` as a JSON string value (`tojson`, `tostring`), within the run's string bound.
pub(super) fn json_text(val: &Val) -> Value {
    let mut text = Vec::new();
    if write_json(val, &mut text, bounds::string_bytes()).is_err() {
        bounds::check_string(usize::MAX);
    }
    Value::string(text)
}

/// The values in JSON text `input` (`fromjson`), parsed as they are asked for.
/// jaq_json's parser recurses once per level of nesting and has no bound of its own, so
/// the text is first scanned for its depth, and charged for what its values take.
pub(super) fn parse_json<'a>(input: &Value) -> ValXs<'a, Value> {
    let Val::TStr(text) = input.as_val() else {
        return box_once(Err(Exn::from(Error::typ(input.clone(), "string"))));
    };
    let (depth, bytes) = scan_json(text);
    bounds::check_depth(depth);
    bounds::allocate(bytes);
    let failure = format!("cannot parse {input} as JSON");
    let parsed = jaq_json::bytes_valrs(*text.clone(), move |text| {
        Box::new(
            jaq_json::read::parse_many(text)
                .map(move |parsed| parsed.map_err(|e| Error::str(format_args!("{failure}: {e}")))),
        )
    });
    // After an error the parser is where it failed, and would fail there again.
    let mut failed = false;
    Box::new(parsed.map_while(move |parsed| {
        if failed {
            return None;
        }
        failed = parsed.is_err();
        Some(
            parsed
                .map(|val| Value::combined(val, depth))
                .map_err(|e| Exn::from(lift_error(e))),
        )
    }))
}

/// How deeply JSON text nests (brackets outside strings and `#` comments, which
/// jaq_json's parser takes), and about the bytes its values take, read without parsing.
fn scan_json(text: &[u8]) -> (usize, usize) {
    bounds::work(text.len() / BYTES_PER_WORK);
    let (mut depth, mut deepest, mut bytes) = (0usize, 0, text.len());
    let (mut in_string, mut escaped, mut in_comment) = (false, false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if in_comment {
            in_comment = byte != b'\n';
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                bytes += STRING_BYTES;
            }
            b'#' => in_comment = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                bytes += CONTAINER_BYTES + ENTRY_BYTES;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' => bytes += ENTRY_BYTES,
            _ => {}
        }
    }
    (deepest, bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_is_written_as_jaq_writes_it_and_cut_at_the_limit() {
        let val = jaq_json::read::parse_single(br#"{"a":[1,2.5,null,true,"x\"y"],"b":{},"c":[]}"#)
            .unwrap();
        let mut out = Vec::new();
        write_json(&val, &mut out, usize::MAX).unwrap();
        assert_eq!(out, val.to_string().as_bytes());
        let mut cut = Vec::new();
        assert!(write_json(&val, &mut cut, 10).is_err());
        assert!(cut.len() <= 10 && out.starts_with(&cut));
        assert_eq!(
            shortened(&val, 10),
            format!("{}…", String::from_utf8(cut).unwrap())
        );
    }
}
