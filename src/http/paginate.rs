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
            Pagination::Single => None,
        }
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
}
