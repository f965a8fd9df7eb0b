//! Field paths of the privacy configuration: `actor.id`, `related[].id`, `parameters`.
//!
//! A path is a list of member names separated by `.`; a name followed by `[]` stands for
//! every element of the array it names. Concrete paths (the ones recorded in sealed
//! values) write the element's index instead: `parameters.with[1]`.

use serde_json::{Map, Value};

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// An object member.
    Key(String),
    /// Every element of an array.
    Each,
}

/// A parsed path; it always starts and ends with a member name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    steps: Vec<Step>,
}

impl FieldPath {
    /// Parses `a.b[].c`.
    pub fn parse(text: &str) -> anyhow::Result<FieldPath> {
        let mut steps = Vec::new();
        for part in text.split('.') {
            let (name, each) = match part.strip_suffix("[]") {
                Some(n) => (n, true),
                None => (part, false),
            };
            if name.is_empty() || name.contains(['[', ']']) {
                anyhow::bail!("not a path like actor.id or related[].id");
            }
            steps.push(Step::Key(name.to_string()));
            if each {
                steps.push(Step::Each);
            }
        }
        if steps.last() == Some(&Step::Each) {
            anyhow::bail!("a path must end with a member name, not []");
        }
        Ok(FieldPath { steps })
    }

    /// The top-level member the path starts at.
    pub fn first_key(&self) -> &str {
        match self.steps.first() {
            Some(Step::Key(k)) => k,
            _ => unreachable!("bad logic: a parsed path starts with a key"),
        }
    }

    /// The last member name.
    pub fn last_key(&self) -> &str {
        match self.steps.last() {
            Some(Step::Key(k)) => k,
            _ => unreachable!("bad logic: a parsed path ends with a key"),
        }
    }

    /// Calls `f(parent, concrete_parent_path)` for every object that holds the path's last
    /// member (whether or not the member is present), e.g. every element of `related` for
    /// `related[].id`.
    pub fn for_each_parent(
        &self,
        root: &mut Value,
        f: &mut dyn FnMut(&mut Map<String, Value>, &str),
    ) {
        let parent = &self.steps[..self.steps.len() - 1];
        walk(root, parent, String::new(), f);
    }
}

fn walk(
    v: &mut Value,
    steps: &[Step],
    at: String,
    f: &mut dyn FnMut(&mut Map<String, Value>, &str),
) {
    match steps.split_first() {
        None => {
            if let Value::Object(m) = v {
                f(m, &at);
            }
        }
        Some((Step::Key(k), rest)) => {
            if let Some(child) = v.as_object_mut().and_then(|m| m.get_mut(k)) {
                walk(child, rest, join(&at, k), f);
            }
        }
        Some((Step::Each, rest)) => {
            if let Value::Array(items) = v {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, rest, format!("{at}[{i}]"), f);
                }
            }
        }
    }
}

/// `at.key`, or `key` at the root.
pub fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// The value at a concrete path (`parameters.with[1]`), if present.
pub fn get_mut<'a>(root: &'a mut Value, concrete: &str) -> Option<&'a mut Value> {
    let mut v = root;
    for part in concrete.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        v = v.as_object_mut()?.get_mut(name)?;
        for idx in indexes.split('[').filter(|s| !s.is_empty()) {
            let i: usize = idx.strip_suffix(']')?.parse().ok()?;
            v = v.as_array_mut()?.get_mut(i)?;
        }
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_walks_arrays() {
        let p = FieldPath::parse("related[].id").unwrap();
        let mut v = json!({"related": [{"id": "a"}, {"type": "x"}, 5]});
        let mut seen = Vec::new();
        p.for_each_parent(&mut v, &mut |m, at| {
            seen.push((at.to_string(), m.contains_key("id")))
        });
        assert_eq!(
            seen,
            vec![
                ("related[0]".to_string(), true),
                ("related[1]".to_string(), false)
            ]
        );
        assert_eq!(p.last_key(), "id");
        assert_eq!(get_mut(&mut v, "related[0].id").cloned(), Some(json!("a")));
        assert!(get_mut(&mut v, "related[7].id").is_none());
        for bad in ["", "a..b", "a[]", "a[x].b", ".a"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad:?}");
        }
    }
}
