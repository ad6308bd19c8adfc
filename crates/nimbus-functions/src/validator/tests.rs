//! Table-driven tests of descriptor parsing and checking.

use super::{Descriptor, Mismatch, check, parse};
use serde_json::{Value, json};

/// `Ok(())` or the expected `(path, reason)` of the mismatch.
type Expected = Result<(), (&'static str, &'static str)>;

fn ok() -> Expected {
    Ok(())
}

fn err(path: &'static str, reason: &'static str) -> Expected {
    Err((path, reason))
}

/// Parses `descriptor`, checks `value` at path `args`, compares with `expected`.
fn run(cases: &[(Value, Value, Expected)]) {
    for (i, (descriptor, value, expected)) in cases.iter().enumerate() {
        let parsed = parse(descriptor).unwrap_or_else(|e| panic!("case {i}: {descriptor} did not parse: {e}"));
        let got = check(&parsed, value, "args").map_err(|Mismatch { path, reason }| (path, reason));
        let want = expected.map_err(|(path, reason)| (path.to_owned(), reason.to_owned()));
        assert_eq!(got, want, "case {i}: {descriptor} against {value}");
    }
}

#[test]
fn scalars() {
    run(&[
        (json!({"type": "string"}), json!("x"), ok()),
        (json!({"type": "string"}), json!(""), ok()),
        (json!({"type": "string"}), json!(1), err("args", "expected a string, got a number")),
        (json!({"type": "string"}), json!(null), err("args", "expected a string, got null")),
        (json!({"type": "number"}), json!(1.5), ok()),
        (json!({"type": "number"}), json!(-3), ok()),
        (json!({"type": "number"}), json!(u64::MAX), ok()),
        (json!({"type": "number"}), json!("1"), err("args", "expected a number, got a string")),
        (json!({"type": "number"}), json!(true), err("args", "expected a number, got a boolean")),
        (json!({"type": "boolean"}), json!(false), ok()),
        (json!({"type": "boolean"}), json!(0), err("args", "expected a boolean, got a number")),
        (json!({"type": "null"}), json!(null), ok()),
        (json!({"type": "null"}), json!({}), err("args", "expected null, got an object")),
        (json!({"type": "null"}), json!([]), err("args", "expected null, got an array")),
        (json!({"type": "any"}), json!(null), ok()),
        (json!({"type": "any"}), json!({"a": [1, {"b": 2}]}), ok()),
    ]);
}

#[test]
fn literals() {
    run(&[
        (json!({"type": "literal", "value": "open"}), json!("open"), ok()),
        (
            json!({"type": "literal", "value": "open"}),
            json!("closed"),
            err("args", "expected the literal \"open\", got \"closed\""),
        ),
        (
            json!({"type": "literal", "value": "open"}),
            json!({"a": 1}),
            err("args", "expected the literal \"open\", got an object"),
        ),
        (json!({"type": "literal", "value": 1}), json!(1.0), ok()),
        (json!({"type": "literal", "value": 1.0}), json!(1), ok()),
        (json!({"type": "literal", "value": 1}), json!(2), err("args", "expected the literal 1, got 2")),
        (
            json!({"type": "literal", "value": -1}),
            json!(u64::MAX),
            err("args", "expected the literal -1, got 18446744073709551615"),
        ),
        (json!({"type": "literal", "value": true}), json!(true), ok()),
        (
            json!({"type": "literal", "value": true}),
            json!("true"),
            err("args", "expected the literal true, got \"true\""),
        ),
        (json!({"type": "literal", "value": {"a": 1, "b": [1]}}), json!({"b": [1.0], "a": 1}), ok()),
        (
            json!({"type": "literal", "value": {"a": 1}}),
            json!({"a": 1, "b": 2}),
            err("args", "expected the literal {\"a\":1}, got an object"),
        ),
        (
            json!({"type": "literal", "value": "x".repeat(100)}),
            json!("y"),
            err(
                "args",
                "expected the literal \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…, got \"y\"",
            ),
        ),
    ]);
}

