//! The bounds of the run on this thread. jaq calls `+`, `[..]` and the rest on the value
//! type with no context to pass, so the run's deadline and the memory it has left are
//! kept in a thread-local while it runs ([`enforce`]).
//!
//! A broken bound unwinds out of jaq ([`stop`]) instead of returning a jq error: a
//! program can catch an error (`try`) and go on, and a bound must end the run.

use super::Limits;
use std::cell::Cell;
use std::panic;
use std::time::Instant;

/// Why a run was stopped from inside jaq: the unwinding payload, caught by
/// [`super::Program::run`], with the message for the errors report.
pub(super) struct Stopped(pub(super) String);

/// Work done between two readings of the clock. A unit is one evaluation step, one
/// value built or compared, or [`BYTES_PER_WORK`] bytes copied or scanned, so reading
/// the clock costs little and no stretch between two readings runs long.
const WORK_BETWEEN_CLOCK_READINGS: u32 = 64;
/// Bytes copied or scanned per unit of work.
pub(super) const BYTES_PER_WORK: usize = 4096;

/// The run in force: its limits and deadline.
#[derive(Clone, Copy)]
struct Run {
    limits: Limits,
    deadline: Instant,
}

thread_local! {
    /// The run in progress on this thread, if any. Values built outside a run (none are,
    /// but a test may) are not bounded.
    static RUN: Cell<Option<Run>> = const { Cell::new(None) };
    /// Work left until the clock is read: counted on its own, as it is on every step.
    static WORK_UNTIL_CLOCK: Cell<u32> = const { Cell::new(WORK_BETWEEN_CLOCK_READINGS) };
    /// Bytes the run may still allocate.
    static MEMORY_LEFT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// A run's bounds, in force on this thread until this is dropped (also when the run
/// unwinds).
pub(super) struct InForce {
    previous: (Option<Run>, u32, usize),
}

impl Drop for InForce {
    fn drop(&mut self) {
        let (run, work, memory) = self.previous;
        RUN.set(run);
        WORK_UNTIL_CLOCK.set(work);
        MEMORY_LEFT.set(memory);
    }
}

/// Puts `limits` in force on this thread, from now.
pub(super) fn enforce(limits: Limits) -> InForce {
    let run = Run {
        limits,
        deadline: Instant::now() + limits.time,
    };
    InForce {
        previous: (
            RUN.replace(Some(run)),
            WORK_UNTIL_CLOCK.replace(WORK_BETWEEN_CLOCK_READINGS),
            MEMORY_LEFT.replace(limits.memory_bytes),
        ),
    }
}

/// Counts `units` of work, reading the clock every [`WORK_BETWEEN_CLOCK_READINGS`].
pub(super) fn work(units: usize) {
    let left = WORK_UNTIL_CLOCK.get();
    let units = u32::try_from(units).unwrap_or(u32::MAX);
    if left > units {
        WORK_UNTIL_CLOCK.set(left - units);
        return;
    }
    WORK_UNTIL_CLOCK.set(WORK_BETWEEN_CLOCK_READINGS);
    if let Some(run) = RUN.get().filter(|run| Instant::now() >= run.deadline) {
        stop(format!(
            "the program ran longer than {} ms on one record",
            run.limits.time.as_millis()
        ));
    }
}

/// Charges `bytes` the run is about to allocate, before it does.
pub(super) fn allocate(bytes: usize) {
    match MEMORY_LEFT.get().checked_sub(bytes) {
        Some(left) => MEMORY_LEFT.set(left),
        None => match RUN.get() {
            Some(run) => stop(format!(
                "the program built more than {} of values for one record",
                size(run.limits.memory_bytes)
            )),
            None => MEMORY_LEFT.set(usize::MAX),
        },
    }
    work(1 + bytes / BYTES_PER_WORK);
}

/// Stops the run with the message `broken` gives for its limits, if `broken` gives one.
fn check(broken: impl FnOnce(&Limits) -> Option<String>) {
    if let Some(message) = RUN.get().and_then(|run| broken(&run.limits)) {
        stop(message);
    }
}

/// Stops the run if a string of `len` bytes would be longer than the bound.
pub(super) fn check_string(len: usize) {
    check(|limits| {
        (len > limits.string_bytes).then(|| {
            format!(
                "the program built a string longer than {}",
                size(limits.string_bytes)
            )
        })
    });
}

/// The longest string the run may build (no bound outside a run).
pub(super) fn string_bytes() -> usize {
    RUN.get().map_or(usize::MAX, |run| run.limits.string_bytes)
}

/// Stops the run if a value nested `depth` deep would pass the bound.
pub(super) fn check_depth(depth: usize) {
    check(|limits| {
        (depth > limits.depth).then(|| {
            format!(
                "the program built a value nested more than {} deep",
                limits.depth
            )
        })
    });
}

/// Ends the run with `message` (see the module documentation).
pub(super) fn stop(message: String) -> ! {
    panic::resume_unwind(Box::new(Stopped(message)))
}

/// `bytes` for a message: in MiB or KiB when it is a whole number of them.
pub(crate) fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}
