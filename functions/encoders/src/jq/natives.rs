//! jaq_json's natives, for [`Value`]: jaq_json defines them on its own value type only.
//! Its `tobytes` (jaq's byte strings, not jq's) is left out.

use super::value::{self, Value};
use super::Sandboxed;
use super::{compare, json};
use jaq_core::native::{bome, run, unary, v, Filter, Fun};
use jaq_core::{Error, RunPtr, ValR};
use jaq_json::{Num, Val};

/// The natives, to put beside jaq_core's and jaq_std's.
pub(super) fn natives() -> impl Iterator<Item = Fun<Sandboxed>> {
    filters().into_vec().into_iter().map(run::<Sandboxed>)
}

fn filters() -> Box<[Filter<RunPtr<Sandboxed>>]> {
    Box::new([
        ("length", v(0), |cv| bome(length(&cv.1))),
        ("tojson", v(0), |cv| {
            bome(Ok(json::json_text(cv.1.as_val())))
        }),
        ("fromjson", v(0), |cv| json::parse_json(&cv.1)),
        ("contains", v(1), |cv| {
            unary(cv, |x, y| {
                Ok(Value::from(compare::contains(x.as_val(), y.as_val())))
            })
        }),
        ("has", v(1), |cv| unary(cv, |x, key| has(&x, &key))),
        ("indices", v(1), |cv| {
            unary(cv, |x, y| compare::indices(x, &y))
        }),
        ("bsearch", v(1), |cv| {
            unary(cv, |x, target| bsearch(&x, &target))
        }),
    ])
}

/// Elements, members, characters or bytes; a number's absolute value; 0 for null.
fn length(x: &Value) -> ValR<Value> {
    Ok(match x.as_val() {
        Val::Null => Value::from(0usize),
        Val::Bool(_) => return Err(Error::str(format_args!("{x} has no length"))),
        Val::Num(n) if *n < Num::Int(0) => Value::scalar(Val::Num(-n.clone())),
        Val::Num(_) => x.clone(),
        Val::TStr(s) => Value::from(value::char_count(s)),
        Val::BStr(b) => Value::from(b.len()),
        Val::Arr(items) => Value::from(items.len()),
        Val::Obj(members) => Value::from(members.len()),
    })
}

/// Whether object `x` has member `key`, or array `x` has index `key` (from 0, as jq).
fn has(x: &Value, key: &Value) -> ValR<Value> {
    let found = match (x.as_val(), key.as_val()) {
        (Val::Obj(members), k) if !value::is_container(k) => members.contains_key(k),
        (Val::Arr(items), Val::Num(n)) => n
            .as_isize()
            .and_then(|i| usize::try_from(i).ok())
            .is_some_and(|i| i < items.len()),
        _ => return Err(Error::index(x.clone(), key.clone())),
    };
    Ok(Value::from(found))
}

/// Where `target` is in sorted array `x`, or `-1 - i` for `i` where it would go.
fn bsearch(x: &Value, target: &Value) -> ValR<Value> {
    let Val::Arr(items) = x.as_val() else {
        return Err(Error::typ(x.clone(), "array"));
    };
    let found = items.binary_search_by(|item| compare::compare(item, target.as_val()));
    let at = |i: usize| isize::try_from(i).unwrap_or(isize::MAX);
    Ok(Value::from(found.map_or_else(|i| -1 - at(i), at)))
}
