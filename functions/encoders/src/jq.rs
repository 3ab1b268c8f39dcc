//! jq programs for the CUSTOM format, on the jaq crates: compiled once per export (an
//! error names line, column and what the compiler expected), run once per record.
//!
//! A program gets nothing but its input:
//! - no environment (`env`, `$ENV`), clock (`now`, local time zones), logging or exit
//!   (`halt`, `halt_error`); `debug` and `stderr` pass their input through;
//! - no modules or data files (`import`, `include`);
//! - no `input`/`inputs`: each record is run alone.
//!
//! Each run is bounded ([`Limits`]), and a run that breaks a bound fails like a program
//! error, for that record only, whether or not the program `try`s:
//! - time, read as the program evaluates and as it builds, compares or scans values;
//! - the stack it may use, so a runaway recursion ends the run rather than the process;
//! - the memory its values take, each string, array and object charged before it is
//!   built, the length of a string and how deeply a value nests (`value`).
//!
//! What it outputs is the caller's to bound: [`write_json`] writes a value within a
//! number of bytes.

mod arithmetic;
mod bounds;
mod compare;
mod jaq_traits;
mod json;
mod natives;
mod value;

use jaq_core::compile::Undefined;
use jaq_core::data::HasLut;
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, Ctx, DataT, Exn, Vars};
use jaq_json::Val;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;
use value::Value;

pub(crate) use bounds::size;
pub(crate) use json::shortened;
pub use json::{write_json, TooLong};

/// A compiled program, shared by every encoder thread.
pub struct Program {
    filter: jaq_core::Filter<Sandboxed>,
}

/// The data jaq evaluates with: bounded values, and its lookup table behind the stack
/// check.
pub struct Sandboxed;

impl DataT for Sandboxed {
    type V<'a> = Value;
    type Data<'a> = &'a Guard<'a>;
}

/// Checks the run's stack and counts a step each time jaq looks up a term (every
/// evaluation step).
pub struct Guard<'a> {
    lut: &'a jaq_core::Lut<Sandboxed>,
    /// The stack address when the run began; the stack grows down from it.
    stack_top: usize,
}

/// The stack a run may use. Encoder threads have 2 MiB; the pipeline's own frames
/// above the run use a few KiB, and what jaq's natives recurse on below it (printing,
/// comparing, freeing a value) is bounded by [`Limits::depth`].
const STACK_BUDGET: usize = 1 << 20;

impl<'a> HasLut<'a, Sandboxed> for &'a Guard<'a> {
    fn lut(&self) -> &'a jaq_core::Lut<Sandboxed> {
        let here = 0u8;
        let depth = self
            .stack_top
            .saturating_sub(std::ptr::addr_of!(here) as usize);
        if depth > STACK_BUDGET {
            bounds::stop("the program recursed too deeply (stack limit)".to_owned());
        }
        bounds::work(1);
        self.lut
    }
}

/// Natives that reach outside the input: the environment, the clock and the system
/// time zone, the log, the process's exit.
const BLOCKED_NATIVES: &[&str] = &[
    "env",
    "now",
    "localtime",
    "strflocaltime",
    "halt",
    "debug_empty",
    "stderr_empty",
];
/// Definitions built on them, which must go too (the prelude would not compile).
const BLOCKED_DEFINITIONS: &[&str] = &["debug", "stderr", "halt", "halt_error"];
/// Definitions added to jaq's: `debug` and `stderr` stay usable (they pass their input
/// on), and jq's `@csv` and `@tsv`, which jaq's library lacks, behave as jq's do.
const EXTRA_DEFINITIONS: &str = r#"
def debug: .; def debug(msgs): .; def stderr: .;
def @csv: if type != "array" then error("\(type) (\(tojson)) cannot be csv-formatted, only an array can be")
  else map(if type == "string" then "\"" + (split("\"") | join("\"\"")) + "\""
    elif . == null then "" elif type == "number" or type == "boolean" then tostring
    else error("\(type) (\(tojson)) is not valid in a csv row") end) | join(",") end;
def @tsv: if type != "array" then error("\(type) (\(tojson)) cannot be tsv-formatted, only an array can be")
  else map(if type == "string" then split("\\") | join("\\\\") | split("\t") | join("\\t")
      | split("\n") | join("\\n") | split("\r") | join("\\r")
    elif . == null then "" elif type == "number" or type == "boolean" then tostring
    else error("\(type) (\(tojson)) is not valid in a tsv row") end) | join("\t") end;
