//! The value CUSTOM programs run on: jaq_json's `Val`, wrapped so that what a program
//! builds is checked as it is built. jaq_json's `Val` grows without bound inside one
//! evaluation step (`. + .` doubles a string, `[range(1e9)]` is one step), so checking
//! between steps, or the output after, comes too late.
//!
//! - **Memory.** Each new string, array or object, each growth of one and each copy of a
//!   shared one is charged to the run ([`bounds::allocate`]) before it is made, in
//!   estimated bytes (the `*_BYTES` constants).
//! - **Strings.** None longer than the run's bound: `+` and `*` check the operands'
//!   lengths before they copy.
//! - **Depth.** Each value carries how deeply it may nest: exact for a value built here,
//!   its container's less one for a value taken out of a container. A value nested past
//!   the bound is never built, so jaq's recursive walks (printing, freeing) stay within
//!   the stack.
//! - **Time.** Comparisons, arithmetic and string scans count as work, so a loop that
//!   stays inside one native (`last(range(1e12))`, a sort) still reads the clock.
//!
//! A value is freed without recursion ([`free`]), so one nested deeper than the stack
//! holds (an input can be) does not overflow it. Comparisons are this module's own:
//! jaq_json's take exponential time on a value whose parts are shared (`[., .]` in a
//! loop), without a look at the clock.

use super::bounds::{self, BYTES_PER_WORK};
use jaq_core::box_iter::{box_once, BoxIter};
use jaq_core::{ops, path, Error, Exn, ValR, ValX, ValXs};
use jaq_json::{Map, Num, Rc, Val};
use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::fmt::{self, Write as _};

/// An array slot (a `Val`).
const SLOT_BYTES: usize = std::mem::size_of::<Val>();
/// A string's handle and box, besides its bytes.
const STRING_BYTES: usize = 48;
/// An array's or object's shared header.
const CONTAINER_BYTES: usize = 48;
/// An object member: key, value, hash and index.
const ENTRY_BYTES: usize = 56;
/// The widest integer a program may build. jq computes in doubles; jaq_json grows
/// integers without end, and printing one costs time quadratic in its length.
const MAX_INTEGER_BITS: u64 = 4096;
/// The longest value shown in a message (an error's text).
pub(super) const MESSAGE_BYTES: usize = 1024;

/// A value and how deeply it may nest (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct Value {
    val: Val,
    depth: usize,
}

impl Drop for Value {
    fn drop(&mut self) {
        if is_container(&self.val) {
            free(std::mem::take(&mut self.val));
        }
    }
}

/// Frees `val` without recursion: a container this is the last owner of is emptied
/// onto a list of values still to free, where dropping it whole would recurse once per
/// level of nesting.
fn free(val: Val) {
    let mut pending = Vec::new();
    let mut next = Some(val);
    while let Some(val) = next.take().or_else(|| pending.pop()) {
        match val {
            Val::Arr(items) => {
                if let Ok(items) = Rc::try_unwrap(items) {
                    pending.extend(items.into_iter().filter(is_container));
                }
            }
            Val::Obj(members) => {
                if let Ok(members) = Rc::try_unwrap(members) {
                    pending.extend(members.into_values().filter(is_container));
                }
            }
            _ => {}
        }
    }
}

pub(super) fn is_container(val: &Val) -> bool {
    matches!(val, Val::Arr(_) | Val::Obj(_))
}

impl Value {
    /// `val` with its depth measured (a run's input): the run stops if it is too deep.
    pub(super) fn measured(val: Val) -> Self {
        let depth = depth_of(&val);
        let value = Value { val, depth };
        bounds::check_depth(depth);
        value
    }

    /// A value that is not a container.
    pub(super) fn scalar(val: Val) -> Self {
        Value { val, depth: 0 }
    }

    /// `val`, made by combining values at most `depth` deep (`+`, `*`, a slice).
    fn combined(val: Val, depth: usize) -> Self {
        let depth = if is_container(&val) { depth } else { 0 };
        Value { val, depth }
    }

    /// `val`, taken out of a container `container_depth` deep.
    fn part_of(val: Val, container_depth: usize) -> Self {
        Value::combined(val, container_depth.saturating_sub(1))
    }

