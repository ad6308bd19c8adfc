//! Index selection. The planner only narrows the candidates a query must look at: its ranges
//! cover every matching document's key (bounds are inclusive at the encoded level, since
//! numbers are keyed as `f64`), and the caller re-applies every filter, so an indexed answer
//! always equals a full scan.
//!
//! For each index the planner takes the longest prefix of its fields that each have an `eq`
//! filter, then looks at the next field for an `in` list (one point range per distinct element)
//! or range filters (one range, within the operand's kind, since range operators only match
//! their own kind). Score = 2 × prefix length, + 1 when the next field is constrained; the
//! highest score wins, ties going to the index with fewer fields, then the first declared.

use std::cmp::Ordering;

use serde_json::Value;

use super::filter::{Filter, FilterOp};
use crate::document::FieldPath;
use crate::index_key::{encode_component, kind_range, prefix_successor};
use crate::value::{kind_rank, same_kind_cmp};

/// An index as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    /// Index name.
    pub name: String,
    /// Indexed top-level fields, most significant first.
    pub fields: Vec<FieldPath>,
}

/// Keys `k` with `lower <= k < upper` (`upper = None`: unbounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Inclusive lower bound.
    pub lower: Vec<u8>,
    /// Exclusive upper bound.
    pub upper: Option<Vec<u8>>,
}

#[cfg(test)]
impl KeyRange {
    /// Whether `key` lies in the range (the planner's tests check candidates with it; the store
    /// scans ranges in SQL).
    fn contains(&self, key: &[u8]) -> bool {
        key >= self.lower.as_slice() && self.upper.as_deref().is_none_or(|upper| key < upper)
    }
}

/// How a query finds its candidates.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Read every document of the table.
    FullScan,
    /// Read the documents whose keys in `index` fall in any of `ranges`. The ranges are
    /// disjoint and in key order; none at all means no document can match.
    IndexScan {
        /// Index name.
        index: String,
        /// Key ranges to scan.
        ranges: Vec<KeyRange>,
    },
}

/// The constraint the filters put on the index field after the equality prefix.
enum Next<'a> {
    /// Nothing usable.
    None,
    /// An `in` list.
    In(&'a [Value]),
    /// Range filters; bounds are the tightest of their kind.
    Range { lower: Option<&'a Value>, upper: Option<&'a Value> },
    /// Range filters whose operands have different kinds: no stored value satisfies them all.
    Contradiction,
}

fn eq_on<'a>(filters: &'a [Filter], path: &FieldPath) -> Option<&'a Value> {
    filters.iter().find(|f| f.op == FilterOp::Eq && &f.path == path).map(|f| &f.value)
}

fn next_constraint<'a>(filters: &'a [Filter], path: &FieldPath) -> Next<'a> {
    if let Some(f) = filters.iter().find(|f| f.op == FilterOp::In && &f.path == path) {
        return Next::In(f.in_values());
    }
    let ranged: Vec<&Filter> = filters.iter().filter(|f| f.op.is_range() && &f.path == path).collect();
    let Some(first) = ranged.first() else { return Next::None };
    if ranged.iter().any(|f| kind_rank(&f.value) != kind_rank(&first.value)) {
        return Next::Contradiction;
    }
    // Same kind throughout, so the operands compare; keep the greatest lower and least upper
    // bound. Strictness is ignored: the encoded bounds are inclusive anyway.
    let tighter = |current: Option<&'a Value>, candidate: &'a Value, keep: Ordering| match current {
        Some(c) if same_kind_cmp(candidate, c) != Some(keep) => Some(c),
        _ => Some(candidate),
    };
    let (mut lower, mut upper) = (None, None);
    for f in ranged {
        match f.op {
            FilterOp::Gt | FilterOp::Gte => lower = tighter(lower, &f.value, Ordering::Greater),
            _ => upper = tighter(upper, &f.value, Ordering::Less),
        }
    }
    Next::Range { lower, upper }
}

fn with_component(prefix: &[u8], value: &Value) -> Vec<u8> {
    let mut key = prefix.to_vec();
    encode_component(Some(value), &mut key);
    key
}

/// One point range per distinct encoding, in key order.
fn points(prefix: &[u8], values: &[Value]) -> Vec<KeyRange> {
    let mut lowers: Vec<Vec<u8>> = values.iter().map(|v| with_component(prefix, v)).collect();
    lowers.sort_unstable();
    lowers.dedup();
    lowers
        .into_iter()
        .map(|lower| {
            let upper = prefix_successor(&lower);
            KeyRange { lower, upper }
        })
        .collect()
}

