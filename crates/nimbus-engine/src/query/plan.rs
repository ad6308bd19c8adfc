//! Index selection. The planner only narrows the candidates a query must look at: its ranges
//! cover every matching document's key (bounds are inclusive at the encoded level), and the
//! caller re-applies every filter, so an indexed answer always equals a full scan.

use serde_json::Value;

use super::filter::{Filter, FilterOp};
use crate::document::FieldPath;
use crate::index_key::{encode_component, kind_range, prefix_successor};
use crate::value::{json_eq, total_cmp};

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

/// How a query finds its candidates.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Read every document of the table.
    FullScan,
    /// Read the documents whose keys in `index` fall in `ranges`.
    IndexScan {
        /// Index name.
        index: String,
        /// Key ranges to scan.
        ranges: Vec<KeyRange>,
    },
}

/// The constraint a filter set puts on the field after an equality prefix.
enum Next<'a> {
    None,
    In(&'a [Value]),
    Range { lower: Option<&'a Value>, upper: Option<&'a Value> },
}

fn eq_on<'a>(filters: &'a [Filter], path: &FieldPath) -> Option<&'a Value> {
    filters.iter().find(|f| f.op == FilterOp::Eq && &f.path == path).map(|f| &f.value)
}

fn next_constraint<'a>(filters: &'a [Filter], path: &FieldPath) -> Next<'a> {
    if let Some(items) =
        filters.iter().find(|f| f.op == FilterOp::In && &f.path == path).and_then(|f| f.value.as_array())
    {
        return Next::In(items);
    }
    let (mut lower, mut upper) = (None, None);
    for f in filters.iter().filter(|f| &f.path == path) {
        match f.op {
            FilterOp::Gt | FilterOp::Gte if lower.is_none() => lower = Some(&f.value),
            FilterOp::Lt | FilterOp::Lte if upper.is_none() => upper = Some(&f.value),
            _ => {}
        }
    }
    // Range operators only match values of their operand's kind; mixed kinds match nothing,
    // which a full kind range still covers correctly.
    if lower.is_none() && upper.is_none() { Next::None } else { Next::Range { lower, upper } }
}

/// All keys that start with `prefix` followed by exactly `value`.
fn point(prefix: &[u8], value: &Value) -> KeyRange {
    let mut lower = prefix.to_vec();
    encode_component(Some(value), &mut lower);
    let upper = prefix_successor(&lower);
    KeyRange { lower, upper }
}

/// All keys after `prefix` whose next component lies between the bounds, within one kind.
fn range(prefix: &[u8], lower: Option<&Value>, upper: Option<&Value>) -> KeyRange {
    let kind_of = lower.or(upper).unwrap_or(&Value::Null);
    let (kind_start, kind_end) = kind_range(prefix, kind_of);
    let lower = match lower {
        Some(v) => {
            let mut key = prefix.to_vec();
            encode_component(Some(v), &mut key);
            key
        }
        None => kind_start,
    };
    let upper = match upper {
        Some(v) => {
            let mut key = prefix.to_vec();
            encode_component(Some(v), &mut key);
            prefix_successor(&key)
        }
        None => Some(kind_end),
    };
    KeyRange { lower, upper }
}

