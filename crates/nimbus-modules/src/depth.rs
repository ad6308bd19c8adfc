//! A bound on how deeply a module nests, checked before it is parsed.
//!
//! swc's parser, its visitors and the drop of its syntax tree recurse once per level of
//! nesting, and some of its paths are quadratic in it (nested labels, `else if` chains).
//! Within the 1 MiB a module may have, `((((…`, `!!!!…` or `a.a.a.a…` would overflow
//! any reasonable stack and abort the process, and 100 000 `else if`s take minutes. So
//! a module is first scanned by this small, non-recursive tokenizer, which
//! over-estimates the nesting depth, and is refused above [`MAX_NESTING`].
//!
//! The estimate at a token is the number of open brackets (`(`, `[`, `{`, `${`) plus,
//! for each open bracket (and the module itself):
//! - the operators, member accesses, calls and operator keywords (`typeof`, `new`,
//!   `extends`, `if`, …) since the last `;` or `,` or the last line break where a
//!   statement plainly ended: an expression's syntax tree is at most that deep;
//! - the `<` not yet closed by a `>` since the last `;` or statement end (type
//!   arguments: `A<B, A<B, …` nests across commas);
//! - the `else`s, which no `;` closes.
//!
//! A line break after the `)` of an `if`, `for`, `while` or `with` header does not end
//! the statement, so `if (a)⏎if (b)⏎…` is counted too. One statement of more than
//! 1 000 operators is refused as well, which only generated code does (none of the
//! 8 000 JavaScript and TypeScript files on a development machine, minified ones
//! included, came near the limit).
//!
//! Regular expressions are told from division the usual way (by the previous token),
//! so a rare misread can only shift the estimate. The estimate is a heuristic, not a
//! parser: the caller also runs compilation on a thread with a large stack
//! (`WORKER_STACK_BYTES` in `lib.rs`) as the backstop.

/// Estimated nesting above which a module is refused before parsing.
///
/// Real code stays under 100; 1 000 leaves a wide margin while keeping swc's recursion
/// (a few KiB of stack per level in a debug build) far inside the worker's stack and
/// its quadratic paths under a few milliseconds.
pub(crate) const MAX_NESTING: u32 = 1_000;