/// All keys after `prefix` whose next component lies between the bounds (inclusive at the
/// encoded level), within the bounds' kind. No range when the bounds cross.
fn range(prefix: &[u8], lower: Option<&Value>, upper: Option<&Value>) -> Vec<KeyRange> {
    let Some(kind_of) = lower.or(upper) else { return Vec::new() };
    let (kind_start, kind_end) = kind_range(prefix, kind_of);
    let lower = lower.map_or(kind_start, |v| with_component(prefix, v));
    let upper = match upper {
        Some(v) => prefix_successor(&with_component(prefix, v)),
        None => Some(kind_end),
    };
    match &upper {
        Some(u) if *u <= lower => Vec::new(),
        _ => vec![KeyRange { lower, upper }],
    }
}

/// One index's candidate plan: its score and ranges, or `None` when it constrains nothing.
fn plan_for(filters: &[Filter], index: &IndexDef) -> Option<(usize, Vec<KeyRange>)> {
    let mut prefix = Vec::new();
    let mut eq_len = 0;
    for field in &index.fields {
        let Some(value) = eq_on(filters, field) else { break };
        encode_component(Some(value), &mut prefix);
        eq_len += 1;
    }
    let next = index.fields.get(eq_len).map_or(Next::None, |field| next_constraint(filters, field));
    let (bonus, ranges) = match next {
        Next::In(items) => (1, points(&prefix, items)),
        Next::Range { lower, upper } => (1, range(&prefix, lower, upper)),
        Next::Contradiction => (1, Vec::new()),
        Next::None if eq_len > 0 => (0, vec![KeyRange { upper: prefix_successor(&prefix), lower: prefix }]),
        Next::None => return None,
    };
    Some((2 * eq_len + bonus, ranges))
}

