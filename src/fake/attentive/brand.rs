//! The simulated brand's Attentive SFTP feeds: its [`SmsProgram`] on Attentive rendered as the
//! daily General Events and Conversions files of [`super::feeds`], in the same format (headers,
//! legacy names and naive timestamps before `legacy_before`, row keys, delivery times), so the
//! same puller lands them and tests can follow every send, click and credited order from the
//! program's truth into the marts.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::feeds::{self, FeedFile, FeedKind};
use crate::simulate::sms_program::{SmsMessage, SmsProgram, SmsSource, SmsSubscriberState};

/// One General Events and one Conversions file per UTC day of the program's window (a file with
/// only its header on a day without rows), day by day, events first.
pub fn feed_files<'a>(program: &'a SmsProgram, domain: &str, legacy_before: NaiveDate) -> Vec<FeedFile> {
    let (start, end) = program.window;
    if start >= end {
        return Vec::new();
    }
    let subscribers: HashMap<&str, &SmsSubscriberState> =
        program.subscribers.iter().map(|s| (s.subscriber_id.as_str(), s)).collect();
    let sends: HashMap<&str, &SmsMessage> = program.messages.iter().map(|m| (m.send_id.as_str(), m)).collect();
    let mut events: BTreeMap<NaiveDate, Vec<Event<'_>>> = BTreeMap::new();
    let mut push = |e: Event<'a>| events.entry(e.at.date_naive()).or_default().push(e);
    for m in program.messages.iter().filter(|m| !m.failed) {
        push(Event {
            at: m.sent_at,
            kind: Kind::Receipt,
            subscriber_id: &m.subscriber_id,
            message: Some(m),
            extra: "",
        });
    }
    for c in &program.clicks {
        let m = sends[c.send_id.as_str()];
        push(Event {
            at: c.clicked_at,
            kind: Kind::Click,
            subscriber_id: &c.subscriber_id,
            message: Some(m),
            extra: &c.url,
        });
    }
    for e in &program.opt_ins {
        push(Event { at: e.at, kind: Kind::OptIn, subscriber_id: &e.subscriber_id, message: None, extra: &e.method });
    }
    for e in &program.opt_outs {
        push(Event { at: e.at, kind: Kind::OptOut, subscriber_id: &e.subscriber_id, message: None, extra: "" });
    }
    let mut conversions: BTreeMap<NaiveDate, Vec<&_>> = BTreeMap::new();
    for c in &program.conversions {
        conversions.entry(c.order_created_at.date_naive()).or_default().push(c);
    }
    let last = (end - Duration::seconds(1)).date_naive();
    let mut out = Vec::new();
    for day in start.date_naive().iter_days().take_while(|d| *d <= last) {
        let legacy = day < legacy_before;
        let mut content = format!("{}\n", feeds::events_header(legacy));
        let mut keys = Vec::new();
        let mut rows = events.remove(&day).unwrap_or_default();
        rows.sort_by(|a, b| (a.at, a.kind as u8, a.subscriber_id).cmp(&(b.at, b.kind as u8, b.subscriber_id)));
        for e in rows {
            let s = subscribers[e.subscriber_id];
            let written = e.kind.written(legacy);
            keys.push(format!("{}|{written}|{}", e.at.format("%Y-%m-%dT%H:%M:%S"), e.subscriber_id));
            let (message_id, message_name, message_type) = message_cells(e.message);
            let cells = [
                timestamp(e.at, legacy),
                written.to_string(),
                s.subscriber_id.clone(),
                s.phone.clone(),
                s.email.clone().unwrap_or_default(),
                client_user_id(s),
                "TEXT".into(),
                if e.kind == Kind::OptIn { e.extra.to_string() } else { String::new() },
                if matches!(e.kind, Kind::OptIn | Kind::OptOut) { "MARKETING".into() } else { String::new() },
                if e.kind == Kind::OptIn && matches!(e.extra, "DIRECT" | "DOUBLE_OPT_IN") {
                    "4001".into()
                } else {
                    String::new()
                },
                message_id,
                message_name,
                message_type,
                if e.kind == Kind::Click { e.extra.to_string() } else { String::new() },
            ];
            content.push_str(&feeds::csv_line(&cells));
        }
        out.push(FeedFile {
            kind: FeedKind::GeneralEvents,
            day,
            name: feeds::general_events_name(domain, day),
            content,
            keys,
            bad_rows: Vec::new(),
            revenue_cents: 0,
            delivered: feeds::delivered(day, 0),
        });

        let mut content = format!("{}\n", feeds::CONVERSIONS_HEADER);
        let (mut keys, mut revenue_cents) = (Vec::new(), 0i64);
        for c in conversions.remove(&day).unwrap_or_default() {
            let s = subscribers[c.subscriber_id.as_str()];
            let (message_id, message_name, message_type) = message_cells(Some(sends[c.send_id.as_str()]));
            let cents = c.revenue_minor;
            revenue_cents += cents;
            keys.push(c.order_id.to_string());
            let cells = [
                timestamp(c.order_created_at, false),
                c.order_id.to_string(),
                s.subscriber_id.clone(),
                s.phone.clone(),
                s.email.clone().unwrap_or_default(),
                client_user_id(s),
                format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.abs() / 100, cents.abs() % 100),
                program.currency.clone(),
                "TEXT".into(),
                message_id,
                message_name,
                message_type,
                c.attribution.name().into(),
                c.attribution.window_days().to_string(),
            ];
            content.push_str(&feeds::csv_line(&cells));
        }
        out.push(FeedFile {
            kind: FeedKind::Conversions,
            day,
            name: feeds::conversions_name(domain, day),
            content,
            keys,
            bad_rows: Vec::new(),
            revenue_cents,
            delivered: feeds::delivered(day, 0),
        });
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    OptIn,
    Receipt,
    Click,
    OptOut,
}

impl Kind {
    fn written(self, legacy: bool) -> &'static str {
        match (self, legacy) {
            (Kind::OptIn, true) => "JOIN",
            (Kind::OptIn, false) => "SUBSCRIPTION_OPT_IN_COMPLETED",
            (Kind::OptOut, true) => "OPT_OUT",
            (Kind::OptOut, false) => "SUBSCRIPTION_OPTED_OUT",
            (Kind::Receipt, _) => "MESSAGE_RECEIPT",
            (Kind::Click, _) => "MESSAGE_LINK_CLICK",
        }
    }
}

struct Event<'a> {
    at: DateTime<Utc>,
    kind: Kind,
    subscriber_id: &'a str,
    message: Option<&'a SmsMessage>,
    /// The join source of an opt-in, the link of a click.
    extra: &'a str,
}

fn timestamp(at: DateTime<Utc>, legacy: bool) -> String {
    at.format(if legacy { "%Y-%m-%d %H:%M:%S" } else { "%Y-%m-%dT%H:%M:%SZ" }).to_string()
}

fn client_user_id(s: &SmsSubscriberState) -> String {
    s.shopify_customer_id.map(|c| c.to_string()).unwrap_or_default()
}

/// `message_id` (the template), `message_name` and `message_type` of a message row.
fn message_cells(m: Option<&SmsMessage>) -> (String, String, String) {
    match m {
        None => Default::default(),
        Some(m) => (
            m.template_id.clone(),
            m.message_name(),
            match m.source {
                SmsSource::Journey => "AUTOMATED".into(),
                SmsSource::Campaign => "CAMPAIGN".into(),
            },
        ),
    }
}

#[cfg(test)]
mod tests;