    /// `val`, a new slice of a value `depth` deep: a slice of an array is a new array.
    fn slice_of(val: Val, depth: usize) -> Self {
        if let Val::Arr(items) = &val {
            bounds::allocate(CONTAINER_BYTES + items.len() * SLOT_BYTES);
        }
        Value::combined(val, depth)
    }

    /// A new string of `bytes`.
    fn string(bytes: Vec<u8>) -> Self {
        bounds::check_string(bytes.len());
        bounds::allocate(STRING_BYTES + bytes.len());
        Value::scalar(Val::utf8_str(bytes))
    }

    pub(super) fn as_val(&self) -> &Val {
        &self.val
    }

    fn into_val(mut self) -> Val {
        std::mem::take(&mut self.val)
    }
}

/// The characters in UTF-8 `bytes`: the bytes that do not continue a sequence.
pub(super) fn char_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| is_char_start(**b)).count()
}

fn is_char_start(byte: u8) -> bool {
    byte & 0b1100_0000 != 0b1000_0000
}

/// How deeply `val` nests, walked without recursion.
fn depth_of(val: &Val) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(val, 0)];
    while let Some((val, depth)) = pending.pop() {
        match val {
            Val::Arr(items) => pending.extend(items.iter().map(|item| (item, depth + 1))),
            Val::Obj(members) => pending.extend(members.values().map(|v| (v, depth + 1))),
            _ => {}
        }
        let depth = depth + usize::from(is_container(val));
        deepest = deepest.max(depth);
    }
    deepest
}

/// The bytes copying `val` takes, if it is shared (updating it copies it first).
fn copy_bytes(val: &Val) -> usize {
    match val {
        Val::Arr(items) if Rc::strong_count(items) > 1 => {
            CONTAINER_BYTES + items.len() * SLOT_BYTES
        }
        Val::Obj(members) if Rc::strong_count(members) > 1 => {
            CONTAINER_BYTES + members.len() * ENTRY_BYTES
        }
        Val::TStr(bytes) | Val::BStr(bytes) if !bytes.is_unique() => STRING_BYTES + bytes.len(),
        _ => 0,
    }
}

/// An error of jaq_json's, for this module's value type. jaq_json's errors show the
/// values they are about (`cannot use [1,2] as ...`), which may be large: the message
/// is printed with a bound. An error made of a string (jaq_json's `index 5 out of
/// bounds`) prints as that string in JSON, so it starts with a quote; its value is
/// kept as it is, which takes no printing.
fn lift_error(error: Error<Val>) -> Error<Value> {
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
    let Val::TStr(text) = &input.val else {
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

/// `a == b` as jaq_json has it (an array or object is equal to itself without a look
/// inside), counting each pair compared as work.
pub(super) fn equal(a: &Val, b: &Val) -> bool {
    bounds::work(1);
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::BStr(x) | Val::TStr(x), Val::BStr(y) | Val::TStr(y)) => {
            bounds::work(x.len().min(y.len()) / BYTES_PER_WORK);
            x == y
        }
        (Val::Arr(x), Val::Arr(y)) => {
            Rc::ptr_eq(x, y)
                || (x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equal(p, q)))
        }
        (Val::Obj(x), Val::Obj(y)) => {
            Rc::ptr_eq(x, y)
                || (x.len() == y.len()
                    && x.iter()
                        .all(|(key, p)| y.get(key).is_some_and(|q| equal(p, q))))
        }
        _ => false,
    }
}