#[test]
fn ids() {
    let id = json!({"type": "id", "table": "users"});
    let longest = "a".repeat(1500);
    let too_long = "a".repeat(1501);
    run(&[
        (id.clone(), json!("01j9z3k7q8w2m4n6p8r0t2v4x6"), ok()),
        (id.clone(), json!(longest), ok()),
        (id.clone(), json!("é"), ok()),
        (
            id.clone(),
            json!(too_long),
            err("args", "expected an id of table \"users\", got a string that is longer than 1500 bytes"),
        ),
        (id.clone(), json!(""), err("args", "expected an id of table \"users\", got a string that is empty")),
        (id.clone(), json!("a/b"), err("args", "expected an id of table \"users\", got a string that contains \"/\"")),
        (
            id.clone(),
            json!("a\u{0}b"),
            err("args", "expected an id of table \"users\", got a string that contains a NUL character"),
        ),
        (id.clone(), json!(7), err("args", "expected an id of table \"users\", got a number")),
    ]);
    // 1500 bytes is the limit, not 1500 characters.
    let multibyte = "é".repeat(751);
    run(&[(
        id,
        json!(multibyte),
        err("args", "expected an id of table \"users\", got a string that is longer than 1500 bytes"),
    )]);
}

#[test]
fn arrays() {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    run(&[
        (strings.clone(), json!([]), ok()),
        (strings.clone(), json!(["a", "b"]), ok()),
        (strings.clone(), json!(["a", 2]), err("args[1]", "expected a string, got a number")),
        (strings.clone(), json!({"0": "a"}), err("args", "expected an array, got an object")),
        (strings, json!("ab"), err("args", "expected an array, got a string")),
        (
            json!({"type": "array", "items": {"type": "array", "items": {"type": "number"}}}),
            json!([[1], [2, "x"]]),
            err("args[1][1]", "expected a number, got a string"),
        ),
    ]);
}

#[test]
fn objects() {
    let message = json!({"type": "object", "fields": {
        "channel": {"type": "string"},
        "limit": {"type": "optional", "inner": {"type": "number"}},
        "items": {"type": "array", "items": {"type": "object", "fields": {"name": {"type": "string"}}}},
    }});
    run(&[
        (message.clone(), json!({"channel": "c", "items": []}), ok()),
        (message.clone(), json!({"channel": "c", "limit": 3, "items": [{"name": "a"}]}), ok()),
        (message.clone(), json!({"items": []}), err("args", "missing required field \"channel\"")),
        (message.clone(), json!({"channel": "c"}), err("args", "missing required field \"items\"")),
        (message.clone(), json!({"channel": 1, "items": []}), err("args.channel", "expected a string, got a number")),
        (
            message.clone(),
            json!({"channel": "c", "items": [], "limit": "3"}),
            err("args.limit", "expected a number, got a string"),
        ),
        // An optional field that is present must match; null is not "absent".
        (
            message.clone(),
            json!({"channel": "c", "items": [], "limit": null}),
            err("args.limit", "expected a number, got null"),
        ),
        (message.clone(), json!({"channel": "c", "items": [], "x": 1}), err("args", "unknown field \"x\"")),
        (
            message.clone(),
            json!({"channel": "c", "items": [{"name": "a"}, {"name": "b"}, {"name": 3}]}),
            err("args.items[2].name", "expected a string, got a number"),
        ),
        (
            message.clone(),
            json!({"channel": "c", "items": [{}]}),
            err("args.items[0]", "missing required field \"name\""),
        ),
        (message, json!(["c"]), err("args", "expected an object, got an array")),
        (json!({"type": "object", "fields": {}}), json!({}), ok()),
        (json!({"type": "object", "fields": {}}), json!({"a b": 1}), err("args", "unknown field \"a b\"")),
        (
            json!({"type": "object", "fields": {"a b": {"type": "string"}, "c.d": {"type": "string"}}}),
            json!({"a b": 1, "c.d": "x"}),
            err("args[\"a b\"]", "expected a string, got a number"),
        ),
        (
            json!({"type": "object", "fields": {"c.d": {"type": "string"}, "_ok$1": {"type": "string"}}}),
            json!({"c.d": 1, "_ok$1": "x"}),
            err("args[\"c.d\"]", "expected a string, got a number"),
        ),
        (
            json!({"type": "object", "fields": {"_ok$1": {"type": "string"}}}),
            json!({"_ok$1": 1}),
            err("args._ok$1", "expected a string, got a number"),
        ),
    ]);
}