/// Picks the index that constrains the query most: the longest equality prefix, plus an `in`
/// list or a range on the next field. No constraint at all means a full scan.
pub fn choose(filters: &[Filter], indexes: &[IndexDef]) -> Plan {
    let mut best: Option<(usize, usize, &IndexDef, Vec<KeyRange>)> = None;
    for index in indexes {
        let mut prefix = Vec::new();
        let mut eq_len = 0;
        for field in &index.fields {
            match eq_on(filters, field) {
                Some(value) => {
                    encode_component(Some(value), &mut prefix);
                    eq_len += 1;
                }
                None => break,
            }
        }
        let (bonus, ranges) = match index.fields.get(eq_len).map(|field| next_constraint(filters, field)) {
            Some(Next::In(items)) => {
                let mut distinct: Vec<&Value> = Vec::new();
                for item in items {
                    if !distinct.iter().any(|d| json_eq(d, item)) {
                        distinct.push(item);
                    }
                }
                distinct.sort_by(|a, b| total_cmp(a, b));
                (1, distinct.into_iter().map(|v| point(&prefix, v)).collect())
            }
            Some(Next::Range { lower, upper }) => (1, vec![range(&prefix, lower, upper)]),
            Some(Next::None) | None if eq_len > 0 => {
                (0, vec![KeyRange { lower: prefix.clone(), upper: prefix_successor(&prefix) }])
            }
            _ => continue,
        };
        let score = 2 * eq_len + bonus;
        let better = match &best {
            None => true,
            Some((best_score, best_fields, _, _)) => {
                score > *best_score || (score == *best_score && index.fields.len() < *best_fields)
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
    use nimbus_core::ids::{DocumentId, TableName};
    use serde_json::json;

    /// A deterministic pseudo-random generator (xorshift), so the test needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn value(rng: &mut Rng) -> Option<Value> {
        match rng.pick(8) {
            0 => None,
            1 => Some(json!(rng.pick(2) == 0)),
            2 | 3 => Some(json!(rng.pick(6) as i64 - 2)),
            4 => Some(json!(rng.pick(6) as f64 / 2.0)),
            _ => Some(json!(["a", "b", "ab", "", "b\u{0}"][rng.pick(5) as usize])),
        }
    }

    fn path(name: &str) -> FieldPath {
        FieldPath::parse(name).expect("valid")
    }

    #[test]
    fn index_scans_cover_every_match() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let fields = ["a", "b", "c"];
        let docs: Vec<Document> = (0..300)
            .map(|i| {
                let mut map = serde_json::Map::new();
                for f in fields {
                    if let Some(v) = value(&mut rng) {
                        map.insert(f.into(), v);
                    }
                }
                Document {
                    id: DocumentId::from_stored(format!("{i:04}")),
                    table: TableName::parse("t", "table").expect("valid"),
                    creation_time: 0,
                    update_time: 0,
                    fields: map,
                }
            })
            .collect();
        let indexes = vec![
            IndexDef { name: "by_a".into(), fields: vec![path("a")] },
            IndexDef { name: "by_b_c".into(), fields: vec![path("b"), path("c")] },
            IndexDef { name: "by_c_a_b".into(), fields: vec![path("c"), path("a"), path("b")] },
        ];
        let ops = ["eq", "neq", "gt", "gte", "lt", "lte", "in"];
        let mut indexed = 0;
        for _ in 0..2000 {
            let filters: Vec<Filter> = (0..=rng.pick(3))
                .filter_map(|_| {
                    let field = fields[rng.pick(3) as usize];
                    let op = ops[rng.pick(7) as usize];
                    let operand = match op {
                        "in" => json!([value(&mut rng).unwrap_or(json!(1)), value(&mut rng).unwrap_or(json!("a"))]),
                        "gt" | "gte" | "lt" | "lte" => {
                            if rng.pick(2) == 0 {
                                json!(rng.pick(5) as i64 - 2)
                            } else {
                                json!(["a", "ab", "b"][rng.pick(3) as usize])
                            }
                        }
                        _ => value(&mut rng).unwrap_or(Value::Null),
                    };
                    Filter::new(field, op, operand).ok()
                })
                .collect();
            let expected: Vec<&str> =
                docs.iter().filter(|d| filters.iter().all(|f| f.matches(d))).map(|d| d.id.as_str()).collect();
            let Plan::IndexScan { index, ranges } = choose(&filters, &indexes) else { continue };
            indexed += 1;
            let def = indexes.iter().find(|i| i.name == index).expect("chosen index exists");
            let got: Vec<&str> = docs
                .iter()
                .filter(|d| {
                    let values: Vec<Option<&Value>> =
                        def.fields.iter().map(|f| d.fields.get(&f.segments()[0])).collect();
                    let key = encode_key(&values);
                    ranges.iter().any(|r| key >= r.lower && r.upper.as_ref().is_none_or(|u| &key < u))
                })
                .filter(|d| filters.iter().all(|f| f.matches(d)))
                .map(|d| d.id.as_str())
                .collect();
            assert_eq!(got, expected, "filters {filters:?} via {index}");
        }
        assert!(indexed > 500, "the planner used an index for {indexed} queries");
    }

    #[test]
    fn prefers_the_longest_equality_prefix() {
        let indexes = vec![
            IndexDef { name: "by_a".into(), fields: vec![path("a")] },
            IndexDef { name: "by_a_b".into(), fields: vec![path("a"), path("b")] },
        ];
        let eq = |f: &str, v: Value| Filter::new(f, "eq", v).expect("valid");
        let chosen = |filters: &[Filter]| match choose(filters, &indexes) {
            Plan::IndexScan { index, .. } => index,
            Plan::FullScan => "full".into(),
        };
        assert_eq!(chosen(&[eq("a", json!(1)), eq("b", json!(2))]), "by_a_b");
        assert_eq!(chosen(&[eq("a", json!(1))]), "by_a");
        assert_eq!(chosen(&[eq("b", json!(1))]), "full");
        assert_eq!(chosen(&[Filter::new("a", "neq", json!(1)).expect("valid")]), "full");
        assert_eq!(chosen(&[Filter::new("a", "gte", json!(1)).expect("valid")]), "by_a");
    }
}