/// The order of `a` and `b` as jaq_json has it (null, booleans, numbers, strings,
/// arrays, objects; objects by their sorted keys, then their values in that order),
/// counting each pair compared as work.
pub(super) fn compare(a: &Val, b: &Val) -> Ordering {
    bounds::work(1);
    match (a, b) {
        (Val::Null, Val::Null) => Ordering::Equal,
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Num(x), Val::Num(y)) => x.cmp(y),
        (Val::BStr(x) | Val::TStr(x), Val::BStr(y) | Val::TStr(y)) => {
            bounds::work(x.len().min(y.len()) / BYTES_PER_WORK);
            x.cmp(y)
        }
        (Val::Arr(x), Val::Arr(y)) => compare_all(x.iter(), y.iter()),
        (Val::Obj(x), Val::Obj(y)) => match (x.len(), y.len()) {
            (0, 0) => Ordering::Equal,
            (0, _) => Ordering::Less,
            (_, 0) => Ordering::Greater,
            _ => {
                fn by_key(members: &Map) -> Vec<(&Val, &Val)> {
                    let mut sorted: Vec<(&Val, &Val)> = members.iter().collect();
                    sorted.sort_by(|(k, _), (l, _)| compare(k, l));
                    sorted
                }
                let (x, y) = (by_key(x), by_key(y));
                compare_all(x.iter().map(|(k, _)| *k), y.iter().map(|(k, _)| *k))
                    .then_with(|| compare_all(x.iter().map(|(_, v)| *v), y.iter().map(|(_, v)| *v)))
            }
        },
        _ => rank(a).cmp(&rank(b)),
    }
}

fn compare_all<'v>(
    mut x: impl Iterator<Item = &'v Val>,
    mut y: impl Iterator<Item = &'v Val>,
) -> Ordering {
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => match compare(p, q) {
                Ordering::Equal => {}
                order => return order,
            },
        }
    }
}

/// Where a value's type sorts.
fn rank(val: &Val) -> u8 {
    match val {
        Val::Null => 0,
        Val::Bool(_) => 1,
        Val::Num(_) => 2,
        Val::BStr(_) | Val::TStr(_) => 3,
        Val::Arr(_) => 4,
        Val::Obj(_) => 5,
    }
}

/// Whether `a` contains `b` (jq's `contains`): a substring, every element of `b` in an
/// element of `a`, every member of `b` in `a`'s member of that key, or else equal.
pub(super) fn contains(a: &Val, b: &Val) -> bool {
    bounds::work(1);
    match (a, b) {
        (Val::BStr(x), Val::BStr(y)) | (Val::TStr(x), Val::TStr(y)) => {
            bounds::work(x.len() / BYTES_PER_WORK);
            memchr::memmem::find(x, y).is_some()
        }
        (Val::Arr(x), Val::Arr(y)) => y.iter().all(|q| x.iter().any(|p| contains(p, q))),
        (Val::Obj(x), Val::Obj(y)) => y
            .iter()
            .all(|(key, q)| x.get(key).is_some_and(|p| contains(p, q))),
        _ => equal(a, b),
    }
}

/// Where `y` occurs in `x` (jaq's `indices`): characters of a string, bytes of a byte
/// string, elements of an array (a sub-array, or an element equal to `y`).
pub(super) fn indices(x: Value, y: &Value) -> ValR<Value> {
    let positions: Vec<usize> = match (&x.val, &y.val) {
        (Val::TStr(_), Val::TStr(part)) | (Val::BStr(_), Val::BStr(part)) if part.is_empty() => {
            Vec::new()
        }
        (Val::TStr(text), Val::TStr(part)) => {
            let starts = text.iter().enumerate().filter(|(_, b)| is_char_start(**b));
            let at = starts.enumerate().filter(|(_, (byte, _))| {
                bounds::work(1 + part.len() / BYTES_PER_WORK);
                text[*byte..].starts_with(part)
            });
            at.map(|(char, _)| char).collect()
        }
        (Val::BStr(bytes), Val::BStr(part)) => {
            let windows = bytes.windows(part.len()).enumerate();
            let at = windows.filter(|(_, window)| {
                bounds::work(1 + part.len() / BYTES_PER_WORK);
                window == &&part[..]
            });
            at.map(|(i, _)| i).collect()
        }
        (Val::Arr(_), Val::Arr(part)) if part.is_empty() => Vec::new(),
        (Val::Arr(items), Val::Arr(part)) => {
            let windows = items.windows(part.len()).enumerate();
            let at = windows
                .filter(|(_, window)| window.iter().zip(part.iter()).all(|(p, q)| equal(p, q)));
            at.map(|(i, _)| i).collect()
        }
        (Val::Arr(items), item) => {
            let at = items
                .iter()
                .enumerate()
                .filter(|(_, other)| equal(other, item));
            at.map(|(i, _)| i).collect()
        }
        _ => return Err(Error::index(x, y.clone())),
    };
    Ok(positions.into_iter().map(Value::from).collect())
}

