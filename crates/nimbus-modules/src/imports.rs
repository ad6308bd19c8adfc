//! Import analysis: which imports a module makes at run time, and the import forms
//! refused (dynamic `import()`, import attributes, source and defer phases).
//!
//! Works on the AST of the module as written, so positions are the author's. An
//! import or `export … from` counts unless it is type-only: `import type …`,
//! `export type … from`, `export type * from`, or a list whose every entry is marked
//! `type` (`import { type A, type B } from "zod"`). The last form is erased whole,
//! as TypeScript does by default, rather than left as a side-effect import.

use swc_common::Span;
use swc_ecma_ast::{
    CallExpr, Callee, ExportAll, ExportSpecifier, ImportDecl, ImportPhase, ImportSpecifier, Module, NamedExport,
    ObjectLit, Str,
};
use swc_ecma_visit::{Visit, VisitWith};

use crate::parse::offset;

/// A static import (or re-export) that survives type erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StaticImport {
    /// The specifier as written, without quotes.
    pub specifier: String,
    /// Byte offset of the specifier's string literal.
    pub offset: usize,
}

/// What [`analyze`] found in one module.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    /// Static imports that survive erasure, in source order.
    pub imports: Vec<StaticImport>,
    /// Byte ranges of whole statements to erase because every entry of their list is
    /// `type`; the type stripper leaves them as `import {} from "…"` otherwise.
    pub erase: Vec<(usize, usize)>,
    /// Refused forms, as (byte offset, message).
    pub refused: Vec<(usize, String)>,
}

/// Analyzes the imports of a parsed module.
pub(crate) fn analyze(module: &Module) -> Analysis {
    let mut analysis = Analysis::default();
    module.visit_with(&mut analysis);
    analysis
}

impl Analysis {
    fn import(&mut self, source: &Str, with: Option<&ObjectLit>) {
        if let Some(attributes) = with {
            self.refused.push((offset(attributes.span), "import attributes (with { … }) are not supported".to_owned()));
        }
        self.imports.push(StaticImport {
            specifier: source.value.to_atom_lossy().as_str().to_owned(),
            offset: offset(source.span),
        });
    }

    fn erase(&mut self, span: Span) {
        let start = offset(span);
        self.erase.push((start, start + (span.hi.0.saturating_sub(span.lo.0)) as usize));
    }
}

impl Visit for Analysis {
    fn visit_import_decl(&mut self, import: &ImportDecl) {
        if import.type_only {
            return;
        }
        let every_entry_is_type = !import.specifiers.is_empty()
            && import.specifiers.iter().all(|s| matches!(s, ImportSpecifier::Named(named) if named.is_type_only));
        if every_entry_is_type {
            self.erase(import.span);
            return;
        }
        if import.phase != ImportPhase::Evaluation {
            self.refused.push((offset(import.span), "source and defer imports are not supported".to_owned()));
        }
        self.import(&import.src, import.with.as_deref());
    }

    fn visit_named_export(&mut self, export: &NamedExport) {
        let Some(source) = &export.src else {
            return;
        };
        if export.type_only {
            return;
        }
        let every_entry_is_type = !export.specifiers.is_empty()
            && export.specifiers.iter().all(|s| matches!(s, ExportSpecifier::Named(named) if named.is_type_only));
        if every_entry_is_type {
            self.erase(export.span);
            return;
        }
        self.import(source, export.with.as_deref());
    }

    fn visit_export_all(&mut self, export: &ExportAll) {
        if !export.type_only {
            self.import(&export.src, export.with.as_deref());
        }
    }

    fn visit_call_expr(&mut self, call: &CallExpr) {
        if matches!(call.callee, Callee::Import(_)) {
            self.refused.push((
                offset(call.span),
                "dynamic import() is not supported; use a static import at the top of the module".to_owned(),
            ));
        }
        call.visit_children_with(self);
    }
}
