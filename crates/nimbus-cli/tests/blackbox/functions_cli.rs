//! `nimbus functions deploy|call` (the CLI over functions.md §2–§3): a directory of modules
//! deployed through the discovered server, calls printing their value, and failures reported
//! with the server's code and a non-zero exit.

use std::path::Path;

use serde_json::{Value, json};

use crate::harness::{CliOutput, Dirs};

const NOTES_TS: &str = r#"
import { query, mutation, v } from "nimbus/server";
import { title } from "./lib/format";

export const count = query({
  args: { tag: v.string() },
  handler: async (ctx, { tag }): Promise<number> =>
    (await ctx.db.query("notes").filter("tag", "eq", tag).collect()).length,
});

export const add = mutation({
  args: { tag: v.string(), text: v.string() },
  handler: async (ctx, { tag, text }) => {
    const id: string = await ctx.db.insert("notes", { tag, text: title(text) });
    return { id, text: title(text) };
  },
});
"#;

const FORMAT_TS: &str = "export function title(s: string): string { return s.toUpperCase(); }\n";

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
    std::fs::write(path, text).expect("write module");
}

/// Asserts success and returns stdout's JSON document.
fn ok(out: &CliOutput) -> Value {
    assert_eq!(out.code, Some(0), "{out:?}");
    out.json()
}

#[test]
fn deploy_a_directory_then_call_a_query_and_a_mutation() {
    let dirs = Dirs::new();
    let server = dirs.start();
    server.create_tenant("cli1");
    let src = dirs.root().join("functions");
    write(&src, "notes.ts", NOTES_TS);
    write(&src, "lib/format.ts", FORMAT_TS);
    // Never deployed: declarations, packages, dot-directories and other files. Each would fail
    // the deploy if it were sent (unresolvable import or bad syntax).
    write(&src, "lib/types.d.ts", "export declare const broken: = (;\n");
    write(&src, "node_modules/pkg/index.js", "import \"left-pad\";\n");
    write(&src, ".cache/stale.ts", "this is not javascript\n");
    write(&src, "README.md", "# notes\n");
    let src = src.to_str().expect("utf-8 path");

    let dry = ok(&dirs.cli(&["functions", "deploy", src, "--tenant", "cli1", "--dry-run"]));
    assert_eq!(dry["version"], 1, "{dry}");
    assert_eq!(server.get("/api/tenants/cli1/functions").json["version"], 0, "a dry run activates nothing");

    let deployed = ok(&dirs.cli(&["functions", "deploy", src, "--tenant", "cli1"]));
    assert_eq!(deployed["version"], 1, "{deployed}");
    assert_eq!(
        deployed["functions"],
        json!([
            { "name": "notes:add", "kind": "mutation", "visibility": "public" },
            { "name": "notes:count", "kind": "query", "visibility": "public" },
        ])
    );

    let cases: [(&str, &str, Value); 3] = [
        ("notes:count", r#"{"tag": "a"}"#, json!(0)),
        ("notes:add", r#"{"tag": "a", "text": "hello"}"#, json!("HELLO")),
        ("notes:count", r#"{"tag": "a"}"#, json!(1)),
    ];
    for (name, args, expected) in cases {
        let value = ok(&dirs.cli(&["functions", "call", name, "--tenant", "cli1", "--args", args]));
        let got = if name == "notes:add" { value["text"].clone() } else { value.clone() };
        assert_eq!(got, expected, "{name} {args} → {value}");
    }
    let notes = server.list_all("cli1", "notes");
    assert_eq!(notes.len(), 1, "the mutation committed one document: {notes:?}");
    assert_eq!(notes[0]["text"], "HELLO");
}

#[test]
fn failures_print_the_code_and_exit_non_zero() {
    let dirs = Dirs::new();
    let src = dirs.root().join("bad");
    write(&src, "main.ts", "import { missing } from \"./nowhere\";\nexport const x = missing;\n");
    let src = src.to_str().expect("utf-8 path");

    // No server yet: exit 3.
    let out = dirs.cli(&["functions", "deploy", src, "--tenant", "cli2"]);
    assert_eq!(out.code, Some(3), "{out:?}");

    let server = dirs.start();
    server.create_tenant("cli2");
    let out = dirs.cli(&["functions", "deploy", src, "--tenant", "cli2"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("[function.deploy_failed]"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let out = dirs.cli(&["functions", "deploy", src, "--tenant", "cli2", "--json"]);
    let envelope: Value = serde_json::from_str(out.stderr.trim()).expect("envelope on stderr");
    assert_eq!(envelope["error"]["code"], "function.deploy_failed", "{out:?}");
    assert!(envelope["error"]["detail"]["errors"][0]["file"].is_string(), "{envelope}");
    assert_eq!(server.get("/api/tenants/cli2/functions").json["version"], 0, "a failed deploy changes nothing");

    let empty = dirs.root().join("empty");
    std::fs::create_dir_all(empty.join("node_modules")).expect("create dirs");
    let empty = empty.to_str().expect("utf-8 path");
    let cases: [(&[&str], i32, &str); 5] = [
        (&["functions", "call", "main:x", "--tenant", "cli2"], 1, "[function.not_found]"),
        (&["functions", "call", "main:x", "--tenant", "nobody"], 1, "[session.tenant_not_found]"),
        (&["functions", "call", "main:x", "--tenant", "cli2", "--args", "[1]"], 2, "JSON object"),
        (&["functions", "deploy", "/nonexistent-nimbus-dir", "--tenant", "cli2"], 1, "[op.invalid_input]"),
        // An empty directory would remove every function: refused.
        (&["functions", "deploy", empty, "--tenant", "cli2"], 1, "holds no module"),
    ];
    for (args, code, needle) in cases {
        let out = dirs.cli(args);
        assert_eq!(out.code, Some(code), "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {out:?}");
    }
}