/// Stops the run if combining integers `l` and `r` could give one wider than
/// [`MAX_INTEGER_BITS`]: `bits` gives the result's width from theirs.
fn check_integer_bits(l: &Num, r: &Num, bits: impl FnOnce(u64, u64) -> u64) {
    let width = |n: &Num| match n {
        Num::BigInt(i) => i.bits(),
        _ => 64,
    };
    if matches!((l, r), (Num::BigInt(_), _) | (_, Num::BigInt(_)))
        && bits(width(l), width(r)) > MAX_INTEGER_BITS
    {
        bounds::stop(format!(
            "the program built an integer wider than {MAX_INTEGER_BITS} bits"
        ));
    }
}

/// The bits a sum or difference of integers `l` and `r` bits wide may take.
fn bits_of_sum(l: u64, r: u64) -> u64 {
    l.max(r) + 1
}

/// The bits a product of integers `l` and `r` bits wide may take.
fn bits_of_product(l: u64, r: u64) -> u64 {
    l + r
}

/// How many times `"s" * n` repeats `s` (jaq_json's rule: a big integer saturates;
/// zero, a negative or a fraction gives no string).
fn repeats(n: &Num) -> Option<usize> {
    match n {
        Num::Int(i) => usize::try_from(*i).ok().filter(|i| *i > 0),
        Num::BigInt(_) if *n > Num::Int(0) => Some(usize::MAX),
        _ => None,
    }
}

/// `l * r` on objects (jaq_json's recursive merge); `Mul` calls it on two objects only.
fn merge(l: Value, r: Value) -> Value {
    let depth = l.depth.max(r.depth);
    match (l.into_val(), r.into_val()) {
        (Val::Obj(mut l), Val::Obj(r)) => {
            merge_objects(&mut l, r);
            Value::combined(Val::Obj(l), depth)
        }
        (l, _) => Value::combined(l, depth),
    }
}

/// Charges each object the merge copies or grows.
fn merge_objects(l: &mut Rc<Map>, r: Rc<Map>) {
    let copy = if Rc::strong_count(l) > 1 {
        CONTAINER_BYTES + l.len() * ENTRY_BYTES
    } else {
        0
    };
    bounds::allocate(copy + r.len() * ENTRY_BYTES);
    let l = Rc::make_mut(l);
    let r = Rc::try_unwrap(r).unwrap_or_else(|r| (*r).clone());
    for (key, value) in r {
        match (l.get_mut(&key), value) {
            (Some(Val::Obj(l)), Val::Obj(r)) => merge_objects(l, r),
            (Some(slot), value) => *slot = value,
            (None, value) => {
                l.insert(key, value);
            }
        }
    }
}

/// `l - r` on arrays: `l` without the elements equal to one of `r`'s. jaq_json looks
/// them up in a tree ordered by its own comparison; this takes this module's. `Sub`
/// calls it on two arrays only.
fn difference(l: Value, r: &Value) -> Value {
    bounds::allocate(copy_bytes(&l.val));
    let depth = l.depth;
    let (Val::Arr(mut items), Val::Arr(excluded)) = (l.into_val(), &r.val) else {
        return Value::default();
    };
    let mut excluded: Vec<&Val> = excluded.iter().collect();
    excluded.sort_by(|p, q| compare(p, q));
    Rc::make_mut(&mut items).retain(|item| {
        excluded
            .binary_search_by(|probe| compare(probe, item))
            .is_err()
    });
    Value::combined(Val::Arr(items), depth)
}

impl std::ops::Add for Value {
    type Output = ValR<Self>;
    fn add(self, rhs: Self) -> ValR<Self> {
        bounds::work(1);
        let depth = self.depth.max(rhs.depth);
        match (&self.val, &rhs.val) {
            (Val::Null, _) => return Ok(rhs),
            (_, Val::Null) => return Ok(self),
            (Val::Num(l), Val::Num(r)) => check_integer_bits(l, r, bits_of_sum),
            (Val::TStr(l), Val::TStr(r)) | (Val::BStr(l), Val::BStr(r)) => {
                bounds::check_string(l.len() + r.len());
                bounds::allocate(copy_bytes(&self.val) + r.len());
            }
            (Val::Arr(_), Val::Arr(r)) => {
                bounds::allocate(copy_bytes(&self.val) + r.len() * SLOT_BYTES);
            }
            (Val::Obj(_), Val::Obj(r)) => {
                bounds::allocate(copy_bytes(&self.val) + r.len() * ENTRY_BYTES);
            }
            _ => return Err(Error::math(self, ops::Math::Add, rhs)),
        }
        let sum = (self.into_val() + rhs.into_val()).map_err(lift_error)?;
        Ok(Value::combined(sum, depth))
    }
}

