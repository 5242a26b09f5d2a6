//! Feed file names: a configured pattern with `{domain}` and exactly one `{YYYYMMDD}`.
//!
//! Hand-written rather than a glob or regex crate: the only wildcard is the date, and the
//! date is what we need back out of the name.

use chrono::NaiveDate;

/// A pattern with its domain filled in, split around the date.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePattern {
    /// The configured text, for messages.
    pub text: String,
    prefix: String,
    suffix: String,
}

const DATE: &str = "{YYYYMMDD}";

impl FilePattern {
    /// Fills `{domain}` and checks there is exactly one `{YYYYMMDD}`.
    pub fn new(pattern: &str, domain: &str) -> Result<Self, String> {
        let filled = pattern.replace("{domain}", domain);
        let parts: Vec<&str> = filled.split(DATE).collect();
        if parts.len() != 2 {
            return Err(format!("a file-name pattern with exactly one {DATE}"));
        }
        if parts.iter().any(|p| p.contains(['{', '}', '/'])) {
            return Err(format!("a file name (no '/') whose only placeholders are {{domain}} and {DATE}"));
        }
        Ok(Self { text: pattern.to_string(), prefix: parts[0].to_string(), suffix: parts[1].to_string() })
    }

    /// The file name for `day`.
    pub fn name(&self, day: NaiveDate) -> String {
        format!("{}{}{}", self.prefix, day.format("%Y%m%d"), self.suffix)
    }

    /// The day in `name`, when `name` follows the pattern.
    pub fn day(&self, name: &str) -> Option<NaiveDate> {
        let date = name.strip_prefix(&self.prefix)?.strip_suffix(&self.suffix)?;
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        NaiveDate::parse_from_str(date, "%Y%m%d").ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_other_files_do_not_match() {
        let p = FilePattern::new("{domain}_attentive_email_SMS_{YYYYMMDD}.csv", "acme.com").unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 10, 3).unwrap();
        assert_eq!(p.name(day), "acme.com_attentive_email_SMS_20261003.csv");
        assert_eq!(p.day("acme.com_attentive_email_SMS_20261003.csv"), Some(day));
        for other in [
            "acme.com_attentive_conversions_20261003.csv",
            "acme.com_attentive_email_SMS_20261003.csv.part",
            "acme.com_attentive_email_SMS_20261332.csv",
            "acme.com_attentive_email_SMS_2026103.csv",
            "other.com_attentive_email_SMS_20261003.csv",
        ] {
            assert_eq!(p.day(other), None, "{other}");
        }
        assert!(FilePattern::new("feed.csv", "a").is_err());
        assert!(FilePattern::new("{YYYYMMDD}_{YYYYMMDD}.csv", "a").is_err());
        assert!(FilePattern::new("{domain}/{YYYYMMDD}.csv", "a").is_err());
        assert!(FilePattern::new("{brand}_{YYYYMMDD}.csv", "a").is_err());
    }
}