"#;

/// A program that did not compile: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Line and column (from 1, in characters) in the program, when known.
    pub at: Option<(usize, usize)>,
    /// The compiler's message.
    pub message: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            Some((line, column)) => write!(f, "line {line}, column {column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// What a run did wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError(pub String);

/// Bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time per record.
    pub time: Duration,
    /// Bytes of values the program may build per record: every string, array and
    /// object it makes, grows or copies counts, freed or not.
    pub memory_bytes: usize,
    /// The longest string it may build.
    pub string_bytes: usize,
    /// How deeply a value it builds may nest.
    pub depth: usize,
}

impl Program {
    /// Compiles `program`; every error found, in program order.
    pub fn compile(program: &str) -> Result<Program, Vec<CompileError>> {
        let extra = load::parse(EXTRA_DEFINITIONS, |p| p.defs()).unwrap_or_default();
        let definitions = jaq_core::defs()
            .chain(jaq_std::defs().filter(|d| !BLOCKED_DEFINITIONS.contains(&d.name)))
            .chain(jaq_json::defs())
            .chain(extra);
        let natives = jaq_core::funs::<Sandboxed>()
            .chain(jaq_std::funs::<Sandboxed>())
            .chain(natives::natives())
            .filter(|(name, _, _)| !BLOCKED_NATIVES.contains(name));
        let arena = Arena::default();
        // `Loader::new` reads no module files: `include` and `import` fail to load.
        let modules = Loader::new(definitions)
            .load(
                &arena,
                File {
                    code: program,
                    path: (),
                },
            )
            .map_err(|errors| load_errors(program, errors))?;
        // A data import (`import "x" as $x;`) would compile and then have no value.
        load::import(&modules, |_| {
            Err("importing data files is not available".to_owned())
        })
        .map_err(|errors| load_errors(program, errors))?;
        let filter = Compiler::default()
            .with_funs(natives)
            .compile(modules)
            .map_err(|errors| {
                let mut found = Vec::new();
                for (_, undefined) in errors {
                    for (name, what) in undefined {
                        let message = match what {
                            Undefined::Filter(arity) => format!("{name}/{arity} is not defined"),
                            other => format!("{} {name} is not defined", other.as_str()),
                        };
                        found.push(error_at(program, name, message));
                    }
                }
                found
            })?;
        Ok(Program { filter })
    }

    /// Runs the program on `input` (JSON text) within `limits`, handing each output to
    /// `output` (which may refuse it). `Ok(n)`: it gave `n` outputs; `Err`: the program
    /// failed, broke a bound or had an output refused (what it output before is for the
    /// caller to discard).
    pub fn run(
        &self,
        input: &[u8],
        limits: Limits,
        mut output: impl FnMut(&Val) -> Result<(), RunError>,
    ) -> Result<usize, RunError> {
        let input = jaq_json::read::parse_single(input)
            .map_err(|e| RunError(format!("the record is not JSON jq reads: {e}")))?;
        let here = 0u8;
        let guard = Guard {
            lut: &self.filter.lut,
            stack_top: std::ptr::addr_of!(here) as usize,
        };
        let _in_force = bounds::enforce(limits);
        let run = panic::catch_unwind(AssertUnwindSafe(|| {
            let context = Ctx::<Sandboxed>::new(&guard, Vars::new([]));
            let mut outputs = 0;
            for value in self.filter.id.run((context, Value::measured(input))) {
                let value = value.map_err(|e| RunError(exception(e)))?;
                output(value.as_val())?;
                outputs += 1;
            }
            Ok(outputs)
        }));
        match run {
            Ok(result) => result,
            Err(payload) => match payload.downcast::<bounds::Stopped>() {
                Ok(stopped) => Err(RunError(stopped.0)),
                Err(payload) => panic::resume_unwind(payload),
            },
        }
    }
}

/// A runtime error's message: `error("x")` gives `x`, cut to a readable length.
fn exception(e: Exn<'_, Value>) -> String {
    let message = match e.get_err() {
        Ok(error) => match error.into_val().as_val() {
            Val::TStr(s) | Val::BStr(s) => String::from_utf8_lossy(s).into_owned(),
            other => json::shortened(other, json::MESSAGE_BYTES),
        },
        Err(_) => "the program stopped without a value".to_owned(),
    };
    match message.char_indices().nth(json::MESSAGE_BYTES) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message,
    }
}