impl std::ops::Sub for Value {
    type Output = ValR<Self>;
    fn sub(self, rhs: Self) -> ValR<Self> {
        bounds::work(1);
        match (&self.val, &rhs.val) {
            (Val::Num(l), Val::Num(r)) => check_integer_bits(l, r, bits_of_sum),
            (Val::Arr(_), Val::Arr(_)) => return Ok(difference(self, &rhs)),
            _ => return Err(Error::math(self, ops::Math::Sub, rhs)),
        }
        let difference = (self.into_val() - rhs.into_val()).map_err(lift_error)?;
        Ok(Value::scalar(difference))
    }
}

impl std::ops::Mul for Value {
    type Output = ValR<Self>;
    fn mul(self, rhs: Self) -> ValR<Self> {
        bounds::work(1);
        match (&self.val, &rhs.val) {
            (Val::Num(l), Val::Num(r)) => check_integer_bits(l, r, bits_of_product),
            (Val::TStr(s) | Val::BStr(s), Val::Num(n))
            | (Val::Num(n), Val::TStr(s) | Val::BStr(s)) => {
                if let Some(times) = repeats(n) {
                    let len = s.len().saturating_mul(times);
                    bounds::check_string(len);
                    bounds::allocate(STRING_BYTES + len);
                }
            }
            (Val::Obj(_), Val::Obj(_)) => return Ok(merge(self, rhs)),
            _ => return Err(Error::math(self, ops::Math::Mul, rhs)),
        }
        let product = (self.into_val() * rhs.into_val()).map_err(lift_error)?;
        Ok(Value::scalar(product))
    }
}

impl std::ops::Div for Value {
    type Output = ValR<Self>;
    fn div(self, rhs: Self) -> ValR<Self> {
        bounds::work(1);
        match (&self.val, &rhs.val) {
            (Val::Num(_), Val::Num(_)) => {}
            (Val::TStr(s), Val::TStr(separator)) | (Val::BStr(s), Val::BStr(separator)) => {
                bounds::work(s.len() / BYTES_PER_WORK);
                let parts = if s.is_empty() {
                    0
                } else if separator.is_empty() {
                    char_count(s)
                } else {
                    memchr::memmem::find_iter(s, &separator[..]).count() + 1
                };
                bounds::allocate(CONTAINER_BYTES + parts * (SLOT_BYTES + STRING_BYTES));
            }
            _ => return Err(Error::math(self, ops::Math::Div, rhs)),
        }
        let quotient = (self.into_val() / rhs.into_val()).map_err(lift_error)?;
        Ok(Value::combined(quotient, 1))
    }
}

impl std::ops::Rem for Value {
    type Output = ValR<Self>;
    fn rem(self, rhs: Self) -> ValR<Self> {
        bounds::work(1);
        if !matches!((&self.val, &rhs.val), (Val::Num(_), Val::Num(_))) {
            return Err(Error::math(self, ops::Math::Rem, rhs));
        }
        let remainder = (self.into_val() % rhs.into_val()).map_err(lift_error)?;
        Ok(Value::scalar(remainder))
    }
}

impl std::ops::Neg for Value {
    type Output = ValR<Self>;
    fn neg(self) -> ValR<Self> {
        if !matches!(self.val, Val::Num(_)) {
            return Err(Error::typ(self, "number"));
        }
        Ok(Value::scalar((-self.into_val()).map_err(lift_error)?))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        equal(&self.val, &other.val)
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.val, &other.val)
    }
}

/// Shown in messages (jaq's errors): cut to [`MESSAGE_BYTES`].
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&shortened(&self.val, MESSAGE_BYTES))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::scalar(Val::from(b))
    }
}

impl From<isize> for Value {
    fn from(i: isize) -> Self {
        Value::scalar(Val::from(i))
    }
}

