//! The files generated from code stay equal to what is committed: `docs/errors.md` (the error
//! catalog), `docs/limits.md` (the limits module), `docs/current-capabilities.md` (the
//! capabilities table), `packages/nimbus/src/errors.generated.ts` (the SDK's error classes,
//! from the catalog) and `docs/openapi.json` (the route table). `scripts/gen-docs` rewrites them (`NIMBUS_UPDATE_DOCS=1`).

#[test]
fn committed_generated_docs_are_fresh() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
    let generated = [
        ("docs/errors.md", nimbus_core::catalog::render_markdown()),
        ("docs/limits.md", nimbus_core::limits::render_markdown()),
        ("docs/current-capabilities.md", crate::capabilities::render_markdown()),
        ("packages/nimbus/src/errors.generated.ts", nimbus_core::catalog::render_typescript()),
        ("docs/openapi.json", crate::openapi::document_text(&crate::routes::operations())),
    ];
    for (name, text) in generated {
        let path = format!("{root}{name}");
        if std::env::var_os("NIMBUS_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &text).unwrap_or_else(|e| panic!("write {path}: {e}"));
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == text, "{name} is stale: run scripts/gen-docs");
    }
}
