//! Table access policies: their contract JSON, their validation, and their evaluation for the
//! anonymous principal.
//!
//! A policy has one [`Rule`] per [`Operation`]. A rule is a flag (`require_authenticated`) and a
//! list of predicates that must all hold. The HTTP data API and functions act as the anonymous
//! principal, which is never authenticated and has no claims, so a rule that asks for either
//! denies every document; [`AccessPolicy::denies_all`] lets callers refuse a whole query up front.
//!
//! This module is pure: it reads documents it is handed and does no I/O.

use std::borrow::Cow;
use std::cmp::Ordering;

use nimbus_core::{ErrorCode, NimbusError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::document::{Document, FieldPath};
use crate::value::{json_eq, same_kind_cmp};

/// A table's access policy: one rule per operation. Stored and sent as
/// `{read, create, update, delete}`.
///
/// Unknown keys are rejected here and in every nested type: a misspelt key in a security policy
/// must fail loudly rather than be ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicy {
    /// Rule for reading documents (get, list, query).
    pub read: Rule,
    /// Rule for inserting documents.
    pub create: Rule,
    /// Rule for updating (patching or replacing) documents.
    pub update: Rule,
    /// Rule for deleting documents.
    pub delete: Rule,
}

/// The rule for one operation: `{require_authenticated, predicates}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Whether the caller must be authenticated; the anonymous principal never is.
    pub require_authenticated: bool,
    /// Predicates that must all hold (an empty list allows).
    pub predicates: Vec<Predicate>,
}

/// One comparison: `{left, op, right}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predicate {
    /// Left-hand operand.
    pub left: Operand,
    /// Comparison operator.
    pub op: CmpOp,
    /// Right-hand operand.
    pub right: Operand,
}

/// A comparison operator, written in snake_case on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    /// Equal (JSON equality).
    Eq,
    /// Not equal; false when either side is missing.
    Neq,
    /// Greater than; numbers with numbers, strings with strings.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
}

/// Where an operand's value comes from, tagged by `"source"` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operand {
    /// A constant: `{"source":"literal","value":…}`.
    Literal {
        /// The constant, any JSON value (including `null`).
        value: Value,
    },
    /// A claim of the caller: `{"source":"principal_claim","principal":…,"claim":"…"}`.
    PrincipalClaim {
        /// Which identity of the caller the claim is read from.
        principal: Principal,
        /// The claim's name.
        claim: String,
    },
    /// A field of the document being read or written: `{"source":"document_field","field":"…"}`.
    /// Not allowed in `delete`, which has no new document.
    DocumentField {
        /// A field path (`owner.team`).
        field: String,
    },
    /// A field of the stored document before the write:
    /// `{"source":"existing_document_field","field":"…"}`. Only in `update` and `delete`.
    ExistingDocumentField {
        /// A field path (`owner.team`).
        field: String,
    },
}

/// The caller identity a principal claim is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    /// The caller's identity as presented.
    Identity,
    /// The caller's identity after verification.
    VerifiedIdentity,
}

/// An operation a policy governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Reading a document.
    Read,
    /// Inserting a document.
    Create,
    /// Updating a document.
    Update,
    /// Deleting a document.
    Delete,
}

impl Operation {
    /// Every operation, in contract order.
    pub const ALL: [Operation; 4] = [Operation::Read, Operation::Create, Operation::Update, Operation::Delete];

    /// The operation's contract name: `read`, `create`, `update` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    /// Whether a rule for this operation may read the new document (`document_field`).
    fn has_document(self) -> bool {
        !matches!(self, Operation::Delete)
    }

    /// Whether a rule for this operation may read the stored document (`existing_document_field`).
    fn has_existing(self) -> bool {
        matches!(self, Operation::Update | Operation::Delete)
    }
}

impl AccessPolicy {
    /// The rule governing `op`.
    pub fn rule(&self, op: Operation) -> &Rule {
        match op {
            Operation::Read => &self.read,
            Operation::Create => &self.create,
            Operation::Update => &self.update,
            Operation::Delete => &self.delete,
        }
    }