impl From<usize> for Value {
    fn from(i: usize) -> Self {
        Value::scalar(Val::from(i))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::scalar(Val::from(f))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::string(s.into_bytes())
    }
}

impl From<jaq_core::val::Range<Value>> for Value {
    fn from(range: jaq_core::val::Range<Value>) -> Self {
        let bound_depth = |bound: &Option<Value>| bound.as_ref().map_or(0, |b| b.depth);
        let depth = 1 + bound_depth(&range.start).max(bound_depth(&range.end));
        bounds::check_depth(depth);
        bounds::allocate(CONTAINER_BYTES + 2 * ENTRY_BYTES);
        let range = range.start.map(Value::into_val)..range.end.map(Value::into_val);
        Value {
            val: Val::from(range),
            depth,
        }
    }
}

impl FromIterator<Value> for Value {
    fn from_iter<I: IntoIterator<Item = Value>>(items: I) -> Self {
        bounds::allocate(CONTAINER_BYTES);
        let mut vals: Vec<Val> = Vec::new();
        let mut depth = 1;
        for item in items {
            depth = depth.max(item.depth + 1);
            bounds::check_depth(depth);
            if vals.len() == vals.capacity() {
                let more = vals.capacity().max(4);
                bounds::allocate(more * SLOT_BYTES);
                vals.reserve_exact(more);
            }
            vals.push(item.into_val());
        }
        Value {
            val: Val::Arr(Rc::new(vals)),
            depth,
        }
    }
}

/// What an update (`.[] |= f`, `.[k] |= f`, `.[a:b] |= f`) needs beyond jaq_json's,
/// which it runs: the charge for each output of `f`, the depth of the deepest, and
/// `f`'s own exceptions. Those are of this module's value type, which jaq_json's update
/// cannot carry: each is kept here while a stand-in goes through it.
struct Update<'a, C> {
    escaped: RefCell<Option<Exn<'a, Value>>>,
    deepest: Cell<usize>,
    /// Charges one output of `f` (the room it takes in the updated value).
    charge: C,
}

impl<'a, C: Fn(&Value)> Update<'a, C> {
    fn new(value: &Value, charge: C) -> Self {
        bounds::allocate(copy_bytes(&value.val));
        Update {
            escaped: RefCell::new(None),
            deepest: Cell::new(0),
            charge,
        }
    }

    /// `f`'s outputs, as jaq_json's update takes them.
    fn outputs<I>(&self, outputs: I) -> UpdateOutputs<'_, 'a, C, I> {
        UpdateOutputs {
            update: self,
            outputs,
        }
    }

    /// The updated value, `depth(deepest output)` deep, or the exception.
    fn finish(self, updated: ValX<'a, Val>, depth: impl FnOnce(usize) -> usize) -> ValX<'a, Value> {
        if let Some(exception) = self.escaped.into_inner() {
            return Err(exception);
        }
        match updated {
            Ok(val) => {
                let depth = depth(self.deepest.get());
                bounds::check_depth(depth);
                Ok(Value::combined(val, depth))
            }
            Err(exception) => Err(Exn::from(match exception.get_err() {
                Ok(error) => lift_error(error),
                Err(_) => Error::str("the update stopped without a value"),
            })),
        }
    }
}

/// The outputs of an update's `f`, as jaq_json's update takes them.
struct UpdateOutputs<'u, 'a, C, I> {
    update: &'u Update<'a, C>,
    outputs: I,
}

impl<'a, C: Fn(&Value), I: Iterator<Item = ValX<'a, Value>>> Iterator
    for UpdateOutputs<'_, 'a, C, I>
{
    type Item = ValX<'a, Val>;

    fn next(&mut self) -> Option<Self::Item> {
        let update = self.update;
        Some(match self.outputs.next()? {
            Ok(value) => {
                (update.charge)(&value);
                update.deepest.set(update.deepest.get().max(value.depth));
                Ok(value.into_val())
            }
            Err(exception) => {
                update.escaped.replace(Some(exception));
                Err(Exn::from(Error::new(Val::Null)))
            }
        })
    }
}

impl jaq_core::ValT for Value {
    fn from_num(n: &str) -> ValR<Self> {
        <Val as jaq_core::ValT>::from_num(n)
            .map(Value::scalar)
            .map_err(lift_error)
    }

