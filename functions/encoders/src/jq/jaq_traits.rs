//! jaq's value traits (jaq_core's and jaq_std's `ValT`) for [`Value`]: how a program
//! reads, indexes, slices and updates a value, each new part charged and each value's
//! depth kept.

use super::bounds::{self, BYTES_PER_WORK};
use super::compare::indices;
use super::json::{json_text, lift_error};
use super::value::{
    copy_bytes, is_container, Value, CONTAINER_BYTES, ENTRY_BYTES, SLOT_BYTES, STRING_BYTES,
};
use jaq_core::box_iter::BoxIter;
use jaq_core::{path, Error, Exn, ValR, ValX};
use jaq_json::{Map, Rc, Val};
use std::cell::{Cell, RefCell};

/// What an update (`.[] |= f`, `.[k] |= f`, `.[a:b] |= f`) needs beyond jaq_json's,
/// which it runs: the charge for each output of `f`, the depth of the deepest, and
/// `f`'s own exceptions. Those are of [`Value`], which jaq_json's update
/// cannot carry: each is kept here while a stand-in goes through it.
struct Update<'a, C> {
    escaped: RefCell<Option<Exn<'a, Value>>>,
    deepest: Cell<usize>,
    /// Charges one output of `f` (the room it takes in the updated value).
    charge: C,
}

impl<'a, C: Fn(&Value)> Update<'a, C> {
    fn new(value: &Value, charge: C) -> Self {
        bounds::allocate(copy_bytes(value.as_val()));
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
                update.deepest.set(update.deepest.get().max(value.depth()));
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
            if is_container(key.as_val()) {
                return Err(Error::typ(key, "object key"));
            }
            depth = depth.max(value.depth() + 1);
            bounds::check_depth(depth);
            bounds::allocate(ENTRY_BYTES);
            map.insert(key.into_val(), value.into_val());
        }
        Ok(Value::combined(Val::obj(map), depth))
    }

    fn key_values(self) -> BoxIter<'static, ValR<(Self, Self), Self>> {
        let depth = self.depth();
        let members = self.into_val().key_values().map(move |member| {
            member
                .map(|(k, v)| (Value::part_of(k, depth), Value::part_of(v, depth)))
                .map_err(lift_error)
        });
        Box::new(members)
    }

    fn values(self) -> Box<dyn Iterator<Item = ValR<Self>>> {
        let depth = self.depth();
        let items = self.into_val().values();
        Box::new(items.map(move |item| item.map(|v| Value::part_of(v, depth)).map_err(lift_error)))
    }

    fn index(self, index: &Self) -> ValR<Self> {
        bounds::work(1);
        match (self.as_val(), index.as_val()) {
            // jaq_json's `.[[..]]` on an array is `indices`, with its own comparison.
            (Val::Arr(_), Val::Arr(_)) => return indices(self, index),
            (Val::Obj(_), key) if is_container(key) => {
                return Err(Error::index(self, index.clone()))
            }
            _ => {}
        }
        let depth = self.depth();
        let slice = matches!(index.as_val(), Val::Obj(_));
        let part = self.into_val().index(index.as_val()).map_err(lift_error)?;
        Ok(if slice {
            Value::slice_of(part, depth)
        } else {
            Value::part_of(part, depth)
        })
    }

    fn range(self, range: jaq_core::val::Range<&Self>) -> ValR<Self> {
        bounds::work(1);
        let depth = self.depth();
        let range = range.start.map(Value::as_val)..range.end.map(Value::as_val);
        let part = self.into_val().range(range).map_err(lift_error)?;
        Ok(Value::slice_of(part, depth))
    }

    fn map_values<'a, I: Iterator<Item = ValX<'a, Self>>>(
        self,
        opt: path::Opt,
        f: impl Fn(Self) -> I,
    ) -> ValX<'a, Self> {
        let depth = self.depth();
        let room = match self.as_val() {
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
        let depth = self.depth();
        match (self.as_val(), index.as_val()) {
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
        let room = if matches!(self.as_val(), Val::Obj(_)) {
            ENTRY_BYTES
        } else {
            0
        };
        let update = Update::new(&self, |_: &Value| bounds::allocate(room));
        let updated = self.into_val().map_index(index.as_val(), opt, |part| {
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
        let depth = self.depth();
        let own_len = match self.as_val() {
            Val::TStr(s) | Val::BStr(s) => s.len(),
            Val::Arr(items) => items.len(),
            _ => 0,
        };
        let is_string = matches!(self.as_val(), Val::TStr(_) | Val::BStr(_));
        // The slice is copied, then the new part spliced in.
        let update = Update::new(&self, |new_part: &Value| match new_part.as_val() {
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
        self.as_val().as_bool()
    }

    fn into_string(self) -> Self {
        match self.as_val() {
            Val::TStr(_) => self,
            Val::BStr(bytes) => Value::scalar(Val::TStr(bytes.clone())),
            val => json_text(val),
        }
    }
}

impl jaq_std::ValT for Value {
    fn into_seq<S: FromIterator<Self>>(self) -> Result<S, Self> {
        if !matches!(self.as_val(), Val::Arr(_)) {
            return Err(self);
        }
        let depth = self.depth();
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
        self.as_val().is_int()
    }

    fn as_isize(&self) -> Option<isize> {
        self.as_val().as_isize()
    }

    fn as_f64(&self) -> Option<f64> {
        self.as_val().as_f64()
    }

    fn is_utf8_str(&self) -> bool {
        self.as_val().is_utf8_str()
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        let bytes = self.as_val().as_bytes()?;
        // What asks for a string's bytes reads them: scanning counts as work.
        bounds::work(bytes.len() / BYTES_PER_WORK);
        Some(bytes)
    }

    fn as_sub_str(&self, sub: &[u8]) -> Self {
        Value::scalar(self.as_val().as_sub_str(sub))
    }

    fn from_utf8_bytes(b: impl AsRef<[u8]> + Send + 'static) -> Self {
        bounds::check_string(b.as_ref().len());
        bounds::allocate(STRING_BYTES + b.as_ref().len());
        Value::scalar(<Val as jaq_std::ValT>::from_utf8_bytes(b))
    }
}
