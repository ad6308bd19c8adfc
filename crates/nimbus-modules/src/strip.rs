//! TypeScript type erasure, and refusal of the syntax that would need code generation.
//!
//! Types are erased by `swc_ts_fast_strip` in strip-only mode (what Node.js runs for
//! `--experimental-strip-types`): every type is replaced by whitespace of the same
//! UTF-16 length and line breaks are kept, so the remaining code keeps its lines and
//! (except after an erased astral character on the same line) its columns; a `;` is
//! put in place of an erased statement where automatic semicolon insertion needs it.
//! It refuses what cannot be erased: `enum` (an ambient `declare enum` is erased,
//! since it emits nothing), namespaces or `module`s containing values (type-only ones
//! are erased), parameter properties, `import x = require()`, `export =` and
//! `<T>value` assertions. Decorators are valid JavaScript to swc, so they are refused
//! here, in TypeScript and JavaScript modules alike.

use std::sync::{Arc, Mutex};

use swc_common::{
    GLOBALS, Globals, SourceMap, Span,
    errors::{DiagnosticBuilder, Emitter, Handler},
    sync::Lrc,
};
use swc_ecma_ast::{Decorator, Module};
use swc_ecma_parser::TsSyntax;
use swc_ecma_visit::{Visit, VisitWith};
use swc_ts_fast_strip::{Mode, Options};

use crate::location::{Lines, Problem};
use crate::parse::offset;

/// Plain-English messages for the stripper's, keyed by the start of its message.
const MESSAGES: [(&str, &str); 7] = [
    (
        "TypeScript enum",
        "enum declarations need code generation and are not supported; use a union of string literals or a const object",
    ),
    (
        "TypeScript namespace",
        "namespaces and modules that contain values need code generation and are not supported; use module exports (a namespace of types only is fine)",
    ),
    ("TypeScript import equals", "import x = require(…) is not supported; use an ES import"),
    ("TypeScript export assignment", "export = is not supported; use an ES export"),
    (
        "TypeScript parameter property",
        "parameter properties (constructor(private x: T)) need code generation and are not supported; declare the field and assign it in the constructor",
    ),
    ("The angle-bracket syntax", "angle-bracket type assertions (<T>value) are not supported; write value as T"),
    ("A unary or await expression", "a unary or await expression on the left of ** must be parenthesized"),
];

/// Returns (byte offset, message) for every decorator in `module`.
pub(crate) fn refuse_decorators(module: &Module) -> Vec<(usize, String)> {
    let mut finder = Decorators(Vec::new());
    module.visit_with(&mut finder);
    finder.0
}

struct Decorators(Vec<(usize, String)>);

impl Visit for Decorators {
    fn visit_decorator(&mut self, decorator: &Decorator) {
        self.0.push((offset(decorator.span), "decorators need code generation and are not supported".to_owned()));
        decorator.visit_children_with(self);
    }
}

/// Erases the types of a TypeScript module's `source`, after blanking the whole
/// statements at the byte ranges `erase` (import or export lists whose every entry is
/// `type`).
///
/// The problems are located in `source`: blanking keeps lines and columns.
pub(crate) fn strip(source: &str, erase: &[(usize, usize)]) -> Result<String, Vec<Problem>> {
    let input = blank_statements(source, erase);
    let diagnostics: Diagnostics = Arc::default();
    let handler = Handler::with_emitter(true, false, Box::new(Collector(Arc::clone(&diagnostics))));
    let source_map: Lrc<SourceMap> = Lrc::default();
    let options = Options {
        module: Some(true),
        parser: TsSyntax { decorators: true, ..TsSyntax::default() },
        mode: Mode::StripOnly,
        ..Options::default()
    };
    let result =
        GLOBALS.set(&Globals::new(), || swc_ts_fast_strip::operate(&source_map, &handler, input.clone(), options));
    let failure = match result {
        Ok(output) => return Ok(output.code),
        Err(error) => error.message,
    };
    let start = source_map.files().first().map_or(0, |file| file.start_pos.0);
    let lines = Lines::new(&input);
    let collected = diagnostics.lock().map(|d| d.clone()).unwrap_or_default();
    let mut problems: Vec<Problem> = collected
        .into_iter()
        .map(|(span, message)| {
            let at = span.map_or(0, |span| span.lo.0.saturating_sub(start) as usize);
            lines.problem(at, plain(&message))
        })
        .collect();
    if problems.is_empty() {
        problems.push(lines.problem(0, format!("type erasure failed: {failure}")));
    }
    Err(problems)
}

/// Replaces each byte range of `source` with `;` and whitespace, keeping its line
/// breaks and its length in UTF-16 units. Ranges not on character boundaries are left.
fn blank_statements(source: &str, erase: &[(usize, usize)]) -> String {
    let mut ranges = erase.to_vec();
    ranges.sort_unstable();
    let mut output = String::with_capacity(source.len());
    let mut copied = 0;
    for (start, end) in ranges {
        let (Some(before), Some(statement)) = (source.get(copied..start), source.get(start..end)) else {
            continue;
        };
        output.push_str(before);
        for (i, c) in statement.chars().enumerate() {
            match c {
                '\n' | '\r' | '\u{2028}' | '\u{2029}' => output.push(c),
                _ if i == 0 => output.push(';'),
                _ => output.extend(std::iter::repeat_n(' ', c.len_utf16())),
            }
        }
        copied = end;
    }
    output.push_str(source.get(copied..).unwrap_or_default());
    output
}

fn plain(message: &str) -> String {
    MESSAGES
        .iter()
        .find(|(prefix, _)| message.starts_with(prefix))
        .map_or_else(|| message.to_owned(), |(_, plain)| (*plain).to_owned())
}

/// The stripper's diagnostics: (primary span, message).
type Diagnostics = Arc<Mutex<Vec<(Option<Span>, String)>>>;

/// Collects the stripper's diagnostics.
struct Collector(Diagnostics);

impl Emitter for Collector {
    fn emit(&mut self, diagnostic: &mut DiagnosticBuilder<'_>) {
        if let Ok(mut collected) = self.0.lock() {
            collected.push((diagnostic.span.primary_span(), diagnostic.message()));
        }
    }
}