    fn from_map<I: IntoIterator<Item = (Self, Self)>>(members: I) -> ValR<Self> {
        bounds::allocate(CONTAINER_BYTES);
        let mut map = Map::default();
        let mut depth = 1;
        for (key, value) in members {
            // A key is hashed whole: an array or object as a key could take
            // exponential time (its parts shared), and jq takes none.
            if is_container(&key.val) {
                return Err(Error::typ(key, "object key"));
            }
            depth = depth.max(value.depth + 1);
            bounds::check_depth(depth);
            bounds::allocate(ENTRY_BYTES);
            map.insert(key.into_val(), value.into_val());
        }
        Ok(Value {
            val: Val::obj(map),
            depth,
        })
    }

    fn key_values(self) -> BoxIter<'static, ValR<(Self, Self), Self>> {
        let depth = self.depth;
        let members = self.into_val().key_values().map(move |member| {
            member
                .map(|(k, v)| (Value::part_of(k, depth), Value::part_of(v, depth)))
                .map_err(lift_error)
        });
        Box::new(members)
    }

    fn values(self) -> Box<dyn Iterator<Item = ValR<Self>>> {
        let depth = self.depth;
        let items = self.into_val().values();
        Box::new(items.map(move |item| item.map(|v| Value::part_of(v, depth)).map_err(lift_error)))
    }

    fn index(self, index: &Self) -> ValR<Self> {
        bounds::work(1);
        match (&self.val, &index.val) {
            // jaq_json's `.[[..]]` on an array is `indices`, with its own comparison.
            (Val::Arr(_), Val::Arr(_)) => return indices(self, index),
            (Val::Obj(_), key) if is_container(key) => {
                return Err(Error::index(self, index.clone()))
            }
            _ => {}
        }
        let depth = self.depth;
        let slice = matches!(index.val, Val::Obj(_));
        let part = self.into_val().index(&index.val).map_err(lift_error)?;
        Ok(if slice {
            Value::slice_of(part, depth)
        } else {
            Value::part_of(part, depth)
        })
    }

    fn range(self, range: jaq_core::val::Range<&Self>) -> ValR<Self> {
        bounds::work(1);
        let depth = self.depth;
        let range = range.start.map(Value::as_val)..range.end.map(Value::as_val);
        let part = self.into_val().range(range).map_err(lift_error)?;
        Ok(Value::slice_of(part, depth))
    }