fn load_errors(program: &str, errors: load::Errors<&str, ()>) -> Vec<CompileError> {
    let mut found = Vec::new();
    for (_, error) in errors {
        match error {
            load::Error::Io(errors) => {
                for (path, message) in errors {
                    found.push(error_at(
                        program,
                        path,
                        format!("cannot load {path:?}: {message}"),
                    ));
                }
            }
            load::Error::Lex(errors) => {
                for (expected, rest) in errors {
                    // An unclosed delimiter is reported where it opened.
                    let at = match expected {
                        load::lex::Expect::Delim(open) => open,
                        _ => rest,
                    };
                    let found_text = match rest.chars().next() {
                        Some(c) => format!("found {c:?}"),
                        None => "found the end of the program".to_owned(),
                    };
                    found.push(error_at(
                        program,
                        at,
                        format!("expected {}, {found_text}", expected.as_str()),
                    ));
                }
            }
            load::Error::Parse(errors) => {
                for (expected, rest) in errors {
                    let found_text = if rest.is_empty() {
                        "found the end of the program".to_owned()
                    } else {
                        let shown: String = rest.chars().take(20).collect();
                        format!("found {shown:?}")
                    };
                    found.push(error_at(
                        program,
                        rest,
                        format!("expected {}, {found_text}", expected.as_str()),
                    ));
                }
            }
        }
    }
    found
}

