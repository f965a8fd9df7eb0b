//! The one resource syntax of the command line (issue 11.11): a resource is
//! `TYPE:ID[@VERSION]` in every command (`log --resource`, `query --resource`,
//! `hold create --resource`, `history`, `lineage`), and a link is
//! `TYPE:ID[@VERSION][:RELATION]` (`log --related`, where the relation is required, and
//! `query --related`, where it is an optional filter).

use anyhow::{anyhow, bail};
use serde_json::{json, Map, Value};

/// `TYPE:ID[@VERSION]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceRef {
    /// `resource.type`.
    pub r#type: String,
    /// `resource.id` (may hold `:`; a last `@` starts the version).
    pub id: String,
    /// `resource.version`.
    pub version: Option<String>,
}

impl ResourceRef {
    /// Parses `TYPE:ID[@VERSION]`.
    pub fn parse(s: &str) -> anyhow::Result<ResourceRef> {
        let (ty, rest) = s
            .split_once(':')
            .filter(|(t, r)| !t.is_empty() && !r.is_empty())
            .ok_or_else(|| {
                anyhow!("{s:?} is not TYPE:ID or TYPE:ID@VERSION, e.g. dataset:customers@v3")
            })?;
        let (id, version) = match rest.rsplit_once('@') {
            // `TYPE:ID@` (a last `@` with nothing after it): no version, for an id that
            // holds `@` itself, e.g. `user:carol@example.com@`.
            Some((id, "")) if !id.is_empty() => (id, None),
            Some((id, v)) if !id.is_empty() => (id, Some(v.to_string())),
            _ => (rest, None),
        };
        Ok(ResourceRef {
            r#type: ty.to_string(),
            id: id.to_string(),
            version,
        })
    }

    /// The resource of a command that covers every version of it (`history`, `lineage`):
    /// `TYPE:ID` as one argument, or `TYPE ID` as two. Everything after the first `:` is the
    /// id, so an id may hold `@` (`user:carol@example.com`).
    pub fn positional(first: &str, second: Option<&str>) -> anyhow::Result<ResourceRef> {
        let (ty, id) = match second {
            Some(id) if first.contains(':') => {
                bail!("give the resource as TYPE:ID or as TYPE ID, not {first:?} and {id:?}")
            }
            Some(id) => (first, id),
            None => first.split_once(':').ok_or_else(|| {
                anyhow!("{first:?} is not TYPE:ID (e.g. dataset:customers), nor TYPE ID")
            })?,
        };
        if ty.is_empty() || id.is_empty() {
            bail!("{first:?} is not TYPE:ID (e.g. dataset:customers), nor TYPE ID");
        }
        Ok(ResourceRef {
            r#type: ty.to_string(),
            id: id.to_string(),
            version: None,
        })
    }

    /// As the JSON object of an event's `resource` or `related[]` item.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("type".into(), json!(self.r#type));
        m.insert("id".into(), json!(self.id));
        if let Some(v) = &self.version {
            m.insert("version".into(), json!(v));
        }
        m
    }
}

/// `TYPE:ID[@VERSION][:RELATION]`: a related resource and how it relates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// The related resource.
    pub resource: ResourceRef,
    /// `related[].relation`, if given.
    pub relation: Option<String>,
}

impl Link {
    /// Parses a link. With three or more `:`-separated parts the last one is the relation;
    /// with two there is none, which is an error when `relation_required` (an id holding
    /// `:` needs its relation given, so that the last part is unambiguous).
    pub fn parse(s: &str, relation_required: bool) -> anyhow::Result<Link> {
        let example = "e.g. dataset:customers@v3:training_data";
        let parts = s.matches(':').count();
        let (reference, relation) = if parts >= 2 {
            let (r, rel) = s.rsplit_once(':').expect("has a ':'");
            if rel.is_empty() {
                bail!("{s:?} ends with an empty relation; {example}");
            }
            (r, Some(rel.to_string()))
        } else if relation_required {
            bail!("{s:?} is not TYPE:ID[@VERSION]:RELATION; {example}");
        } else {
            (s, None)
        };
        Ok(Link {
            resource: ResourceRef::parse(reference)
                .map_err(|_| anyhow!("{s:?} is not TYPE:ID[@VERSION][:RELATION]; {example}"))?,
            relation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_syntax_for_resources_and_links() {
        let r = ResourceRef::parse("dataset:customers@v3").unwrap();
        assert_eq!((r.r#type.as_str(), r.id.as_str()), ("dataset", "customers"));
        assert_eq!(r.version.as_deref(), Some("v3"));
        let r = ResourceRef::parse("user:alice@example.com@2").unwrap();
        assert_eq!(r.id, "alice@example.com", "the last @ starts the version");
        assert_eq!(ResourceRef::parse("model:s3://b/m").unwrap().id, "s3://b/m");
        assert!(ResourceRef::parse("dataset/customers").is_err());
        assert!(ResourceRef::parse("dataset:").is_err());
        assert_eq!(
            ResourceRef::positional("dataset", Some("ds-1")).unwrap(),
            ResourceRef::positional("dataset:ds-1", None).unwrap()
        );
        assert!(ResourceRef::positional("dataset:ds-1", Some("x")).is_err());
        let r = ResourceRef::positional("user:carol@example.com", None).unwrap();
        assert_eq!((r.id.as_str(), r.version), ("carol@example.com", None));
        let r = ResourceRef::parse("user:carol@example.com@").unwrap();
        assert_eq!((r.id.as_str(), r.version), ("carol@example.com", None));
        assert!(ResourceRef::positional("dataset", None).is_err());
        assert!(ResourceRef::positional(":x", None).is_err());

        let l = Link::parse("dataset:customers@v3:training_data", true).unwrap();
        assert_eq!(l.relation.as_deref(), Some("training_data"));
        assert_eq!(l.resource.version.as_deref(), Some("v3"));
        let l = Link::parse("dataset:customers", false).unwrap();
        assert_eq!((l.resource.id.as_str(), l.relation), ("customers", None));
        assert!(Link::parse("dataset:customers", true).is_err());
        assert!(Link::parse("dataset:customers:", false).is_err());
    }
}
