//! YAML read into a `serde_json::Value` within a memory budget that grows
//! with the text's size. Aliases are the reason: each `*name` replays its
//! anchor's whole subtree, so a few hundred bytes of nested aliases (a
//! "billion laughs") expand into gigabytes, and one alias of a long string
//! copies the string every time it is used. serde-saphyr caps replayed
//! events (a million by default, still tens of megabytes from a few lines)
//! but not the bytes they carry; this caps both, in bytes.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// What a document may build per byte of its text, and whatever its size.
/// Each node is charged about what it takes in memory (below). A document
/// without aliases stays under this even when it is all the costliest
/// items: `{a: 1}` maps, a whole B-tree node for 7 bytes, come to about
/// 110 per byte, one-character list items (`[a,a,...]`) to 33. Only an
/// expansion reaches it.
const BYTES_PER_BYTE: usize = 128;
const BYTES_FIXED: usize = 64 * 1024;

/// Events aliases may replay, per byte of text and for any file. A merge
/// key (`<<: *defaults`) in every route replays about two events per key
/// for a line of its own: even thirty shared keys replay under two events
/// per byte of the file. Nested aliases replay far more; stopping them
/// within a few hundred events keeps the parser's own copies small.
const REPLAYED_PER_BYTE: usize = 2;
const REPLAYED_FIXED: usize = 128;
/// Aliases of one anchor a file may hold: a route setting shared by every
/// route of a large config.
const ALIASES_PER_ANCHOR: usize = 1_000;

/// A `Value`, and its share of the parent's growing `Vec` or map entry.
const NODE: usize = 64;
/// A map's first B-tree node, allocated whole for one entry.
const MAP: usize = 640;

/// The budget for a document of `text_len` bytes.
pub(super) fn for_text(text_len: usize) -> usize {
    text_len
        .saturating_mul(BYTES_PER_BYTE)
        .saturating_add(BYTES_FIXED)
}

/// Reads one YAML value, charging what it builds against `left`;
/// `exhausted` is set when the budget ran out (the error then says so).
pub(super) struct Budgeted<'a> {
    pub left: &'a Cell<usize>,
    pub exhausted: &'a Cell<bool>,
}

