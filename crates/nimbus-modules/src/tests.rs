//! Tests of [`compile_set`] as the deploy route uses it.

use super::*;

fn compile(files: &[(&str, &str)]) -> Result<Vec<CompiledModule>, Vec<DeployError>> {
    let map: BTreeMap<String, String> = files.iter().map(|(p, s)| ((*p).to_owned(), (*s).to_owned())).collect();
    compile_set(&map)
}

fn compile_ok(files: &[(&str, &str)]) -> Vec<CompiledModule> {
    compile(files).unwrap_or_else(|errors| panic!("expected success, got {errors:#?}"))
}

fn compile_err(files: &[(&str, &str)]) -> Vec<DeployError> {
    match compile(files) {
        Ok(modules) => panic!("expected errors, compiled {:#?}", modules.iter().map(|m| &m.js).collect::<Vec<_>>()),
        Err(errors) => errors,
    }
}

/// `js` with every run of whitespace collapsed to one space.
fn squash(js: &str) -> String {
    js.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The output parses as a JavaScript module.
fn assert_is_javascript(js: &str) {
    let lines = Lines::new(js);
    if let Err(problems) = parse::parse(js, Language::JavaScript, &lines) {
        panic!("output is not JavaScript: {problems:?}\n{js}");
    }
}

#[test]
fn erases_types() {
    for (ts, expected) in [
        ("interface User { name: string; age?: number }\nexport const a = 1;", "; export const a = 1;"),
        ("function id<T>(x: T): T { return x; }", "function id (x ) { return x; }"),
        ("export const c = { a: 1 } satisfies Record<string, number>;", "export const c = { a: 1 } ;"),
        ("declare const y: unknown;\nexport const n = (y as unknown) as number;", "; export const n = (y ) ;"),
        ("export const l = (globalThis as any).maybe!.length;", "export const l = (globalThis ).maybe .length;"),
        ("export function f(a?: number, b?: string) {}", "export function f(a , b ) {}"),
        (
            "import type { X } from \"zod\";\nimport { type Y } from \"zod\";\nimport { type Z, type W } from \"other\";\nexport const v: X | Y | Z | W | null = null;",
            "; ; ; export const v = null;",
        ),
        (
            "export type T = string;\nexport interface I { a: number }\nexport type { T as U };\nexport const x = 1;",
            "; export const x = 1;",
        ),
        (
            "export const f = (a: number): number => a + 1;\nexport const g = async (): Promise<void> => {};",
            "export const f = (a ) => a + 1; export const g = async () => {};",
        ),
        (
            "export class A { x: number = 1; private y?: string; static z: boolean; declare w: number; readonly r = 2; }",
            "export class A { x = 1; y ; static z ; r = 2; }",
        ),
        (
            "export abstract class B { abstract f(): void; protected g(): number { return 1; } }",
            "export class B { g() { return 1; } }",
        ),
        (
            "declare enum E { A }\ndeclare namespace N { const a: number }\nnamespace T { export type X = 1 }\nexport const d = 1;",
            "; export const d = 1;",
        ),
        ("let x!: number;\nx = 1;\nexport { x };", "let x ; x = 1; export { x };"),
        ("export function t(this: Window, a: number) { return a; }", "export function t( a ) { return a; }"),
        (
            "export function o(a: string): string;\nexport function o(a: any) { return a; }",
            "; export function o(a ) { return a; }",
        ),
        (
            "const f = <T,>(a: T) => a;\nexport const s = f<string>(\"a\");",
            "const f = (a ) => a; export const s = f (\"a\");",
        ),
        ("export default interface Foo { a: 1 }\nexport const e = 1;", "; export const e = 1;"),
        ("export const m = import.meta;", "export const m = import.meta;"),
        // Erasure must not join statements (automatic semicolon insertion hazards).
        ("let b = 1\nimport { type X } from \"zod\"\n[1].map(x => x)", "let b = 1 ; [1].map(x => x)"),
        ("let v = 1\ninterface I {}\n(v)", "let v = 1 ; (v)"),
        ("let x = 1\nlet y = x as\n  number\n(1)", "let x = 1 let y = x; (1)"),
        ("export const f = (a: number)\n  : number => a;", "export const f = (a ) => a;"),
        ("\u{feff}#!/usr/bin/env node\nexport const a: number = 1;", "#!/usr/bin/env node export const a = 1;"),
    ] {
        let modules = compile_ok(&[("a.ts", ts)]);
        let js = &modules[0].js;
        assert_eq!(squash(js), expected, "input: {ts}");
        assert_eq!(js.lines().count(), ts.lines().count(), "lines kept: {ts}");
        assert_is_javascript(js);
        assert!(modules[0].imports.is_empty(), "{ts}");
    }
}

#[test]
fn erasure_keeps_lines_and_columns() {
    let ts = "import type { Ctx } from \"zod\";\n\
              interface Row {\n  id: string;\n  n: number;\n}\n\
              export function count(rows: Row[], ctx?: Ctx): number {\n    console.log(\"marker\", rows as Row[]);\n\
              return rows.length;\n}\n";
    let js = &compile_ok(&[("a.ts", ts)])[0].js;
    let input_line = ts.lines().nth(6).expect("line 7");
    let output_line = js.lines().nth(6).expect("line 7");
    assert!(input_line.contains("console.log(\"marker\""), "{input_line}");
    assert_eq!(output_line.find("console.log"), input_line.find("console.log"));
    assert!(output_line.starts_with("    console.log(\"marker\", rows"), "{output_line:?}");
    assert_eq!(js.lines().count(), ts.lines().count());
    assert_is_javascript(js);
}

#[test]
fn javascript_is_kept_as_written() {
    let source = "import { query } from \"nimbus/server\";\nexport const q = query({ handler: async () => 1 });\n";
    for path in ["a.js", "a.mjs"] {
        let modules = compile_ok(&[(path, source)]);
        assert_eq!(modules[0].js, source);
        assert_eq!(modules[0].imports, [("nimbus/server".to_owned(), Resolved::Builtin(Builtin::Server))]);
    }
}

#[test]
fn refuses_code_generation_and_bad_syntax_with_positions() {
    for (file, source, line, column, message) in [
        (
            "a.ts",
            "const a = 1;\n\nenum Color { Red, Green }\n",
            3,
            1,
            "enum declarations need code generation and are not supported; use a union of string literals or a const object",
        ),
        ("a.ts", "export const a = 1;\n  export enum E { A }\n", 2, 10, "enum declarations"),
        ("a.ts", "const enum E { A }\n", 1, 1, "enum declarations"),
        ("a.ts", "namespace X { export const a = 1 }\n", 1, 1, "namespaces and modules that contain values"),
        ("a.ts", "module Y { export const b = 2 }\n", 1, 1, "namespaces and modules that contain values"),
        ("a.ts", "class P {\n  constructor(private x: number) {}\n}\n", 2, 23, "parameter properties"),
        ("a.ts", "function dec(..._: unknown[]) {}\n@dec class D {}\n", 2, 1, "decorators need code generation"),
        ("a.ts", "function dec(..._: unknown[]) {}\nclass E { @dec m() {} }\n", 2, 11, "decorators"),
        ("a.js", "function dec() {}\nclass E { @dec m() {} }\n", 2, 11, "decorators"),
        ("a.ts", "import fs = require(\"fs\");\n", 1, 1, "import x = require"),
        ("a.ts", "export = 1;\n", 1, 1, "export ="),
        ("a.ts", "const x = <number>(1 as unknown);\n", 1, 11, "angle-bracket type assertions"),
        ("a.ts", "const a = 1;\nconst b = ;\n", 2, 11, "Expression expected"),
        ("a.ts", "let é = \"ü\"; let x = ;", 1, 22, "Expression expected"),
        ("a.js", "let x: number = 1;\n", 1, 6, "TypeScript syntax is only allowed in .ts and .mts modules"),
        ("a.mjs", "interface I {}\n", 1, 1, "TypeScript syntax is only allowed"),
        ("a.ts", "with (Math) {}\n", 1, 1, "with"),
    ] {
        let errors = compile_err(&[(file, source)]);
        let found = errors
            .iter()
            .find(|e| e.file == file && e.message.contains(message))
            .unwrap_or_else(|| panic!("{source:?}: no error containing {message:?} in {errors:#?}"));
        assert_eq!((found.line, found.column), (line, column), "{source:?}: {found:?}");
    }
}

#[test]
fn resolves_and_lists_imports() {
    let modules = compile_ok(&[
        (
            "admin/users.ts",
            "import { query, v } from \"@nimbus/nimbus/server\";\n\
             import { v as values } from \"@nimbus/nimbus/values\";\n\
             import \"../side\";\n\
             import { short } from \"../lib/format\";\n\
             import type { Helper } from \"../lib\";\n\
             import { type T, long } from \"../lib/format.ts\";\n\
             export * from \"../lib\";\n\
             export * as all from \"../lib/index.js\";\n\
             export { short as s } from \"../lib/format\";\n\
             export type { T } from \"nowhere\";\n\
             export type * from \"nowhere\";\n\
             export const get = query({ args: { id: values.string() }, handler: () => short(long) });\n",
        ),
        ("lib/format.ts", "export type T = string;\nexport const short = 1, long = 2;\n"),
        ("lib/index.js", "export const x = 1;\n"),
        ("side.mts", "export {};\n"),
    ]);
    let users = modules.iter().find(|m| m.path.as_str() == "admin/users.ts").expect("compiled");
    let module = |path: &str| Resolved::Module(path.to_owned());
    let expected = [
        ("@nimbus/nimbus/server", Resolved::Builtin(Builtin::Server)),
        ("@nimbus/nimbus/values", Resolved::Builtin(Builtin::Values)),
        ("../side", module("side.mts")),
        ("../lib/format", module("lib/format.ts")),
        ("../lib/format.ts", module("lib/format.ts")),
        ("../lib", module("lib/index.js")),
        ("../lib/index.js", module("lib/index.js")),
        ("../lib/format", module("lib/format.ts")),
    ];
    let actual: Vec<(&str, &Resolved)> = users.imports.iter().map(|(s, r)| (s.as_str(), r)).collect();
    let expected: Vec<(&str, &Resolved)> = expected.iter().map(|(s, r)| (*s, r)).collect();
    assert_eq!(actual, expected);
    assert!(!users.js.contains("nowhere") && !users.js.contains("Helper"), "{}", users.js);
    assert_is_javascript(&users.js);
    let paths: Vec<&str> = modules.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(paths, ["admin/users.ts", "lib/format.ts", "lib/index.js", "side.mts"]);
}

#[test]
fn refuses_bad_imports_at_their_specifier() {
    for (source, line, column, message) in [
        ("import { a } from \"./missing\";", 1, 19, "cannot resolve import \"./missing\" from \"a.ts\""),
        ("import \"../up\";", 1, 8, "import \"../up\" from \"a.ts\" goes above the root of the deploy"),
        (
            "\nimport { z } from \"zod\";",
            2,
            19,
            "only @nimbus/nimbus/server, @nimbus/nimbus/values and nimbus/server can be imported",
        ),
        ("import z, { type Z } from \"zod\";", 1, 27, "cannot import \"zod\""),
        ("export * from \"./nope\";", 1, 15, "cannot resolve import \"./nope\""),
        ("export { a } from \"lodash\";", 1, 19, "cannot import \"lodash\""),
        ("export const m = () => import(\"./b\");", 1, 24, "dynamic import() is not supported"),
        ("const name = \"./b\";\nawait import(name);", 2, 7, "dynamic import()"),
        ("import data from \"./b\" with { type: \"json\" };", 1, 29, "import attributes"),
    ] {
        let errors = compile_err(&[("a.ts", source), ("b.ts", "export default 1;")]);
        let found = errors
            .iter()
            .find(|e| e.message.contains(message))
            .unwrap_or_else(|| panic!("{source:?}: no error containing {message:?} in {errors:#?}"));
        assert_eq!((found.file.as_str(), found.line, found.column), ("a.ts", line, column), "{source:?}");
    }
}

#[test]
fn collects_every_error_sorted() {
    let errors = compile_err(&[
        ("b.ts", "import \"zod\";\nenum E { A }\nconst x = import(\"./a\");\n"),
        ("a.ts", "export const a = ;\n"),
        ("c.ts", "ok"),
        ("bad path.ts", "export {}"),
        ("lib/x.ts", "export const x = 1;"),
        ("lib/x.js", "export const x = 1;"),
    ]);
    let summary: Vec<(&str, u32, u32)> = errors.iter().map(|e| (e.file.as_str(), e.line, e.column)).collect();
    assert_eq!(
        summary,
        [
            ("a.ts", 1, 18),
            ("b.ts", 1, 8),
            ("b.ts", 2, 1),
            ("b.ts", 3, 11),
            ("bad path.ts", 1, 1),
            ("lib/x.js", 1, 1),
            ("lib/x.ts", 1, 1),
        ],
        "{errors:#?}"
    );
    assert!(errors[4].message.starts_with("invalid module path: character ' ' is not allowed"), "{:?}", errors[4]);
    assert_eq!(
        errors[5].message,
        "modules \"lib/x.js\" and \"lib/x.ts\" differ only by extension; function names leave out the extension, so keep one of them"
    );
}

#[test]
fn every_path_rule_is_a_deploy_error_at_line_one() {
    for path in ["", "/a.ts", "a//b.ts", "./a.ts", "a/../b.ts", "a b.ts", "a", "a.tsx", ".ts", "a/"] {
        let errors = compile_err(&[(path, "export {}")]);
        assert_eq!(errors.len(), 1, "{path:?}: {errors:?}");
        assert_eq!((errors[0].file.as_str(), errors[0].line, errors[0].column), (path, 1, 1));
        assert!(errors[0].message.starts_with("invalid module path: "), "{:?}", errors[0]);
    }
}

#[test]
fn empty_deploy_compiles_to_nothing() {
    assert_eq!(compile(&[]), Ok(Vec::new()));
}

#[test]
fn deploy_errors_serialize_with_contract_field_names() {
    let error = DeployError { file: "a.ts".to_owned(), line: 3, column: 1, message: "m".to_owned() };
    let json = serde_json::to_value(&error).expect("serializes");
    assert_eq!(json, serde_json::json!({"file": "a.ts", "line": 3, "column": 1, "message": "m"}));
    assert_eq!(error.to_string(), "a.ts:3:1: m");
}

#[test]
fn hostile_input_gives_errors_not_panics() {
    let mut noise = String::new();
    let mut state: u32 = 0x1234_5678;
    for _ in 0..200_000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        noise.push(char::from_u32(state % 0x3_0000).unwrap_or('\u{fffd}'));
    }
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let binary = String::from_utf8_lossy(&bytes).into_owned();
    let one_mib = 1 << 20;
    let fill = |prefix: &str, unit: &str, suffix: &str| {
        format!("{prefix}{}{suffix}", unit.repeat((one_mib - prefix.len() - suffix.len()) / unit.len()))
    };
    let mut sources = vec![
        noise,
        binary,
        "\0\0\0\u{feff}\u{2028}".to_owned(),
        "`${`${`${".to_owned(),
        "/*".to_owned(),
        "\"\\".to_owned(),
        "}".repeat(10_000),
        fill("x = ", "(", ""),
        fill("x = ", "[", ""),
        fill("", "{", ""),
        fill("x = ", "!", "a"),
        fill("x = ", "`${", ""),
        fill("", "a = ", "1"),
        fill("x = ", "a ? a : ", "a"),
        fill("x = ", "a => ", "a"),
        fill("let x: ", "A<", ""),
        fill("", "a:", "1"),
        fill("if (a) a;", " else if (a) a;", ""),
        fill("x = a", " + a", ";"),
        fill("x = a", ".a", ";"),
    ];
    // Statements nested one per line, which a naive count of statement ends would miss.
    sources.push(fill("", "if (a)\n", "a;"));
    sources.push(fill("", "while (a)\n", "a;"));
    for source in &sources {
        for path in ["a.ts", "a.js"] {
            let started = std::time::Instant::now();
            let result = compile(&[(path, source)]);
            let head: String = source.chars().take(24).collect();
            assert!(started.elapsed().as_secs() < 60, "{head:?} took {:?}", started.elapsed());
            if let Err(errors) = result {
                assert!(!errors.is_empty());
                assert!(errors.iter().all(|e| e.file == path && e.line >= 1 && e.column >= 1), "{head:?}");
            }
        }
    }
}
