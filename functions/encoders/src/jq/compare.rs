//! Comparisons of values: equality, order, containment and where one value occurs in
//! another. They are labelport's own, not jaq_json's: jaq_json's take exponential time
//! on a value whose parts are shared (`[., .]` in a loop), without a look at the clock;
//! these count each pair compared as work.

use super::bounds::{self, BYTES_PER_WORK};
use super::value::{is_char_start, Value};
use jaq_core::{Error, ValR};
use jaq_json::{Map, Rc, Val};
use std::cmp::Ordering;

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        equal(self.as_val(), other.as_val())
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
        compare(self.as_val(), other.as_val())
    }
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
    let positions: Vec<usize> = match (x.as_val(), y.as_val()) {
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