/// Returns the byte offset of the token at which the estimate first exceeds
/// [`MAX_NESTING`], if it does.
pub(crate) fn too_deep_at(source: &str) -> Option<usize> {
    Scanner::new(source).run()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An identifier, keyword or number, classified by [`Scanner::word`].
    Word(WordKind),
    /// A string literal.
    Str,
    /// A regular expression or the end of a template literal.
    Literal,
    /// `)`, `]` or `}`.
    Close,
    /// The `)` of an `if`, `for`, `while` or `with` header: the statement goes on.
    HeaderClose,
    /// `++` or `--`.
    Update,
    /// Any other punctuator.
    Punct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordKind {
    /// A name, number or value keyword (`this`, `true`): ends an expression.
    Value,
    /// `return`, `break`, `continue`: a line break after them ends the statement, but a
    /// `/` after them starts a regular expression.
    Jump,
    /// A keyword after which an operand follows (`typeof`, `else`, …).
    Operator,
    /// `if`, `for`, `while`, `with`: a header in parentheses and a statement follow.
    Header,
    /// `in`, `instanceof`, `of`, `as`, `satisfies`, `implements`: continue the previous
    /// line's expression.
    Infix,
}

impl Kind {
    /// Whether a `/` after this token divides (rather than starting a regex).
    fn ends_operand(self) -> bool {
        matches!(self, Kind::Word(WordKind::Value) | Kind::Str | Kind::Literal | Kind::Close | Kind::Update)
    }

    /// Whether a line break after this token may end a statement.
    fn may_end_statement(self) -> bool {
        self.ends_operand() || self == Kind::Word(WordKind::Jump)
    }

    /// Whether this token, first on its line, starts a new statement after one that
    /// may have ended.
    fn starts_statement(self) -> bool {
        matches!(self, Kind::Word(WordKind::Value | WordKind::Jump | WordKind::Operator | WordKind::Header) | Kind::Str)
    }
}

#[derive(Default)]
struct Frame {
    /// Operators since the last `;`, `,` or statement end.
    chain: u32,
    /// Unclosed `<` since the last `;` or statement end.
    angle: u32,
    /// `else`s since the frame opened.
    elses: u32,
    /// Whether this frame is a template substitution (`${ … }`).
    template: bool,
    /// Whether this frame is the header of an `if`, `for`, `while` or `with`.
    header: bool,
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
    frames: Vec<Frame>,
    /// Open brackets plus every frame's `chain`, `angle` and `elses`.
    total: u32,
    previous: Kind,
    line_break_before: bool,
}

impl<'a> Scanner<'a> {
    fn new(source: &'a str) -> Scanner<'a> {
        Scanner {
            bytes: source.as_bytes(),
            at: 0,
            frames: vec![Frame::default()],
            total: 0,
            previous: Kind::Punct,
            line_break_before: false,
        }
    }

    fn peek(&self, ahead: usize) -> u8 {
        self.bytes.get(self.at + ahead).copied().unwrap_or(0)
    }

    fn run(mut self) -> Option<usize> {
        while self.at < self.bytes.len() {
            let start = self.at;
            let byte = self.bytes[start];
            let kind = match byte {
                b'\n' | b'\r' => {
                    self.line_break_before = true;
                    self.at += 1;
                    continue;
                }
                b' ' | b'\t' | 0x0b | 0x0c => {
                    self.at += 1;
                    continue;
                }
                b'/' if self.peek(1) == b'/' => {
                    self.skip_line();
                    continue;
                }
                b'/' if self.peek(1) == b'*' => {
                    self.skip_block_comment();
                    continue;
                }
                b'\'' | b'"' => {
                    self.skip_string(byte);
                    Kind::Str
                }
                b'`' => {
                    if self.previous.ends_operand() {
                        self.add(Counter::Chain, 1);
                    }
                    self.at += 1;
                    self.template_part()
                }
                b'}' if self.frames.last().is_some_and(|f| f.template) => {
                    let _ = self.close();
                    self.at += 1;
                    self.template_part()
                }
                b'/' if !self.previous.ends_operand() => {
                    self.skip_regex();
                    Kind::Literal
                }
                b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' | b'\\' | b'#' | 0x80.. => self.word(),
                _ => self.punctuator(),
            };
            if self.line_break_before && self.previous.may_end_statement() && kind.starts_statement() {
                self.end_statement();
            }
            self.line_break_before = false;
            self.previous = kind;
            if self.total > MAX_NESTING {
                return Some(start);
            }
        }
        None
    }

    fn skip_line(&mut self) {
        while self.at < self.bytes.len() && !matches!(self.bytes[self.at], b'\n' | b'\r') {
            self.at += 1;
        }
    }

    fn skip_block_comment(&mut self) {
        self.at += 2;
        while self.at < self.bytes.len() {
            match self.bytes[self.at] {
                b'*' if self.peek(1) == b'/' => {
                    self.at += 2;
                    return;
                }
                b'\n' | b'\r' => self.line_break_before = true,
                _ => {}
            }
            self.at += 1;
        }
    }

    fn skip_string(&mut self, quote: u8) {
        self.at += 1;
        while self.at < self.bytes.len() {
            match self.bytes[self.at] {
                b'\\' => self.at += 2,
                b'\n' | b'\r' => return,
                byte => {
                    self.at += 1;
                    if byte == quote {
                        return;
                    }
                }
            }
        }
    }

    fn skip_regex(&mut self) {
        self.at += 1;
        let mut in_class = false;
        while self.at < self.bytes.len() {
            match self.bytes[self.at] {
                b'\\' => self.at += 1,
                b'[' => in_class = true,
                b']' => in_class = false,
                b'/' if !in_class => {
                    self.at += 1;
                    break;
                }
                b'\n' | b'\r' => return,
                _ => {}
            }
            self.at += 1;
        }
        while self.at < self.bytes.len() && self.bytes[self.at].is_ascii_alphanumeric() {
            self.at += 1;
        }
    }

    /// Scans template text from just after `` ` `` or a substitution's `}`: up to the
    /// closing `` ` `` (a literal) or a `${` (opens a template frame).
    fn template_part(&mut self) -> Kind {
        while self.at < self.bytes.len() {
            match self.bytes[self.at] {
                b'\\' => self.at += 2,
                b'`' => {
                    self.at += 1;
                    return Kind::Literal;
                }
                b'$' if self.peek(1) == b'{' => {
                    self.at += 2;
                    self.open(Frame { template: true, ..Frame::default() });
                    return Kind::Punct;
                }
                _ => self.at += 1,
            }
        }
        Kind::Literal
    }

    fn word(&mut self) -> Kind {
        let start = self.at;
        self.at += 1;
        while self.at < self.bytes.len()
            && matches!(self.bytes[self.at], b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$' | b'\\' | 0x80..)
        {
            self.at += 1;
        }
        let word = &self.bytes[start..self.at];
        let kind = match word {
            b"return" | b"break" | b"continue" => WordKind::Jump,
            b"in" | b"instanceof" | b"of" | b"as" | b"satisfies" | b"implements" => WordKind::Infix,
            b"typeof" | b"void" | b"delete" | b"await" | b"new" | b"yield" | b"keyof" | b"infer" | b"readonly"
            | b"unique" | b"extends" | b"do" | b"else" | b"case" | b"throw" | b"export" | b"default" => {
                WordKind::Operator
            }
            b"if" | b"for" | b"while" | b"with" => WordKind::Header,
            _ => WordKind::Value,
        };
        match kind {
            WordKind::Operator | WordKind::Infix | WordKind::Header => match word {
                b"else" => self.add(Counter::Elses, 1),
                b"case" | b"throw" | b"export" | b"default" => {}
                _ => self.add(Counter::Chain, 1),
            },
            WordKind::Value | WordKind::Jump => {}
        }
        Kind::Word(kind)
    }

    fn punctuator(&mut self) -> Kind {
        const LONGEST_FIRST: [&[u8]; 33] = [
            b">>>=", b"...", b"===", b"!==", b"**=", b"<<=", b">>=", b">>>", b"&&=", b"||=", b"??=", b"=>", b"==",
            b"!=", b"<=", b">=", b"&&", b"||", b"??", b"?.", b"++", b"--", b"+=", b"-=", b"*=", b"/=", b"%=", b"&=",
            b"|=", b"^=", b"**", b"<<", b">>",
        ];
        let rest = &self.bytes[self.at..];
        let token: &[u8] = LONGEST_FIRST.into_iter().find(|p| rest.starts_with(p)).unwrap_or(&rest[..1]);
        self.at += token.len();
        match token {
            b"(" | b"[" => {
                if self.previous.ends_operand() {
                    // A call or an index: `a()()()` and `a[0][0]` nest like `a.b.c`.
                    self.add(Counter::Chain, 1);
                }
                let header = token == b"(" && self.previous == Kind::Word(WordKind::Header);
                self.open(Frame { header, ..Frame::default() });
            }
            b"{" => self.open(Frame::default()),
            b")" | b"]" | b"}" => {
                return match self.close() {
                    Some(frame) if frame.header => Kind::HeaderClose,
                    _ => Kind::Close,
                };
            }
            b";" => self.end_statement(),
            b"," => self.reset_chain(),
            b"<" => self.add(Counter::Angle, 1),
            b">" => self.close_angles(1),
            b">>" => self.close_angles(2),
            b">>>" => self.close_angles(3),
            b"++" | b"--" => {
                self.add(Counter::Chain, 1);
                return Kind::Update;
            }
            _ => self.add(Counter::Chain, 1),
        }
        Kind::Punct
    }

    fn top(&mut self) -> &mut Frame {
        if self.frames.is_empty() {
            self.frames.push(Frame::default());
        }
        let last = self.frames.len() - 1;
        &mut self.frames[last]
    }

    fn open(&mut self, frame: Frame) {
        self.frames.push(frame);
        self.total = self.total.saturating_add(1);
    }

    /// Closes the innermost bracket, if any is open, and returns its frame.
    fn close(&mut self) -> Option<Frame> {
        if self.frames.len() < 2 {
            return None;
        }
        let frame = self.frames.pop()?;
        let nesting = frame.chain.saturating_add(frame.angle).saturating_add(frame.elses).saturating_add(1);
        self.total = self.total.saturating_sub(nesting);
        Some(frame)
    }

    /// `,`: the operators before it are not around what follows.
    fn reset_chain(&mut self) {
        let chain = std::mem::take(&mut self.top().chain);
        self.total = self.total.saturating_sub(chain);
    }

    /// `;` or a line break that ends a statement.
    fn end_statement(&mut self) {
        self.reset_chain();
        let angle = std::mem::take(&mut self.top().angle);
        self.total = self.total.saturating_sub(angle);
    }

    fn add(&mut self, counter: Counter, n: u32) {
        let frame = self.top();
        let count = match counter {
            Counter::Chain => &mut frame.chain,
            Counter::Angle => &mut frame.angle,
            Counter::Elses => &mut frame.elses,
        };
        *count = count.saturating_add(n);
        self.total = self.total.saturating_add(n);
    }

    fn close_angles(&mut self, n: u32) {
        let frame = self.top();
        let removed = frame.angle.min(n);
        frame.angle -= removed;
        self.total = self.total.saturating_sub(removed);
    }
}

#[derive(Clone, Copy)]
enum Counter {
    Chain,
    Angle,
    Elses,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repeat(prefix: &str, unit: &str, n: usize, suffix: &str) -> String {
        format!("{prefix}{}{suffix}", unit.repeat(n))
    }

    #[test]
    fn refuses_deep_nesting_of_every_shape() {
        for (prefix, unit, suffix) in [
            ("x = ", "(", ""),
            ("x = ", "[", ""),
            ("x = ", "{a:", ""),
            ("x = ", "`${", ""),
            ("x = ", "!", "a"),
            ("x = ", "- ", "a"),
            ("x = ", "typeof ", "a"),
            ("x = ", "new ", "a"),
            ("x = ", "await ", "a"),
            ("", "a = ", "1"),
            ("x = ", "a ? a : ", "a"),
            ("x = ", "a => ", "a"),
            ("x = a", " ** a", ""),
            ("", "a: ", "1"),
            ("", "a:\n", "1"),
            ("if (a) a;", " else if (a) a;", ""),
            ("if (a) a\n", "else if (a) a\n", ""),
            ("", "if (a) ", "a"),
            ("", "if (a)\n", "a"),
            ("", "while (a)\n", "a"),
            ("", "for (;;)\n", "a"),
            ("", "do\n", "a; while (a)"),
            ("let x: ", "A<", ""),
            ("let x: ", "keyof ", "A"),
            ("x = ", "class extends ", "A {}"),
            ("x = ", "f(a,\n", ""),
            ("x = a", ".a", ""),
            ("x = a", "\n.a", ""),
            ("x = a", "?.a", ""),
            ("x = a", "()", ""),
            ("x = a", "[0]", ""),
            ("x = a", "``", ""),
            ("x = a", " * a", ""),
            ("x = a", " && a", ""),
            ("let x: A", " | A", ""),
            ("let x: ", "A<B, ", ""),
        ] {
            let shallow = repeat(prefix, unit, 50, suffix);
            assert_eq!(too_deep_at(&shallow), None, "{unit:?} x 50 is fine");
            let deep = repeat(prefix, unit, MAX_NESTING as usize + 10, suffix);
            assert!(too_deep_at(&deep).is_some(), "{unit:?} x {} is refused", MAX_NESTING + 10);
        }
    }

    #[test]
    fn long_flat_code_is_not_nesting() {
        let statements = "const a = 1;\nlet b = a < 2 ? \"x\" : 'y';\n".repeat(5_000);
        let no_semicolons =
            "const a = 1\nlet b = a ? -1 : +2\nb += 3\nif (b) return\nif (a) f()\nfor (const x of y) g(x)\n"
                .repeat(5_000);
        let calls = "x.filter(\"a\", \"eq\", 1).order(\"desc\")\n  .take(3)\n".repeat(5_000);
        let comparisons = "{ if (a < b) c = !d; else e = -f; }\n".repeat(5_000);
        let generics = "let m: Map<string, Array<Set<number>>> = new Map();\n".repeat(5_000);
        let literals = "x = [1, 2, 3, {a: 1, b: [2]}, `t ${a + `u ${b}`} (`, '(', \"[\", /[(]/g];\n".repeat(5_000);
        let comments = "// ((((((((\n/* [[[[[[[[ */ x = a / b / c;\n".repeat(5_000);
        for source in [statements, no_semicolons, calls, comparisons, generics, literals, comments] {
            assert_eq!(too_deep_at(&source), None, "{}", &source[..60]);
        }
    }

    #[test]
    fn unbalanced_or_garbage_input_does_not_panic() {
        for source in ["}}}}))]]", "`${", "'unterminated", "/* open", "/[", "\\", "#!x", "${}`"] {
            let _ = too_deep_at(source);
        }
        let garbage: String = (0..20_000u32).filter_map(|i| char::from_u32((i * 7919) % 0x11_0000)).collect();
        let _ = too_deep_at(&garbage);
    }
}