    fn map_values<'a, I: Iterator<Item = ValX<'a, Self>>>(
        self,
        opt: path::Opt,
        f: impl Fn(Self) -> I,
    ) -> ValX<'a, Self> {
        let depth = self.depth;
        let room = match &self.val {
            Val::Obj(_) => ENTRY_BYTES,
            _ => SLOT_BYTES,
        };
        let update = Update::new(&self, |_: &Value| bounds::allocate(room));
        bounds::allocate(CONTAINER_BYTES);
        let updated = self
            .into_val()
            .map_values(opt, |part| update.outputs(f(Value::part_of(part, depth))));
        update.finish(updated, |deepest| deepest + 1)
    }

    fn map_index<'a, I: Iterator<Item = ValX<'a, Self>>>(
        self,
        index: &Self,
        opt: path::Opt,
        f: impl Fn(Self) -> I,
    ) -> ValX<'a, Self> {
        let depth = self.depth;
        match (&self.val, &index.val) {
            (Val::Obj(_), key) if is_container(key) => {
                return opt.fail(self, |v| Exn::from(Error::index(v, index.clone())))
            }
            // A slice given as `{start, end}`.
            (Val::Arr(_) | Val::TStr(_) | Val::BStr(_), Val::Obj(range)) => {
                let start = range.get(&Val::utf8_str("start")).cloned();
                let end = range.get(&Val::utf8_str("end")).cloned();
                let bound = |b: Option<Val>| b.map(Value::scalar);
                let (start, end) = (bound(start), bound(end));
                return self.map_range(start.as_ref()..end.as_ref(), opt, f);
            }
            _ => {}
        }
        let room = if matches!(self.val, Val::Obj(_)) {
            ENTRY_BYTES
        } else {
            0
        };
        let update = Update::new(&self, |_: &Value| bounds::allocate(room));
        let updated = self.into_val().map_index(&index.val, opt, |part| {
            update.outputs(f(Value::part_of(part, depth)))
        });
        update.finish(updated, |deepest| depth.max(deepest + 1))
    }

    fn map_range<'a, I: Iterator<Item = ValX<'a, Self>>>(
        self,
        range: jaq_core::val::Range<&Self>,
        opt: path::Opt,
        f: impl Fn(Self) -> I,
    ) -> ValX<'a, Self> {
        let depth = self.depth;
        let own_len = match &self.val {
            Val::TStr(s) | Val::BStr(s) => s.len(),
            Val::Arr(items) => items.len(),
            _ => 0,
        };
        let is_string = matches!(self.val, Val::TStr(_) | Val::BStr(_));
        // The slice is copied, then the new part spliced in.
        let update = Update::new(&self, |new_part: &Value| match &new_part.val {
            Val::TStr(s) | Val::BStr(s) if is_string => {
                bounds::check_string(own_len + s.len());
                bounds::allocate(s.len());
            }
            Val::Arr(items) => bounds::allocate(items.len() * SLOT_BYTES),
            _ => {}
        });
        if !is_string {
            bounds::allocate(CONTAINER_BYTES + own_len * SLOT_BYTES);
        }
        let range = range.start.map(Value::as_val)..range.end.map(Value::as_val);
        let updated = self.into_val().map_range(range, opt, |part| {
            update.outputs(f(Value::combined(part, depth)))
        });
        update.finish(updated, |deepest| depth.max(deepest))
    }

    fn as_bool(&self) -> bool {
        self.val.as_bool()
    }

    fn into_string(self) -> Self {
        match &self.val {
            Val::TStr(_) => self,
            Val::BStr(bytes) => Value::scalar(Val::TStr(bytes.clone())),
            val => json_text(val),
        }
    }
}

impl jaq_std::ValT for Value {
    fn into_seq<S: FromIterator<Self>>(self) -> Result<S, Self> {
        if !matches!(self.val, Val::Arr(_)) {
            return Err(self);
        }
        let depth = self.depth;
        match self.into_val() {
            Val::Arr(items) => {
                let items = Rc::try_unwrap(items).unwrap_or_else(|items| (*items).clone());
                Ok(items
                    .into_iter()
                    .map(|v| Value::part_of(v, depth))
                    .collect())
            }
            other => Err(Value::scalar(other)),
        }
    }

    fn is_int(&self) -> bool {
        self.val.is_int()
    }

    fn as_isize(&self) -> Option<isize> {
        self.val.as_isize()
    }

    fn as_f64(&self) -> Option<f64> {
        self.val.as_f64()
    }

    fn is_utf8_str(&self) -> bool {
        self.val.is_utf8_str()
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        let bytes = self.val.as_bytes()?;
        // What asks for a string's bytes reads them: scanning counts as work.
        bounds::work(bytes.len() / BYTES_PER_WORK);
        Some(bytes)
    }

    fn as_sub_str(&self, sub: &[u8]) -> Self {
        Value::scalar(self.val.as_sub_str(sub))
    }

    fn from_utf8_bytes(b: impl AsRef<[u8]> + Send + 'static) -> Self {
        bounds::check_string(b.as_ref().len());
        bounds::allocate(STRING_BYTES + b.as_ref().len());
        Value::scalar(<Val as jaq_std::ValT>::from_utf8_bytes(b))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_deep_value_is_freed_without_recursion() {
        // 64 KiB of stack: freeing this value a level per call would take tens of MiB.
        let freed = std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(|| {
                let mut val = Val::Null;
                for level in 0..1_000_000usize {
                    val = if level % 2 == 0 {
                        Val::Arr(Rc::new(vec![val, Val::from(level)]))
                    } else {
                        Val::obj(Map::from_iter([(Val::from("k".to_owned()), val)]))
                    };
                }
                // Outside a run: measured, not refused.
                let value = Value::measured(val);
                assert_eq!(value.depth, 1_000_000);
                drop(value);
            })
            .unwrap()
            .join();
        assert!(freed.is_ok());
    }

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