#[test]
fn records() {
    let scores = json!({"type": "record", "values": {"type": "number"}});
    let by_user = json!({"type": "record", "keys": {"type": "id", "table": "users"}, "values": {"type": "boolean"}});
    run(&[
        (scores.clone(), json!({}), ok()),
        (scores.clone(), json!({"ada": 1, "any key at all": 2}), ok()),
        (scores.clone(), json!({"ada": "1"}), err("args.ada", "expected a number, got a string")),
        (scores.clone(), json!({"1st": "1"}), err("args[\"1st\"]", "expected a number, got a string")),
        (scores, json!([1]), err("args", "expected an object, got an array")),
        (json!({"type": "record", "keys": {"type": "string"}, "values": {"type": "any"}}), json!({"": 1}), ok()),
        (by_user.clone(), json!({"u1": true}), ok()),
        (
            by_user.clone(),
            json!({"a/b": true}),
            err("args", "key \"a/b\" is not an id of table \"users\": it contains \"/\""),
        ),
        (by_user.clone(), json!({"": true}), err("args", "key \"\" is not an id of table \"users\": it is empty")),
        (by_user, json!({"u1": 1}), err("args.u1", "expected a boolean, got a number")),
    ]);
}

#[test]
fn unions() {
    let string_or_null = json!({"type": "union", "members": [{"type": "string"}, {"type": "null"}]});
    let shapes = json!({"type": "union", "members": [
        {"type": "object", "fields": {"kind": {"type": "literal", "value": "circle"}, "r": {"type": "number"}}},
        {"type": "array", "items": {"type": "number"}},
        {"type": "id", "table": "shapes"},
    ]});
    run(&[
        (string_or_null.clone(), json!("x"), ok()),
        (string_or_null.clone(), json!(null), ok()),
        (string_or_null, json!(1), err("args", "expected one of string | null, got 1")),
        (
            json!({"type": "union", "members": [{"type": "literal", "value": "a"}, {"type": "literal", "value": "b"}]}),
            json!("c"),
            err("args", "expected one of \"a\" | \"b\", got \"c\""),
        ),
        (shapes.clone(), json!({"kind": "circle", "r": 1}), ok()),
        (shapes.clone(), json!([1, 2]), ok()),
        (shapes.clone(), json!("s1"), ok()),
        // The only container member of the value's kind explains the mismatch itself.
        (shapes.clone(), json!({"kind": "circle", "r": "big"}), err("args.r", "expected a number, got a string")),
        (shapes.clone(), json!([1, "2"]), err("args[1]", "expected a number, got a string")),
        (shapes, json!(true), err("args", "expected one of object | array | id(\"shapes\"), got true")),
        (
            json!({"type": "union", "members": [
                {"type": "object", "fields": {"a": {"type": "string"}}},
                {"type": "record", "values": {"type": "number"}},
            ]}),
            json!({"a": 1, "b": "x"}),
            err("args", "expected one of object | record, got an object"),
        ),
        (
            json!({"type": "union", "members": []}),
            json!(null),
            err("args", "expected nothing (an empty union), got null"),
        ),
        (
            json!({"type": "union", "members": [{"type": "union", "members": [{"type": "number"}, {"type": "boolean"}]}, {"type": "null"}]}),
            json!("x"),
            err("args", "expected one of number | boolean | null, got \"x\""),
        ),
    ]);
}

#[test]
fn paths_start_where_the_caller_says() {
    let parsed = parse(&json!({"type": "object", "fields": {"n": {"type": "number"}}})).unwrap();
    let mismatch = check(&parsed, &json!({"n": "x"}), "returns").unwrap_err();
    assert_eq!(
        mismatch,
        Mismatch { path: "returns.n".to_owned(), reason: "expected a number, got a string".to_owned() }
    );
    assert_eq!(mismatch.to_string(), "returns.n: expected a number, got a string");
    let mismatch = check(&parsed, &json!({"n": "x", "odd key": 1}), "").unwrap_err();
    assert_eq!(mismatch.path, "n");
}