/// Picks the index that constrains the query most (see the module docs); no constraint on any
/// index means a full scan.
pub fn choose(filters: &[Filter], indexes: &[IndexDef]) -> Plan {
    let mut best: Option<(usize, usize, &IndexDef, Vec<KeyRange>)> = None;
    for index in indexes {
        let Some((score, ranges)) = plan_for(filters, index) else { continue };
        let better = match &best {
            None => true,
            Some((best_score, best_len, _, _)) => {
                score > *best_score || (score == *best_score && index.fields.len() < *best_len)
            }
        };
        if better {
            best = Some((score, index.fields.len(), index, ranges));
        }
    }
    match best {
        Some((_, _, index, ranges)) => Plan::IndexScan { index: index.name.clone(), ranges },
        None => Plan::FullScan,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Document;
    use crate::index_key::encode_key;

    use serde_json::json;

    /// A deterministic pseudo-random generator (xorshift64), so the test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn choose<T: Clone>(&mut self, items: &[T]) -> T {
            items[self.pick(items.len())].clone()
        }
    }

    const P53: u64 = 1 << 53;

    /// Values with many near-collisions: 1 and 1.0, -0.0 and 0, integers that share an `f64`,
    /// strings that prefix each other or embed NUL, and the occasional non-scalar.
    fn scalar(rng: &mut Rng) -> Value {
        match rng.pick(10) {
            0 => json!(rng.pick(2) == 0),
            1..=3 => json!(rng.pick(7) as i64 - 3),
            4 => json!((rng.pick(9) as f64 - 4.0) / 2.0),
            5 => rng.choose(&[json!(-0.0), json!(P53), json!(P53 + 1), json!(P53 as f64), json!(1e300)]),
            6 => rng.choose(&[json!(null), json!([1]), json!([1.0]), json!({"a": 1})]),
            _ => json!(rng.choose(&["", "a", "ab", "b", "b\u{0}", "\u{0}", "é"])),
        }
    }

    fn stored(rng: &mut Rng) -> Option<Value> {
        if rng.pick(7) == 0 { None } else { Some(scalar(rng)) }
    }

    fn range_operand(rng: &mut Rng) -> Value {
        match rng.pick(3) {
            0 => json!(rng.pick(7) as i64 - 3),
            1 => rng.choose(&[json!(0.5), json!(-1.5), json!(P53), json!(P53 + 1), json!(-0.0)]),
            _ => json!(rng.choose(&["", "a", "ab", "b", "b\u{0}"])),
        }
    }

    fn random_filter(rng: &mut Rng, fields: &[&str]) -> Filter {
        let field = rng.choose(fields);
        let op = rng.choose(&FilterOp::ALL);
        let operand = match op {
            FilterOp::In => Value::Array((0..rng.pick(4)).map(|_| scalar(rng)).collect()),
            FilterOp::Gt | FilterOp::Gte | FilterOp::Lt | FilterOp::Lte => range_operand(rng),
            FilterOp::Eq | FilterOp::Neq => scalar(rng),
        };
        Filter::new(field, op.as_str(), operand).expect("generated filters are valid")
    }

    fn path(name: &str) -> FieldPath {
        FieldPath::parse(name).expect("valid")
    }

    fn index(name: &str, fields: &[&str]) -> IndexDef {
        IndexDef { name: name.into(), fields: fields.iter().map(|f| path(f)).collect() }
    }

    fn doc(i: usize, fields: serde_json::Map<String, Value>) -> Document {
        crate::document::test_document(&format!("{i:04}"), Value::Object(fields))
    }

    /// The documents an index scan under `plan` returns, after re-applying every filter.
    fn via_plan<'a>(plan: &Plan, indexes: &[IndexDef], docs: &'a [Document], filters: &[Filter]) -> Vec<&'a str> {
        let candidates: Vec<&Document> = match plan {
            Plan::FullScan => docs.iter().collect(),
            Plan::IndexScan { index, ranges } => {
                let def = indexes.iter().find(|i| &i.name == index).expect("chosen index exists");
                docs.iter()
                    .filter(|d| {
                        let values: Vec<Option<&Value>> =
                            def.fields.iter().map(|f| d.fields.get(f.dotted().as_str())).collect();
                        let key = encode_key(&values);
                        ranges.iter().any(|r| r.contains(&key))
                    })
                    .collect()
            }
        };
        candidates.into_iter().filter(|d| filters.iter().all(|f| f.matches(d))).map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn index_scans_equal_full_scans() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let fields = ["a", "b", "c"];
        let docs: Vec<Document> = (0..400)
            .map(|i| {
                let mut map = serde_json::Map::new();
                for f in fields {
                    if let Some(v) = stored(&mut rng) {
                        map.insert(f.into(), v);
                    }
                }
                doc(i, map)
            })
            .collect();
        let indexes = vec![
            index("by_a", &["a"]),
            index("by_b_c", &["b", "c"]),
            index("by_c_a_b", &["c", "a", "b"]),
            index("by_a_b", &["a", "b"]),
        ];
        let (mut indexed, mut nonempty, mut narrowed) = (0, 0, 0);
        for _ in 0..3000 {
            let filters: Vec<Filter> = (0..=rng.pick(4)).map(|_| random_filter(&mut rng, &fields)).collect();
            let expected = via_plan(&Plan::FullScan, &indexes, &docs, &filters);
            let plan = choose(&filters, &indexes);
            if let Plan::IndexScan { ranges, .. } = &plan {
                indexed += 1;
                nonempty += usize::from(!expected.is_empty());
                assert!(ranges.windows(2).all(|w| w[0].upper.as_ref().is_some_and(|u| *u <= w[1].lower)));
                narrowed += usize::from(ranges.len() <= 1 && !expected.is_empty());
            }
            assert_eq!(via_plan(&plan, &indexes, &docs, &filters), expected, "filters {filters:?} via {plan:?}");
        }
        assert!(indexed > 1500, "the planner used an index for {indexed} queries");
        assert!(nonempty > 300 && narrowed > 100, "{nonempty} indexed queries had matches");
    }

    fn chosen(filters: &[Filter], indexes: &[IndexDef]) -> String {
        match choose(filters, indexes) {
            Plan::IndexScan { index, .. } => index,
            Plan::FullScan => "full".into(),
        }
    }

    fn f(field: &str, op: &str, value: Value) -> Filter {
        Filter::new(field, op, value).expect("valid filter")
    }

    #[test]
    fn scoring_and_ties() {
        let indexes = vec![
            index("by_a", &["a"]),
            index("by_a_b", &["a", "b"]),
            index("by_b_a", &["b", "a"]),
            index("by_c_d", &["c", "d"]),
            index("by_c_e", &["c", "e"]),
        ];
        let cases: &[(Vec<Filter>, &str)] = &[
            (vec![f("a", "eq", json!(1)), f("b", "eq", json!(2))], "by_a_b"),
            (vec![f("a", "eq", json!(1))], "by_a"),
            (vec![f("a", "eq", json!(1)), f("b", "gt", json!(2))], "by_a_b"),
            (vec![f("a", "in", json!([1, 2])), f("b", "eq", json!(2))], "by_b_a"),
            (vec![f("b", "eq", json!(1))], "by_b_a"),
            (vec![f("b", "lt", json!(1))], "by_b_a"),
            (vec![f("a", "gte", json!(1))], "by_a"),
            (vec![f("a", "neq", json!(1))], "full"),
            (vec![f("d", "eq", json!(1))], "full"),
            (vec![f("a.x", "eq", json!(1))], "full"),
            (vec![f("c", "eq", json!(1))], "by_c_d"),
            (vec![f("c", "eq", json!(1)), f("e", "in", json!([1]))], "by_c_e"),
            (vec![], "full"),
        ];
        for (filters, expected) in cases {
            assert_eq!(chosen(filters, &indexes), *expected, "{filters:?}");
        }
        assert_eq!(chosen(&[f("a", "eq", json!(1))], &[]), "full");
    }

    fn ranges(filters: &[Filter]) -> Vec<KeyRange> {
        match choose(filters, &[index("by_a", &["a"])]) {
            Plan::IndexScan { ranges, .. } => ranges,
            Plan::FullScan => panic!("expected an index scan for {filters:?}"),
        }
    }

    fn key(value: Value) -> Vec<u8> {
        encode_key(&[Some(&value)])
    }

    #[test]
    fn range_shapes() {
        let succ = |v: Value| prefix_successor(&key(v));
        let numbers = kind_range(&[], &json!(0));
        let strings = kind_range(&[], &json!(""));
        let cases: &[(Vec<Filter>, Vec<KeyRange>)] = &[
            (vec![f("a", "eq", json!(1))], vec![KeyRange { lower: key(json!(1)), upper: succ(json!(1)) }]),
            (vec![f("a", "gt", json!(5))], vec![KeyRange { lower: key(json!(5)), upper: Some(numbers.1.clone()) }]),
            (vec![f("a", "lte", json!("m"))], vec![KeyRange { lower: strings.0.clone(), upper: succ(json!("m")) }]),
            (
                vec![f("a", "gt", json!(1)), f("a", "gte", json!(3)), f("a", "lt", json!(9)), f("a", "lt", json!(7))],
                vec![KeyRange { lower: key(json!(3)), upper: succ(json!(7)) }],
            ),
            (vec![f("a", "gt", json!(5)), f("a", "lt", json!(3))], vec![]),
            (vec![f("a", "gt", json!(5)), f("a", "lt", json!("b"))], vec![]),
            (vec![f("a", "in", json!([]))], vec![]),
            (
                vec![f("a", "in", json!([2, "x", 1, 2.0, -0.0, 0]))],
                vec![
                    KeyRange { lower: key(json!(0)), upper: succ(json!(0)) },
                    KeyRange { lower: key(json!(1)), upper: succ(json!(1)) },
                    KeyRange { lower: key(json!(2)), upper: succ(json!(2)) },
                    KeyRange { lower: key(json!("x")), upper: succ(json!("x")) },
                ],
            ),
        ];
        for (filters, expected) in cases {
            assert_eq!(&ranges(filters), expected, "{filters:?}");
        }
    }

    #[test]
    fn equality_prefix_without_a_next_constraint_scans_the_prefix() {
        let idx = [index("by_a_b", &["a", "b"])];
        let Plan::IndexScan { ranges, .. } = choose(&[f("a", "eq", json!("k"))], &idx) else {
            panic!("expected an index scan")
        };
        let inside = encode_key(&[Some(&json!("k")), None]);
        let outside = encode_key(&[Some(&json!("k\u{0}")), Some(&json!(1))]);
        assert_eq!(ranges.len(), 1);
        assert!(ranges[0].contains(&inside) && !ranges[0].contains(&outside));
    }

    #[test]
    fn key_ranges_contain_their_bounds_only() {
        let bounded = KeyRange { lower: vec![1, 2], upper: Some(vec![1, 3]) };
        let unbounded = KeyRange { lower: vec![1, 2], upper: None };
        let cases: &[(&[u8], bool, bool)] =
            &[(&[1, 1], false, false), (&[1, 2], true, true), (&[1, 2, 9], true, true), (&[1, 3], false, true)];
        for (key, in_bounded, in_unbounded) in cases {
            assert_eq!(bounded.contains(key), *in_bounded, "{key:?}");
            assert_eq!(unbounded.contains(key), *in_unbounded, "{key:?}");
        }
    }
}
