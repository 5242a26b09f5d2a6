//! How a stream finds its next page: a short list of named strategies.

use reqwest::header::HeaderMap;
use serde_json::Value;

/// Pagination strategies the engine drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pagination {
    /// The next page's absolute URL is in the body at a JSON pointer (JSON:API `links.next`).
    NextUrlInBody { pointer: &'static str },
    /// The next page's URL is the `rel="next"` entry of the `Link` header (Shopify REST).
    LinkHeader,
    /// A GraphQL connection: `pageInfo { hasNextPage endCursor }` at a JSON pointer; the next
    /// page is the same request with `variables.after` set to the cursor.
    GraphQlCursor { page_info: &'static str },
    /// One request returns everything.
    Single,
}

impl Pagination {
    /// The URL of the page after this one, if any.
    pub fn next_url(&self, body: &Value, headers: &HeaderMap) -> Option<String> {
        match self {
            Pagination::NextUrlInBody { pointer } => {
                body.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
            }
            Pagination::LinkHeader => headers
                .get_all(reqwest::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .find(|part| part.contains("rel=\"next\""))
                .and_then(|part| part.split(';').next())
                .map(|url| url.trim().trim_start_matches('<').trim_end_matches('>').to_string()),
            Pagination::GraphQlCursor { .. } | Pagination::Single => None,
        }
    }

    /// The request body of the page after this one, for body-cursor strategies.
    pub fn next_body(&self, page: &Value, request: Option<&Value>) -> Option<Value> {
        let Pagination::GraphQlCursor { page_info } = self else { return None };
        let info = page.pointer(page_info)?;
        if !info.get("hasNextPage").and_then(Value::as_bool).unwrap_or(false) {
            return None;
        }
        let cursor = info.get("endCursor").and_then(Value::as_str)?;
        let mut next = request.cloned().unwrap_or_else(|| Value::Object(Default::default()));
        let vars = next.as_object_mut()?.entry("variables").or_insert_with(|| Value::Object(Default::default()));
        vars.as_object_mut()?.insert("after".into(), Value::String(cursor.to_string()));
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn next_url_in_body_and_link_header() {
        let p = Pagination::NextUrlInBody { pointer: "/links/next" };
        assert_eq!(
            p.next_url(&json!({"links": {"next": "http://x/2"}}), &HeaderMap::new()).as_deref(),
            Some("http://x/2")
        );
        assert_eq!(p.next_url(&json!({"links": {"next": null}}), &HeaderMap::new()), None);
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<https://s/a?page_info=p>; rel=\"previous\", <https://s/a?page_info=n>; rel=\"next\"".parse().unwrap(),
        );
        assert_eq!(Pagination::LinkHeader.next_url(&json!({}), &h).as_deref(), Some("https://s/a?page_info=n"));
        assert_eq!(Pagination::Single.next_url(&json!({}), &h), None);
    }

    #[test]
    fn graphql_cursor_sets_after() {
        let p = Pagination::GraphQlCursor { page_info: "/data/orders/pageInfo" };
        let request = json!({"query": "q", "variables": {"first": 10}});
        let more = json!({"data": {"orders": {"pageInfo": {"hasNextPage": true, "endCursor": "c2"}}}});
        assert_eq!(
            p.next_body(&more, Some(&request)),
            Some(json!({"query": "q", "variables": {"first": 10, "after": "c2"}}))
        );
        let last = json!({"data": {"orders": {"pageInfo": {"hasNextPage": false, "endCursor": "c3"}}}});
        assert_eq!(p.next_body(&last, Some(&request)), None);
        assert_eq!(p.next_url(&more, &HeaderMap::new()), None);
    }
}
