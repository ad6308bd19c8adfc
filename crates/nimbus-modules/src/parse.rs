//! Parsing one module's source with swc, as TypeScript or as JavaScript.

use swc_common::{BytePos, Span, Spanned};
use swc_ecma_ast::{EsVersion, Module};
use swc_ecma_parser::{EsSyntax, Parser, StringInput, Syntax, TsSyntax, lexer::Lexer};

use crate::location::{Lines, Problem};

/// Where a parsed source starts: swc reserves position 0 for "no position".
const START: BytePos = BytePos(1);

/// The language a module is parsed as, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    /// `.ts` and `.mts`.
    TypeScript,
    /// `.js` and `.mjs`: no TypeScript syntax.
    JavaScript,
}

/// The swc syntax for `language`. Decorators are parsed in both so that they are
/// refused with a clear message rather than as a syntax error.
pub(crate) fn syntax(language: Language) -> Syntax {
    match language {
        Language::TypeScript => Syntax::Typescript(TsSyntax { decorators: true, ..TsSyntax::default() }),
        Language::JavaScript => Syntax::Es(EsSyntax { decorators: true, ..EsSyntax::default() }),
    }
}

/// The byte offset in the parsed source of the start of `span`.
pub(crate) fn offset(span: Span) -> usize {
    span.lo.0.saturating_sub(START.0) as usize
}

/// Parses `source` as an ES module (strict mode) in `language`.
///
/// On failure, returns every syntax error swc reports, with its position and message.
/// A `.js` module that fails as JavaScript but parses as TypeScript says so.
pub(crate) fn parse(source: &str, language: Language, lines: &Lines<'_>) -> Result<Module, Vec<Problem>> {
    match parse_with(source, language) {
        Ok(module) => Ok(module),
        Err(errors) => {
            let typescript_hint = language == Language::JavaScript && parse_with(source, Language::TypeScript).is_ok();
            let mut problems: Vec<Problem> = errors
                .into_iter()
                .map(|(offset, message)| {
                    let message = if typescript_hint {
                        format!("{message} (TypeScript syntax is only allowed in .ts and .mts modules)")
                    } else {
                        message
                    };
                    lines.problem(offset, message)
                })
                .collect();
            problems.sort_by_key(|problem| (problem.line, problem.column));
            problems.dedup();
            Err(problems)
        }
    }
}

/// Parses, returning the errors as (byte offset, message).
fn parse_with(source: &str, language: Language) -> Result<Module, Vec<(usize, String)>> {
    let end = u32::try_from(source.len())
        .ok()
        .and_then(|len| START.0.checked_add(len))
        .ok_or_else(|| vec![(0, "the module is too large to parse".to_owned())])?;
    let input = StringInput::new(source, START, BytePos(end));
    let lexer = Lexer::new(syntax(language), EsVersion::latest(), input, None);
    let mut parser = Parser::new_from(lexer);
    let result = parser.parse_module();
    let recovered = parser.take_errors();
    let describe = |error: swc_ecma_parser::error::Error| (offset(error.span()), error.kind().msg().into_owned());
    match result {
        Ok(module) if recovered.is_empty() => Ok(module),
        Ok(_) => Err(recovered.into_iter().map(describe).collect()),
        Err(fatal) => {
            let mut errors = vec![describe(fatal)];
            errors.extend(recovered.into_iter().map(describe));
            Err(errors)
        }
    }
}
