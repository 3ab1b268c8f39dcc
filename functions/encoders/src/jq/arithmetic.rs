//! jq's operators on values (`+`, `-`, `*`, `/`, `%`, negation), each charged before
//! it copies or grows a value, with the widths of integers and the lengths of strings
//! checked before they are built.

use super::bounds::{self, BYTES_PER_WORK};
use super::compare::compare;
use super::json::lift_error;
use super::value::{
    char_count, copy_bytes, Value, CONTAINER_BYTES, ENTRY_BYTES, SLOT_BYTES, STRING_BYTES,
};
use jaq_core::{ops, Error, ValR};
use jaq_json::{Map, Num, Rc, Val};

/// The widest integer a program may build. jq computes in doubles; jaq_json grows
/// integers without end, and printing one costs time quadratic in its length.
const MAX_INTEGER_BITS: u64 = 4096;

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
    let depth = l.depth().max(r.depth());
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
    bounds::allocate(copy_bytes(l.as_val()));
    let depth = l.depth();
    let (Val::Arr(mut items), Val::Arr(excluded)) = (l.into_val(), r.as_val()) else {
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
        let depth = self.depth().max(rhs.depth());
        match (self.as_val(), rhs.as_val()) {
            (Val::Null, _) => return Ok(rhs),
            (_, Val::Null) => return Ok(self),
            (Val::Num(l), Val::Num(r)) => check_integer_bits(l, r, bits_of_sum),
            (Val::TStr(l), Val::TStr(r)) | (Val::BStr(l), Val::BStr(r)) => {
                bounds::check_string(l.len() + r.len());
                bounds::allocate(copy_bytes(self.as_val()) + r.len());
            }
            (Val::Arr(_), Val::Arr(r)) => {
                bounds::allocate(copy_bytes(self.as_val()) + r.len() * SLOT_BYTES);
            }
            (Val::Obj(_), Val::Obj(r)) => {
                bounds::allocate(copy_bytes(self.as_val()) + r.len() * ENTRY_BYTES);
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
        match (self.as_val(), rhs.as_val()) {
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
        match (self.as_val(), rhs.as_val()) {
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
        match (self.as_val(), rhs.as_val()) {
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
        if !matches!((self.as_val(), rhs.as_val()), (Val::Num(_), Val::Num(_))) {
            return Err(Error::math(self, ops::Math::Rem, rhs));
        }
        let remainder = (self.into_val() % rhs.into_val()).map_err(lift_error)?;
        Ok(Value::scalar(remainder))
    }
}

impl std::ops::Neg for Value {
    type Output = ValR<Self>;
    fn neg(self) -> ValR<Self> {
        if !matches!(self.as_val(), Val::Num(_)) {
            return Err(Error::typ(self, "number"));
        }
        Ok(Value::scalar((-self.into_val()).map_err(lift_error)?))
    }
}
