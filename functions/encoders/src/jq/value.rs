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
//! holds (an input can be) does not overflow it.
//!
//! This module holds the type, what builds one and what it costs; beside it, how values
//! are printed and parsed as JSON (`json`), compared (`compare`), combined by jq's
//! operators (`arithmetic`), and read and updated by jaq (`jaq_traits`).

use super::bounds;
use jaq_json::{Rc, Val};

/// An array slot (a `Val`).
pub(super) const SLOT_BYTES: usize = std::mem::size_of::<Val>();
/// A string's handle and box, besides its bytes.
pub(super) const STRING_BYTES: usize = 48;
/// An array's or object's shared header.
pub(super) const CONTAINER_BYTES: usize = 48;
/// An object member: key, value, hash and index.
pub(super) const ENTRY_BYTES: usize = 56;
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
    pub(super) fn combined(val: Val, depth: usize) -> Self {
        let depth = if is_container(&val) { depth } else { 0 };
        Value { val, depth }
    }

    /// `val`, taken out of a container `container_depth` deep.
    pub(super) fn part_of(val: Val, container_depth: usize) -> Self {
        Value::combined(val, container_depth.saturating_sub(1))
    }

    /// `val`, a new slice of a value `depth` deep: a slice of an array is a new array.
    pub(super) fn slice_of(val: Val, depth: usize) -> Self {
        if let Val::Arr(items) = &val {
            bounds::allocate(CONTAINER_BYTES + items.len() * SLOT_BYTES);
        }
        Value::combined(val, depth)
    }

    /// A new string of `bytes`.
    pub(super) fn string(bytes: Vec<u8>) -> Self {
        bounds::check_string(bytes.len());
        bounds::allocate(STRING_BYTES + bytes.len());
        Value::scalar(Val::utf8_str(bytes))
    }

    pub(super) fn as_val(&self) -> &Val {
        &self.val
    }

    /// How deeply the value may nest.
    pub(super) fn depth(&self) -> usize {
        self.depth
    }

    pub(super) fn into_val(mut self) -> Val {
        std::mem::take(&mut self.val)
    }
}

/// The characters in UTF-8 `bytes`: the bytes that do not continue a sequence.
pub(super) fn char_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| is_char_start(**b)).count()
}

pub(super) fn is_char_start(byte: u8) -> bool {
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
pub(super) fn copy_bytes(val: &Val) -> usize {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use jaq_json::Map;

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
}