impl Budgeted<'_> {
    fn again(&self) -> Self {
        Budgeted {
            left: self.left,
            exhausted: self.exhausted,
        }
    }

    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        match self.left.get().checked_sub(bytes) {
            Some(rest) => {
                self.left.set(rest);
                Ok(())
            }
            None => {
                self.exhausted.set(true);
                Err(E::custom("the document expands past its memory budget"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budgeted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.charge(NODE)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.charge(NODE)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.charge(NODE)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.charge(NODE)?;
        Ok(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.charge(NODE.saturating_add(v.len()))?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.charge(NODE.saturating_add(v.len()))?;
        Ok(Value::String(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.charge(NODE)?;
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.charge(NODE)?;
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.charge(NODE)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.again())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.charge(NODE)?;
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.is_empty() {
                self.charge(MAP)?;
            }
            self.charge(key.len())?;
            let value = map.next_value_seed(self.again())?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

/// The parser's own limits on what aliases replay, in step with the budget:
/// it keeps a copy of each anchor's events and replays them per alias, at
/// a few hundred bytes an event, before a value is built from them.
fn options(text: &str) -> serde_saphyr::Options {
    let events = text
        .len()
        .saturating_mul(REPLAYED_PER_BYTE)
        .saturating_add(REPLAYED_FIXED);
    let mut options = serde_saphyr::Options::default();
    // The excerpt around a syntax error would quote the file's lines, keys
    // written in it included, into logs and a reload's answer; the line and
    // column say where to look.
    options.with_snippet = false;
    options.alias_limits.max_total_replayed_events = events;
    let mut budget = options.budget.take().unwrap_or_default();
    budget.max_recorded_anchor_events = events;
    budget.max_recorded_anchor_bytes = text.len().saturating_add(BYTES_FIXED);
    // The parser's guess at an expansion (ten aliases an anchor) refuses
    // one `targets: *t` or `<<: *defaults` shared by a hundred routes; what
    // an alias builds is charged against the byte budget anyway.
    budget.alias_anchor_ratio_multiplier = ALIASES_PER_ANCHOR;
    options.budget = Some(budget);
    options
}

/// Parses `text` as YAML within its budget: `Err(None)` when the budget ran
/// out, `Err(Some(message))` when it is not YAML.
pub(super) fn parse(text: &str) -> Result<Value, Option<String>> {
    let left = Cell::new(for_text(text.len()));
    let exhausted = Cell::new(false);
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options(text), |de| {
        Budgeted {
            left: &left,
            exhausted: &exhausted,
        }
        .deserialize(de)
    });
    match parsed {
        Ok(value) => Ok(value),
        Err(e) if exhausted.get() || is_expansion(&e) => Err(None),
        Err(e) => Err(Some(e.to_string())),
    }
}

/// Whether the parser stopped at one of its limits on aliases (`options`).
fn is_expansion(mut error: &serde_saphyr::Error) -> bool {
    use serde_saphyr::Error;
    use serde_saphyr::budget::BudgetBreach;
    while let Error::AliasError { error: inner, .. } | Error::WithSnippet { error: inner, .. } =
        error
    {
        error = inner;
    }
    matches!(
        error,
        Error::Budget {
            breach: BudgetBreach::RecordedAnchorEvents { .. }
                | BudgetBreach::RecordedAnchorBytes { .. },
            ..
        } | Error::AliasReplayLimitExceeded { .. }
            | Error::AliasReplayCounterOverflow { .. }
            | Error::AliasExpansionLimitExceeded { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nested aliases, each level ten times the last: 300 bytes that a
    /// plain parse expands to tens of megabytes.
    const LAUGHS: &str = "x0: &a0 [1,1,1,1,1,1,1,1,1,1]\n\
        x1: &a1 [*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0]\n\
        x2: &a2 [*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1]\n\
        x3: &a3 [*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2]\n\
        x4: &a4 [*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3,*a3]\n";

    #[test]
    fn nested_aliases_run_out_of_budget() {
        assert_eq!(parse(LAUGHS), Err(None));
    }

    #[test]
    fn a_config_of_nested_aliases_is_refused_with_what_to_fix() {
        let text = format!(
            "providers:\n  a: {{ kind: openai }}\nroutes:\n  r: {{ targets: [a/x] }}\n{LAUGHS}"
        );
        let Err(error) = crate::config::Config::from_yaml(&text, "t.yaml", &|_| None) else {
            panic!("nested aliases were accepted");
        };
        assert!(
            error.to_string().contains("aliases (`*name`) expand"),
            "{error}"
        );
    }

    #[test]
    fn an_alias_of_a_long_string_used_often_runs_out_of_budget() {
        let text = format!(
            "s: &s \"{}\"\nl: [{}]\n",
            "a".repeat(4000),
            "*s,".repeat(2000)
        );
        assert_eq!(parse(&text), Err(None));
    }

    /// Found in review: shared route settings merged into each of a hundred
    /// routes (a common way to write a large config) were refused as an
    /// expansion, by a cap on replayed events far below the byte budget.
    #[test]
    fn shared_settings_merged_into_many_routes_load() {
        let defaults: String = (0..10).map(|i| format!("  k{i}: value-{i}\n")).collect();
        let routes: String = (0..100)
            .map(|i| format!("  r{i}:\n    <<: *d\n    targets: [a/m{i}]\n"))
            .collect();
        let text = format!("x-defaults: &d\n{defaults}routes:\n{routes}");
        let parsed = parse(&text);
        assert!(parsed.is_ok(), "refused: {parsed:?}");
    }

    #[test]
    fn documents_as_written_fit_their_budget() {
        let dense = format!("[{}a]", "a,".repeat(50_000));
        assert!(parse(&dense).is_ok());
        let maps = format!("[{}{{a: 1}}]", "{a: 1},".repeat(20_000));
        assert!(parse(&maps).is_ok());
        let routes = "defaults: &d { attempt_timeout: 20s, first_token_timeout: 5s }\n\
            routes:\n  a: { <<: *d, targets: [p/x] }\n  b: { <<: *d, targets: [p/y] }\n";
        let value = parse(routes).unwrap_or_default();
        assert_eq!(value["routes"]["b"]["first_token_timeout"], "5s");
    }
}
