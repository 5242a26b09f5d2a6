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
    /// Page numbers over a list sorted ascending by a cursor that a filter can restart at
    /// (Postscript's `page` with `updated_at__gte` and `sort=updated_at__asc`). Page numbers over
    /// a set that changes while it is read skip rows: a record updated mid-scan moves to the
    /// end and every later record slides back a place, into a page already read. So each next
    /// page restarts the filter at the last record's cursor on page 1 (re-reading the rows that
    /// share it: staging dedups on id), and only a page whose rows all share the filter's value
    /// moves to the next page number.
    PageNumberKeyset {
        /// Pointer of `{page, total_pages}` in the body.
        page_info: &'static str,
        /// Pointer of the record array.
        records: &'static str,
        /// Pointer of the cursor in a record.
        cursor: &'static str,
        /// The query parameter holding the lower bound (`updated_at__gte`).
        filter: &'static str,
        /// The page-number parameter (`page`).
        page_param: &'static str,
    },
    /// One request returns everything.
    Single,
}

impl Pagination {
    /// The URL of the page after this one (`current` is this page's URL), if any.
    pub fn next_url(&self, current: &str, body: &Value, headers: &HeaderMap) -> Option<String> {
        match self {
            Pagination::PageNumberKeyset { page_info, records, cursor, filter, page_param } => {
                let info = body.pointer(page_info)?;
                let page = info.get("page").and_then(Value::as_u64)?;
                if page >= info.get("total_pages").and_then(Value::as_u64)? {
                    return None;
                }
                let last = body.pointer(records)?.as_array()?.last()?.pointer(cursor)?.as_str()?;
                let url = url::Url::parse(current).ok()?;
                let bound = url.query_pairs().find(|(k, _)| k == filter).map(|(_, v)| v.into_owned());
                let (bound, page) = match bound {
                    Some(b) if b == last => (b, page + 1),
                    _ => (last.to_string(), 1),
                };
                let mut next = url.clone();
                {
                    let mut q = next.query_pairs_mut();
                    q.clear();
                    for (k, v) in url.query_pairs().filter(|(k, _)| k != filter && k != page_param) {
                        q.append_pair(&k, &v);
                    }
                    q.append_pair(filter, &bound);
                    q.append_pair(page_param, &page.to_string());
                }
                Some(next.to_string())
            }
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
            p.next_url("", &json!({"links": {"next": "http://x/2"}}), &HeaderMap::new()).as_deref(),
            Some("http://x/2")
        );
        assert_eq!(p.next_url("", &json!({"links": {"next": null}}), &HeaderMap::new()), None);
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            "<https://s/a?page_info=p>; rel=\"previous\", <https://s/a?page_info=n>; rel=\"next\"".parse().unwrap(),
        );
        assert_eq!(Pagination::LinkHeader.next_url("", &json!({}), &h).as_deref(), Some("https://s/a?page_info=n"));
        assert_eq!(Pagination::Single.next_url("", &json!({}), &h), None);
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
        assert_eq!(p.next_url("", &more, &HeaderMap::new()), None);
    }

    #[test]
    fn page_numbers_restart_at_the_last_cursor() {
        let p = Pagination::PageNumberKeyset {
            page_info: "/page_info",
            records: "/subscribers",
            cursor: "/updated_at",
            filter: "updated_at__gte",
            page_param: "page",
        };
        let first = "http://x/api/v2/subscribers?sort=updated_at__asc&updated_at__gte=2026-01-01T00%3A00%3A00";
        let page = |n: u64, total: u64, cursors: &[&str]| {
            json!({"page_info": {"page": n, "total_pages": total},
                   "subscribers": cursors.iter().map(|c| json!({"updated_at": c})).collect::<Vec<_>>()})
        };
        let h = HeaderMap::new();
        let next = p.next_url(first, &page(1, 3, &["2026-01-01T00:00:00", "2026-02-01T10:00:00"]), &h).unwrap();
        assert_eq!(
            next,
            "http://x/api/v2/subscribers?sort=updated_at__asc&updated_at__gte=2026-02-01T10%3A00%3A00&page=1"
        );
        // A page whose rows all share the bound moves on by page number.
        let same = p.next_url(&next, &page(1, 2, &["2026-02-01T10:00:00", "2026-02-01T10:00:00"]), &h).unwrap();
        assert_eq!(
            same,
            "http://x/api/v2/subscribers?sort=updated_at__asc&updated_at__gte=2026-02-01T10%3A00%3A00&page=2"
        );
        assert_eq!(p.next_url(first, &page(3, 3, &["2026-03-01T00:00:00"]), &h), None);
        assert_eq!(p.next_url(first, &page(1, 1, &["2026-03-01T00:00:00"]), &h), None);
    }
}