/// An error at `part`, a slice of `program` (jaq's errors point into the text).
fn error_at(program: &str, part: &str, message: String) -> CompileError {
    let offset = (part.as_ptr() as usize)
        .checked_sub(program.as_ptr() as usize)
        .filter(|o| o + part.len() <= program.len());
    let at = offset.map(|o| {
        let before = &program[..o];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, column)
    });
    CompileError { at, message }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        time: Duration::from_millis(500),
        memory_bytes: 64 << 20,
        string_bytes: 1 << 20,
        depth: 64,
    };

    fn outputs(program: &str, input: &str) -> Result<Vec<String>, RunError> {
        let program = Program::compile(program).unwrap();
        let mut texts = Vec::new();
        program.run(input.as_bytes(), LIMITS, |v| {
            let mut text = Vec::new();
            write_json(v, &mut text, usize::MAX).unwrap();
            texts.push(String::from_utf8(text).unwrap());
            Ok(())
        })?;
        Ok(texts)
    }

    /// The reason `program` was stopped on `{}`, and how long it took.
    fn stopped(program: &str) -> (String, Duration) {
        let started = std::time::Instant::now();
        let Err(error) = outputs(program, "{}") else {
            panic!("{program} ran to its end");
        };
        (error.0, started.elapsed())
    }

    #[test]
    fn runs_jq_on_the_record() {
        assert_eq!(
            outputs(
                r#".a[] | select(. > 1) | {n: ., s: "x\(.)"}"#,
                r#"{"a":[1,2,3]}"#
            )
            .unwrap(),
            [r#"{"n":2,"s":"x2"}"#, r#"{"n":3,"s":"x3"}"#]
        );
        assert_eq!(
            outputs("[.a, .b, null, true] | @csv", r#"{"a":"x,\"y\"","b":2}"#).unwrap(),
            [r#""\"x,\"\"y\"\"\",2,,true""#]
        );
        assert_eq!(
            outputs("[.a, 1] | @tsv", r#"{"a":"t\tn\nb\\"}"#).unwrap(),
            [r#""t\\tn\\nb\\\\\t1""#]
        );
        assert!(outputs("[{}] | @csv", "{}").is_err());
        assert_eq!(outputs("empty", "{}").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn compile_errors_say_where() {
        let Err(errors) = Program::compile(".a |\n  map(") else {
            panic!("compiles")
        };
        assert_eq!(errors[0].at.map(|(line, _)| line), Some(2), "{errors:?}");
        let Err(errors) = Program::compile(".a | nosuch(1)") else {
            panic!("compiles")
        };
        assert_eq!(
            errors[0].to_string(),
            "line 1, column 6: nosuch/1 is not defined"
        );
    }

    #[test]
    fn nothing_outside_the_input_is_reachable() {
        for program in [
            "env",
            "$ENV",
            "now",
            "input",
            "halt",
            r#"include "x"; ."#,
            r#"import "x" as $x; ."#,
        ] {
            assert!(Program::compile(program).is_err(), "{program} compiles");
        }
        assert_eq!(outputs(".a | debug", r#"{"a":1}"#).unwrap(), ["1"]);
    }

    #[test]
    fn runaway_programs_stop_with_a_reason() {
        let e = outputs("def f: f; f", "{}").unwrap_err();
        assert!(e.0.contains("longer than 500 ms"), "{e:?}");
        let e = outputs("def f: 1 + f; f", "{}").unwrap_err();
        assert!(e.0.contains("stack"), "{e:?}");
        let e = outputs(r#"error("no \(.a)")"#, r#"{"a":1}"#).unwrap_err();
        assert_eq!(e.0, "no 1");
    }

    #[test]
    fn values_are_bounded_as_they_are_built() {
        for (program, says) in [
            // One step doubles the string: checked before the copy, not after.
            (
                r#"reduce range(40) as $i ("x"; . + .)"#,
                "a string longer than 1 MiB",
            ),
            (r#""x" * 100000000"#, "a string longer than 1 MiB"),
            (
                r#"[range(3e4) | "\(.) is a number in a list of numbers"] | tojson"#,
                "a string longer than 1 MiB",
            ),
            // `[.]` nests one more each step.
            (
                "reduce range(1e6) as $i (0; [.])",
                "nested more than 64 deep",
            ),
            (
                "reduce range(1e6) as $i (0; {a: .})",
                "nested more than 64 deep",
            ),
            (
                "reduce range(1e6) as $i ({}; .a = .)",
                "nested more than 64 deep",
            ),
            (r#""[" * 100000 | fromjson"#, "nested more than 64 deep"),
            // One step, as jaq counts them, holding many values.
            (r#"[range(1e9) | "x" * 100000]"#, "more than 64 MiB of values"),
            (
                r#"[limit(1e9; repeat("x" * 100000))]"#,
                "more than 64 MiB of values",
            ),
            (
                r#"reduce range(1e9) as $i ([]; . + ["x" * 100000])"#,
                "more than 64 MiB of values",
            ),
            // Neither a bound nor the time can be caught.
            (
                r#"try ("x" * 100000000) catch "caught""#,
                "a string longer than 1 MiB",
            ),
            (
                "reduce range(40) as $i (3; . * .)",
                "an integer wider than 4096 bits",
            ),
            // Loops inside one native read the clock too: jaq's comparison of a value
            // that shares its parts takes exponential time.
            ("last(range(1e12))", "longer than 500 ms"),
            (
                "(reduce range(60) as $i (0; [., .])) as $a | reduce range(60) as $i (0; [., .]) | . == $a",
                "longer than 500 ms",
            ),
            (
                "(reduce range(60) as $i (0; [., .])) as $a | reduce range(60) as $i (0; [., .]) | [., $a] | sort | length",
                "longer than 500 ms",
            ),
            (r#"try (def f: f; f) catch "caught""#, "longer than 500 ms"),
        ] {
            let (reason, took) = stopped(program);
            assert!(reason.contains(says), "{program}: {reason}");
            assert!(took < Duration::from_secs(2), "{program} took {took:?}");
        }
    }

    #[test]
    fn programs_within_the_bounds_run_as_jq() {
        let input = r#"{"a":[3,1,2],"b":{"x":1},"s":"héllo, world"}"#;
        for (program, gives) in [
            (".a | sort", "[1,2,3]"),
            (".a - [1]", "[3,2]"),
            (".b * {y: {z: 1}}", r#"{"x":1,"y":{"z":1}}"#),
            (".s | length", "12"),
            (r#".s | indices("o")"#, "[4,8]"),
            (".s / \", \"", r#"["héllo","world"]"#),
            (".a | contains([1])", "true"),
            (".b | has(\"x\")", "true"),
            (".a | has(-1)", "false"),
            (".a | sort | bsearch(2)", "1"),
            ("(tojson | fromjson) == .", "true"),
            (".a | .[1:] |= map(. * 10)", "[3,10,20]"),
            (".b | .x |= [.]", r#"{"x":[1]}"#),
            (".a | .[[1, 2]]", "[1]"),
            (r#"[.a[] | tostring] | join("-")"#, r#""3-1-2""#),
            ("[limit(3; repeat(1))] | group_by(.) | length", "1"),
        ] {
            assert_eq!(outputs(program, input).unwrap(), [gives], "{program}");
        }
        // A value nested to the bound is built; printing it does not recurse.
        let deep = outputs("reduce range(63) as $i (0; [.]) | tojson | length", "{}").unwrap();
        assert_eq!(deep, ["127"]);
    }
}