#[test]
fn parse_accepts_every_descriptor_type_and_keeps_field_order() {
    let descriptor = json!({"type": "object", "fields": {
        "z": {"type": "string"},
        "a": {"type": "number"},
        "m": {"type": "optional", "inner": {"type": "union", "members": [
            {"type": "boolean"}, {"type": "null"}, {"type": "any"}, {"type": "literal", "value": [1]},
            {"type": "id", "table": "t"}, {"type": "array", "items": {"type": "string"}},
            {"type": "record", "values": {"type": "number"}},
            {"type": "record", "keys": {"type": "string"}, "values": {"type": "number"}},
        ]}},
    }});
    let parsed = parse(&descriptor).unwrap();
    let Descriptor::Object { fields } = &parsed else { panic!("not an object: {parsed:?}") };
    let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["z", "a", "m"]);
    // Serializing gives back the same JSON, order included.
    assert_eq!(serde_json::to_value(&parsed).unwrap(), descriptor);
}

#[test]
fn parse_rejections() {
    let cases: &[(Value, &str)] = &[
        (
            json!({"type": "optional", "inner": {"type": "string"}}),
            "`optional` is only allowed directly as an object field (at value)",
        ),
        (
            json!({"type": "array", "items": {"type": "optional", "inner": {"type": "string"}}}),
            "`optional` is only allowed directly as an object field (at value.items)",
        ),
        (
            json!({"type": "union", "members": [{"type": "null"}, {"type": "optional", "inner": {"type": "string"}}]}),
            "(at value.members[1])",
        ),
        (json!({"type": "record", "values": {"type": "optional", "inner": {"type": "string"}}}), "(at value.values)"),
        (
            json!({"type": "object", "fields": {"a b": {"type": "optional", "inner": {"type": "optional", "inner": {"type": "string"}}}}}),
            "`optional` is only allowed directly as an object field (at value.fields[\"a b\"].inner)",
        ),
        (
            json!({"type": "object", "fields": {"a": {"type": "object", "fields": {"b": {"type": "array", "items": {"type": "optional", "inner": {"type": "null"}}}}}}}),
            "(at value.fields.a.fields.b.items)",
        ),
        (
            json!({"type": "record", "keys": {"type": "number"}, "values": {"type": "any"}}),
            "record keys must be `string` or `id` (at value.keys)",
        ),
        (json!({"type": "id", "table": ""}), "`id` needs a non-empty table name (at value)"),
        (json!({"type": "float64"}), "invalid validator descriptor: unknown variant `float64`"),
        (json!({"type": "string", "extra": 1}), "unknown field \"extra\" (at value)"),
        (json!({"type": "array", "items": {"type": "any", "x": 1}}), "unknown field \"x\" (at value.items)"),
        (json!({"type": "array", "items": {"type": "string"}, "of": 1}), "unknown field `of`"),
        (json!({"type": "array"}), "missing field `items`"),
        (json!({"type": "object", "fields": []}), "invalid validator descriptor"),
        (json!({"fields": {}}), "missing field `type`"),
        (json!("string"), "invalid validator descriptor"),
        (json!(null), "invalid validator descriptor"),
    ];
    for (descriptor, expected) in cases {
        match parse(descriptor) {
            Ok(parsed) => panic!("{descriptor} parsed as {parsed:?}; expected an error containing {expected:?}"),
            Err(e) => assert!(e.contains(expected), "{descriptor}: error {e:?} does not contain {expected:?}"),
        }
    }
}

#[test]
fn optional_outside_an_object_checks_as_its_inner_validator() {
    // `parse` rejects this shape; a hand-built descriptor still checks sensibly.
    let desc = Descriptor::Optional { inner: Box::new(Descriptor::String) };
    assert_eq!(check(&desc, &json!("x"), "args"), Ok(()));
    assert_eq!(check(&desc, &json!(1), "args").unwrap_err().reason, "expected a string, got a number");
}
