//! Reads only the contract's columns out of a raw JSON record, in one pass, without building the
//! record's whole document: keys on no column's path are skipped unparsed (`IgnoredAny`), and
//! only the leaves are materialised. Landing is the hot path of a sync; a full `Value` per
//! record (maps, strings, then a second serialisation for `_raw`) cost more than the rest of
//! landing together.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The contract's JSON pointers as a tree; a node with `column` is a leaf read whole.
#[derive(Debug, Default, Clone)]
pub struct PathTree {
    children: Vec<(String, PathTree)>,
    column: Option<usize>,
}

impl PathTree {
    /// Builds the tree of `(column index, JSON pointer)` pairs.
    pub fn new<'a>(paths: impl IntoIterator<Item = (usize, &'a str)>) -> Self {
        let mut root = PathTree::default();
        for (col, pointer) in paths {
            let mut node = &mut root;
            for token in pointer.split('/').skip(1) {
                let token = token.replace("~1", "/").replace("~0", "~");
                let pos = match node.children.iter().position(|(k, _)| *k == token) {
                    Some(p) => p,
                    None => {
                        node.children.push((token, PathTree::default()));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[pos].1;
            }
            node.column = Some(col);
        }
        root
    }

    /// Fills `out[column]` for every leaf under this node from an already parsed value.
    fn fill_from(&self, v: &Value, out: &mut [Option<Value>]) {
        for (key, child) in &self.children {
            let next = match v {
                Value::Object(m) => m.get(key),
                Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            };
            if let Some(next) = next {
                if let Some(col) = child.column {
                    out[col] = Some(next.clone());
                }
                child.fill_from(next, out);
            }
        }
    }

    /// Reads `raw` (one JSON document), setting `out[column]` for each leaf found.
    pub fn read(&self, raw: &str, out: &mut [Option<Value>]) -> Result<(), serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(raw);
        Node { tree: self, out }.deserialize(&mut de)?;
        de.end()
    }
}

struct Node<'t, 'o> {
    tree: &'t PathTree,
    out: &'o mut [Option<Value>],
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if let Some(col) = self.tree.column {
            let v = <Value as serde::Deserialize>::deserialize(d)?;
            self.tree.fill_from(&v, self.out);
            self.out[col] = Some(v);
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

/// Finds which child a key names, without allocating for the key.
struct KeySeed<'t>(&'t PathTree);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.children.iter().position(|(k, _)| k == key))
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(found) = map.next_key_seed(KeySeed(self.tree))? {
            match found {
                Some(i) => map.next_value_seed(Node { tree: &self.tree.children[i].1, out: &mut *self.out })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let child = self.tree.children.iter().find(|(k, _)| k.parse::<usize>().ok() == Some(i));
            let more = match child {
                Some((_, t)) => seq.next_element_seed(Node { tree: t, out: &mut *self.out })?.is_some(),
                None => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    // A scalar where the contract expects an object: its columns are simply absent.
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_the_same_as_pointers() {
        let record = json!({"id": "e1", "attributes": {"datetime": "2026-01-01T00:00:00Z",
            "event_properties": {"$value": 12.5, "a/b": [1, {"x": "y"}], "big": {"nested": [1, 2, 3]}}},
            "relationships": {"metric": {"data": {"id": "M"}}, "profile": null}});
        let paths = [
            "/id",
            "/attributes/datetime",
            "/attributes/event_properties/$value",
            "/attributes/event_properties/a~1b/1/x",
            "/relationships/metric/data/id",
            "/relationships/profile/data/id",
            "/missing",
            "/attributes/event_properties/big",
        ];
        let tree = PathTree::new(paths.iter().enumerate().map(|(i, p)| (i, *p)));
        let mut out = vec![None; paths.len()];
        tree.read(&record.to_string(), &mut out).unwrap();
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(out[i].as_ref(), record.pointer(p).filter(|v| !v.is_null()).or(record.pointer(p)), "{p}");
        }
        assert!(tree.read("{\"id\": ", &mut out).is_err());
        assert!(tree.read("{} trailing", &mut out).is_err());
    }
}
