//! The docs generated from code stay equal to what is committed: `docs/errors.md` (the error
//! catalog), `docs/limits.md` (the limits module) and `docs/current-capabilities.md` (the
//! capabilities table). `scripts/gen-docs` rewrites them (`NIMBUS_UPDATE_DOCS=1`).

#[test]
fn committed_generated_docs_are_fresh() {
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/");
    let generated = [
        ("errors.md", nimbus_core::catalog::render_markdown()),
        ("limits.md", nimbus_core::limits::render_markdown()),
        ("current-capabilities.md", crate::capabilities::render_markdown()),
    ];
    for (name, text) in generated {
        let path = format!("{docs}{name}");
        if std::env::var_os("NIMBUS_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &text).unwrap_or_else(|e| panic!("write {path}: {e}"));
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == text, "docs/{name} is stale: run scripts/gen-docs");
    }
}