    /// Checks the policy's shape: `document_field` is not used in `delete`,
    /// `existing_document_field` only in `update` and `delete`, and every field operand is a valid
    /// field path. Errors are 400 `op.invalid_input` naming
    /// `access_policy.<op>.predicates[<i>].<left|right>`.
    pub fn validate(&self) -> Result<(), NimbusError> {
        for op in Operation::ALL {
            for (i, predicate) in self.rule(op).predicates.iter().enumerate() {
                for (side, operand) in [("left", &predicate.left), ("right", &predicate.right)] {
                    validate_operand(op, operand).map_err(|reason| {
                        NimbusError::invalid_input(
                            format!("access_policy.{}.predicates[{i}].{side}", op.as_str()),
                            reason,
                        )
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Whether the rule for `op` denies the anonymous principal whatever the document: it requires
    /// authentication or has a predicate over a principal claim. Callers use it to refuse a whole
    /// query before looking at any row.
    pub fn denies_all(&self, op: Operation) -> bool {
        let rule = self.rule(op);
        rule.require_authenticated || rule.predicates.iter().any(Predicate::reads_principal)
    }

    /// Evaluates the rule for `op` as the anonymous principal.
    ///
    /// `document` is the document read (for `read`) or the new document (for `create` and
    /// `update`); `existing` is the stored document before an `update` or `delete`. Every
    /// predicate must hold; an operand that cannot be resolved (a missing field, or no document to
    /// read it from) makes its predicate false.
    ///
    /// A denial is 403 `auth.permission_denied` with detail `{table, operation}`.
    pub fn check(
        &self,
        table: &str,
        op: Operation,
        document: Option<&Document>,
        existing: Option<&Document>,
    ) -> Result<(), NimbusError> {
        // Only the documents the operation's rules may read are visible, so a rule that slipped
        // past validation can never be satisfied by the other document.
        let document = document.filter(|_| op.has_document());
        let existing = existing.filter(|_| op.has_existing());
        let allowed = !self.denies_all(op)
            && self.rule(op).predicates.iter().all(|predicate| predicate.holds(document, existing));
        if allowed { Ok(()) } else { Err(permission_denied(table, op)) }
    }
}

impl Predicate {
    /// Whether either side reads a principal claim.
    fn reads_principal(&self) -> bool {
        [&self.left, &self.right].into_iter().any(|operand| matches!(operand, Operand::PrincipalClaim { .. }))
    }

    /// Whether the predicate holds for the anonymous principal over these documents.
    fn holds(&self, document: Option<&Document>, existing: Option<&Document>) -> bool {
        let (Some(left), Some(right)) = (self.left.resolve(document, existing), self.right.resolve(document, existing))
        else {
            return false;
        };
        let ordered = |accept: fn(Ordering) -> bool| same_kind_cmp(&left, &right).is_some_and(accept);
        match self.op {
            CmpOp::Eq => json_eq(&left, &right),
            CmpOp::Neq => !json_eq(&left, &right),
            CmpOp::Gt => ordered(Ordering::is_gt),
            CmpOp::Gte => ordered(Ordering::is_ge),
            CmpOp::Lt => ordered(Ordering::is_lt),
            CmpOp::Lte => ordered(Ordering::is_le),
        }
    }
}

impl Operand {
    /// The operand's value for the anonymous principal, or `None` when it has none (a principal
    /// claim, a missing field, no document to read, or a field path that does not parse).
    fn resolve<'d>(&self, document: Option<&'d Document>, existing: Option<&'d Document>) -> Option<Cow<'d, Value>> {
        match self {
            Operand::Literal { value } => Some(Cow::Owned(value.clone())),
            Operand::PrincipalClaim { .. } => None,
            Operand::DocumentField { field } => document?.get(&FieldPath::parse(field).ok()?),
            Operand::ExistingDocumentField { field } => existing?.get(&FieldPath::parse(field).ok()?),
        }
    }
}

/// Checks one operand of a rule for `op`; the error is the reason.
fn validate_operand(op: Operation, operand: &Operand) -> Result<(), String> {
    match operand {
        Operand::Literal { .. } | Operand::PrincipalClaim { .. } => Ok(()),
        Operand::DocumentField { .. } if !op.has_document() => {
            Err(format!("document_field is not allowed in {} rules", op.as_str()))
        }
        Operand::ExistingDocumentField { .. } if !op.has_existing() => {
            Err(format!("existing_document_field is only allowed in update and delete rules, not {}", op.as_str()))
        }
        Operand::DocumentField { field } | Operand::ExistingDocumentField { field } => {
            FieldPath::parse(field).map(drop).map_err(|reason| format!("field {reason}"))
        }
    }
}

/// 403 `auth.permission_denied` for `op` on `table`.
fn permission_denied(table: &str, op: Operation) -> NimbusError {
    NimbusError::new(
        ErrorCode::AuthPermissionDenied,
        format!("the access policy of table '{table}' denies {} to this caller", op.as_str()),
        Some(json!({ "table": table, "operation": op.as_str() })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(fields: Value) -> Document {
        crate::document::test_document("01j9z3k7q8w2m4n6p8r0t2v4x6", fields)
    }

    fn allow_all() -> Value {
        json!({ "require_authenticated": false, "predicates": [] })
    }

    /// A policy whose rule for `op` is `rule` and whose other rules allow everything.
    fn policy_with(op: Operation, rule: Value) -> AccessPolicy {
        let mut policy = json!({
            "read": allow_all(), "create": allow_all(), "update": allow_all(), "delete": allow_all()
        });
        policy[op.as_str()] = rule;
        serde_json::from_value(policy).expect("policy deserializes")
    }

    fn rule(predicates: Value) -> Value {
        json!({ "require_authenticated": false, "predicates": predicates })
    }

    fn pred(left: Value, op: &str, right: Value) -> Value {
        json!({ "left": left, "op": op, "right": right })
    }

    fn lit(value: Value) -> Value {
        json!({ "source": "literal", "value": value })
    }

    fn field(name: &str) -> Value {
        json!({ "source": "document_field", "field": name })
    }

    fn existing(name: &str) -> Value {
        json!({ "source": "existing_document_field", "field": name })
    }

    fn claim(principal: &str) -> Value {
        json!({ "source": "principal_claim", "principal": principal, "claim": "sub" })
    }

    #[test]
    fn wire_shape_round_trips() {
        let wire = json!({
            "read": { "require_authenticated": true, "predicates": [] },
            "create": rule(json!([
                pred(field("owner.team"), "eq", lit(json!("infra"))),
                pred(claim("identity"), "neq", lit(Value::Null)),
                pred(claim("verified_identity"), "gt", lit(json!(1))),
            ])),
            "update": rule(json!([
                pred(existing("n"), "gte", field("n")),
                pred(field("n"), "lt", lit(json!(9))),
                pred(field("n"), "lte", lit(json!([1, {"a": 2}]))),
            ])),
            "delete": rule(json!([pred(existing("done"), "eq", lit(json!(true)))])),
        });
        let policy: AccessPolicy = serde_json::from_value(wire.clone()).expect("deserializes");
        assert_eq!(
            policy.create.predicates[1].left,
            Operand::PrincipalClaim { principal: Principal::Identity, claim: "sub".into() }
        );
        assert_eq!(policy.update.predicates[0].op, CmpOp::Gte);
        assert_eq!(serde_json::to_value(&policy).expect("serializes"), wire);
    }

    #[test]
    fn malformed_wire_shapes_are_rejected() {
        let cases = [
            ("unknown op", json!([pred(lit(json!(1)), "like", lit(json!(1)))])),
            ("unknown source", json!([pred(json!({"source": "env", "field": "a"}), "eq", lit(json!(1)))])),
            ("no source", json!([pred(json!({"field": "a"}), "eq", lit(json!(1)))])),
            ("literal without value", json!([pred(json!({"source": "literal"}), "eq", lit(json!(1)))])),
            (
                "unknown principal",
                json!([pred(
                    json!({"source": "principal_claim", "principal": "admin", "claim": "x"}),
                    "eq",
                    lit(json!(1))
                )]),
            ),
            (
                "extra operand key",
                json!([pred(json!({"source": "document_field", "field": "a", "x": 1}), "eq", lit(json!(1)))]),
            ),
            ("uppercase op", json!([pred(lit(json!(1)), "EQ", lit(json!(1)))])),
        ];
        for (name, predicates) in cases {
            let wire = json!({
                "read": rule(predicates), "create": allow_all(), "update": allow_all(), "delete": allow_all()
            });
            assert!(serde_json::from_value::<AccessPolicy>(wire).is_err(), "{name} should be rejected");
        }
        let missing_rule = json!({ "read": allow_all(), "create": allow_all(), "update": allow_all() });
        assert!(serde_json::from_value::<AccessPolicy>(missing_rule).is_err());
        let missing_flag = json!({
            "read": {"predicates": []}, "create": allow_all(), "update": allow_all(), "delete": allow_all()
        });
        assert!(serde_json::from_value::<AccessPolicy>(missing_flag).is_err());
        let literal_null: Operand = serde_json::from_value(lit(Value::Null)).expect("null literal is allowed");
        assert_eq!(literal_null, Operand::Literal { value: Value::Null });
    }

    #[test]
    fn operation_names() {
        let names: Vec<&str> = Operation::ALL.iter().map(|op| op.as_str()).collect();
        assert_eq!(names, ["read", "create", "update", "delete"]);
    }

    #[test]
    fn validation_table() {
        use Operation::{Create, Delete, Read, Update};
        // (rule's operation, predicates, expected error field or None when valid)
        let cases: Vec<(Operation, Value, Option<&str>)> = vec![
            (Read, json!([pred(field("a"), "eq", lit(json!(1)))]), None),
            (Create, json!([pred(field("a.b"), "eq", claim("identity"))]), None),
            (Update, json!([pred(field("a"), "eq", existing("a"))]), None),
            (Delete, json!([pred(existing("a"), "eq", lit(json!(1)))]), None),
            (
                Delete,
                json!([pred(lit(json!(1)), "eq", lit(json!(1))), pred(field("a"), "eq", lit(json!(1)))]),
                Some("access_policy.delete.predicates[1].left"),
            ),
            (Delete, json!([pred(existing("a"), "eq", field("a"))]), Some("access_policy.delete.predicates[0].right")),
            (Read, json!([pred(existing("a"), "eq", lit(json!(1)))]), Some("access_policy.read.predicates[0].left")),
            (
                Create,
                json!([pred(lit(json!(1)), "eq", existing("a"))]),
                Some("access_policy.create.predicates[0].right"),
            ),
            (Read, json!([pred(field(""), "eq", lit(json!(1)))]), Some("access_policy.read.predicates[0].left")),
            (
                Update,
                json!([pred(lit(json!(1)), "eq", existing("a..b"))]),
                Some("access_policy.update.predicates[0].right"),
            ),
            (Create, json!([pred(field(".a"), "eq", lit(json!(1)))]), Some("access_policy.create.predicates[0].left")),
        ];
        for (op, predicates, expected) in cases {
            let result = policy_with(op, rule(predicates.clone())).validate();
            match (expected, result) {
                (None, Ok(())) => {}
                (Some(field), Err(err)) => {
                    assert_eq!(err.code, ErrorCode::OpInvalidInput, "{op:?} {predicates}");
                    let detail = err.detail.expect("invalid_input has detail");
                    assert_eq!(detail["field"], field, "{op:?} {predicates}");
                    assert!(detail["reason"].as_str().is_some_and(|r| !r.is_empty()));
                }
                (expected, result) => {
                    panic!("{op:?} {predicates}: expected {expected:?}, got {result:?}")
                }
            }
        }
    }

    #[test]
    fn denies_all_table() {
        use Operation::{Create, Delete, Read, Update};
        let cases: Vec<(Value, bool)> = vec![
            (allow_all(), false),
            (json!({ "require_authenticated": true, "predicates": [] }), true),
            (rule(json!([pred(claim("identity"), "eq", lit(json!("u1")))])), true),
            (
                rule(json!([
                    pred(lit(json!(1)), "eq", lit(json!(1))),
                    pred(field("a"), "neq", claim("verified_identity"))
                ])),
                true,
            ),
            (rule(json!([pred(field("a"), "eq", lit(json!(1)))])), false),
        ];
        for op in [Read, Create, Update, Delete] {
            for (rule, expected) in &cases {
                let policy = policy_with(op, rule.clone());
                assert_eq!(policy.denies_all(op), *expected, "{op:?} {rule}");
                // Only the rule of `op` was set; the others allow everything.
                for other in Operation::ALL.into_iter().filter(|o| *o != op) {
                    assert!(!policy.denies_all(other), "{other:?} with {op:?} set to {rule}");
                }
                if *expected {
                    let doc = doc(json!({"a": 1}));
                    assert!(policy.check("tasks", op, Some(&doc), Some(&doc)).is_err(), "{op:?} {rule}");
                }
            }
        }
    }

    #[test]
    fn check_table() {
        use Operation::{Create, Delete, Read, Update};
        let new = doc(json!({
            "n": 5, "f": 2.5, "s": "beta", "b": true, "z": null,
            "owner": {"team": "infra"}, "tags": ["a", "b"], "obj": {"x": 1, "y": 2}
        }));
        let old = doc(json!({ "n": 3, "s": "alpha", "owner": {"team": "ops"}, "locked": false }));
        // (operation, predicates, document given, existing given, allowed)
        #[rustfmt::skip]
        let cases: Vec<(Operation, Value, bool, bool, bool)> = vec![
            // No predicates: allowed, with or without documents.
            (Read, json!([]), false, false, true),
            (Delete, json!([]), false, true, true),
            // Literal against literal.
            (Read, json!([pred(lit(json!(1)), "eq", lit(json!(1.0)))]), true, false, true),
            (Read, json!([pred(lit(json!(1)), "eq", lit(json!(2)))]), true, false, false),
            // document_field on read / create / update.
            (Read, json!([pred(field("s"), "eq", lit(json!("beta")))]), true, false, true),
            (Read, json!([pred(field("s"), "eq", lit(json!("alpha")))]), true, false, false),
            (Create, json!([pred(field("owner.team"), "eq", lit(json!("infra")))]), true, false, true),
            (Create, json!([pred(field("owner.team"), "neq", lit(json!("infra")))]), true, false, false),
            (Update, json!([pred(field("b"), "eq", lit(json!(true)))]), true, true, true),
            (Read, json!([pred(field("tags"), "eq", lit(json!(["a", "b"])))]), true, false, true),
            (Read, json!([pred(field("obj"), "eq", lit(json!({"y": 2, "x": 1})))]), true, false, true),
            (Read, json!([pred(field("_id"), "eq", lit(json!("01j9z3k7q8w2m4n6p8r0t2v4x6")))]), true, false, true),
            (Read, json!([pred(field("_creationTime"), "lt", lit(json!(11)))]), true, false, true),
            // existing_document_field on update / delete.
            (Update, json!([pred(existing("owner.team"), "eq", lit(json!("ops")))]), true, true, true),
            (Update, json!([pred(existing("n"), "lt", field("n"))]), true, true, true),
            (Update, json!([pred(existing("n"), "gt", field("n"))]), true, true, false),
            (Delete, json!([pred(existing("locked"), "eq", lit(json!(false)))]), false, true, true),
            (Delete, json!([pred(existing("locked"), "eq", lit(json!(true)))]), false, true, false),
            // Missing fields make the predicate false, whatever the operator.
            (Read, json!([pred(field("nope"), "eq", lit(Value::Null))]), true, false, false),
            (Read, json!([pred(field("nope"), "neq", lit(json!(1)))]), true, false, false),
            (Read, json!([pred(lit(json!(1)), "neq", field("owner.nope"))]), true, false, false),
            (Read, json!([pred(field("s.deeper"), "neq", lit(json!(1)))]), true, false, false),
            (Update, json!([pred(existing("b"), "neq", lit(json!(1)))]), true, true, false),
            (Read, json!([pred(field("nope"), "lt", lit(json!(1)))]), true, false, false),
            // A present null is not missing.
            (Read, json!([pred(field("z"), "eq", lit(Value::Null))]), true, false, true),
            (Read, json!([pred(field("z"), "neq", lit(json!(0)))]), true, false, true),
            // No document to read from: false.
            (Read, json!([pred(field("n"), "eq", lit(json!(5)))]), false, false, false),
            (Update, json!([pred(existing("n"), "eq", lit(json!(3)))]), true, false, false),
            (Delete, json!([pred(existing("n"), "eq", lit(json!(3)))]), false, false, false),
            // Ordered operators: numbers with numbers, strings with strings.
            (Read, json!([pred(field("n"), "gt", lit(json!(4)))]), true, false, true),
            (Read, json!([pred(field("n"), "gt", lit(json!(5)))]), true, false, false),
            (Read, json!([pred(field("n"), "gte", lit(json!(5)))]), true, false, true),
            (Read, json!([pred(field("n"), "gte", lit(json!(5.5)))]), true, false, false),
            (Read, json!([pred(field("f"), "lt", lit(json!(3)))]), true, false, true),
            (Read, json!([pred(field("f"), "lt", lit(json!(2.5)))]), true, false, false),
            (Read, json!([pred(field("f"), "lte", lit(json!(2.5)))]), true, false, true),
            (Read, json!([pred(field("f"), "lte", lit(json!(2)))]), true, false, false),
            (Read, json!([pred(field("s"), "gt", lit(json!("alpha")))]), true, false, true),
            (Read, json!([pred(field("s"), "lt", lit(json!("alpha")))]), true, false, false),
            // Ordered operators across kinds, or over other kinds, are false.
            (Read, json!([pred(field("n"), "gt", lit(json!("1")))]), true, false, false),
            (Read, json!([pred(field("s"), "lte", lit(json!(10)))]), true, false, false),
            (Read, json!([pred(field("b"), "gte", lit(json!(false)))]), true, false, false),
            (Read, json!([pred(field("z"), "lte", lit(Value::Null))]), true, false, false),
            (Read, json!([pred(field("tags"), "gte", lit(json!(["a"])))]), true, false, false),
            // Predicates are ANDed.
            (Read, json!([pred(field("n"), "eq", lit(json!(5))), pred(field("s"), "eq", lit(json!("beta")))]), true, false, true),
            (Read, json!([pred(field("n"), "eq", lit(json!(5))), pred(field("s"), "eq", lit(json!("gamma")))]), true, false, false),
            // Principal claims deny even when the other side could never match.
            (Create, json!([pred(claim("identity"), "neq", lit(json!("never")))]), true, false, false),
            (Update, json!([pred(field("n"), "eq", lit(json!(5))), pred(claim("verified_identity"), "eq", field("n"))]), true, true, false),
        ];
        for (op, predicates, with_doc, with_existing, allowed) in cases {
            let policy = policy_with(op, rule(predicates.clone()));
            let result = policy.check("tasks", op, with_doc.then_some(&new), with_existing.then_some(&old));
            assert_eq!(result.is_ok(), allowed, "{op:?} {predicates}: {result:?}");
            if let Err(err) = result {
                assert_eq!(err.code, ErrorCode::AuthPermissionDenied);
                assert_eq!(err.http_status(), 403);
                assert_eq!(err.detail, Some(json!({ "table": "tasks", "operation": op.as_str() })));
            }
        }
    }

    #[test]
    fn require_authenticated_denies_with_any_document() {
        let policy = policy_with(Operation::Update, json!({ "require_authenticated": true, "predicates": [] }));
        let doc = doc(json!({}));
        let err = policy.check("notes", Operation::Update, Some(&doc), Some(&doc)).expect_err("denied");
        assert_eq!(err.detail, Some(json!({ "table": "notes", "operation": "update" })));
        assert!(policy.check("notes", Operation::Read, Some(&doc), None).is_ok());
    }

    #[test]
    fn rules_are_per_operation() {
        // A rule that would fail validation is never satisfiable, even if handed the document.
        let policy = policy_with(Operation::Create, rule(json!([pred(existing("n"), "eq", lit(json!(1)))])));
        let doc = doc(json!({"n": 1}));
        assert!(policy.check("tasks", Operation::Create, Some(&doc), None).is_err());
        assert!(policy.check("tasks", Operation::Create, Some(&doc), Some(&doc)).is_err());
        assert!(policy.check("tasks", Operation::Read, Some(&doc), None).is_ok());
        let policy = policy_with(Operation::Delete, rule(json!([pred(field("n"), "eq", lit(json!(1)))])));
        assert!(policy.check("tasks", Operation::Delete, Some(&doc), Some(&doc)).is_err());
        // A field path that does not parse resolves to missing.
        let bad_path = policy_with(Operation::Read, rule(json!([pred(field("a..b"), "neq", lit(json!(1)))])));
        assert!(bad_path.check("tasks", Operation::Read, Some(&doc), None).is_err());
    }
}
