//! Splitting a JSON:API page into its records without parsing them: each record stays the exact
//! text the API sent (it becomes `_raw` as is), and the next-page link is read on the way.

use serde::Deserialize;
use serde_json::value::RawValue;

/// A JSON:API collection page: records under `data`, the next page at `links.next`.
#[derive(Debug, Deserialize)]
pub struct JsonApiPage<'a> {
    #[serde(borrow)]
    pub data: Vec<&'a RawValue>,
    #[serde(default)]
    pub links: Option<Links>,
}

#[derive(Debug, Deserialize)]
pub struct Links {
    #[serde(default)]
    pub next: Option<String>,
}

impl<'a> JsonApiPage<'a> {
    /// Parses a page body; an error when it is not JSON or has no `data` array.
    pub fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The next page's URL, when there is one.
    pub fn next(&self) -> Option<&str> {
        self.links.as_ref().and_then(|l| l.next.as_deref()).filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_records_verbatim_and_reads_the_next_link() {
        let body = br#"{"data": [{"id": "a", "x": [1, 2]}, {"id":"b"}], "links": {"self": "s", "next": "http://n"}, "meta": {}}"#;
        let page = JsonApiPage::parse(body).unwrap();
        assert_eq!(page.data.len(), 2);
        assert_eq!(page.data[0].get(), r#"{"id": "a", "x": [1, 2]}"#);
        assert_eq!(page.next(), Some("http://n"));
        let last = JsonApiPage::parse(br#"{"data": [], "links": {"next": null}}"#).unwrap();
        assert_eq!(last.next(), None);
        assert!(JsonApiPage::parse(br#"{"data": {"id": "single"}}"#).is_err());
        assert!(JsonApiPage::parse(br#"{"data": [{"id": "trunc"#).is_err());
    }
}
