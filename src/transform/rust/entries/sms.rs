//! What the entries of Attentive journeys and Postscript automations read beyond Klaviyo's data:
//! each person's subscriber id, SMS consent and sends on that platform.
//!
//! Their trigger rules are the flow type's (the shop's orders and on-site events do not depend on
//! which platform texts), except `welcome`, which the platform's own opt-in triggers. The arm is
//! the platform's consent: a person reachable by the platform at entry is `T`, a person it could
//! not text is `C` (`natural_unreachable`); `reachable_email` stays Klaviyo's, the stratum's other
//! channel.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::Array;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

use super::{Interner, Interval};
use crate::transform::rust::columns::{for_each_batch, micros, text};

/// The SMS platforms whose flows have entries, as `int_flows.platform` names them.
pub(super) const PLATFORMS: &[&str] = &["attentive", "postscript"];

const CONSENT_SQL: &str = "\
select c.platform, p.person_key, c.identifier_value, c.status, c.valid_from, c.valid_to
from int_consent_history c
join int_person_identifier p on p.identifier_type = c.identifier_type and p.identifier_value = c.identifier_value
where c.platform in ('attentive', 'postscript') and c.channel = 'sms' and not coalesce(p.is_blocked, false)
order by c.platform, p.person_key, c.identifier_value, c.valid_from";

const SENDS_SQL: &str = "\
select platform, flow_id, person_key, occurred_at from fct_message_events
where platform in ('attentive', 'postscript') and is_send and flow_id is not null and person_key is not null";

/// One platform's view of the persons it can text.
#[derive(Default)]
pub(super) struct Platform {
    /// person → the subscriber id the platform knows them by (the first in id order).
    subscriber: HashMap<Arc<str>, Arc<str>>,
    /// person → SMS consent intervals of all their subscriber ids.
    consent: HashMap<Arc<str>, Vec<Interval>>,
    /// flow id → person → send times, sorted.
    sends: HashMap<Arc<str>, HashMap<Arc<str>, Vec<i64>>>,
}

impl Platform {
    /// The platform could text `person` at `at`: one of their subscribed intervals covers it.
    pub(super) fn reachable(&self, person: &str, at: i64) -> bool {
        self.consent
            .get(person)
            .is_some_and(|v| v.iter().any(|(from, to, sub)| *sub && *from <= at && to.is_none_or(|t| at < t)))
    }

    /// The id an entry names: the person's subscriber id, or `person:<key>` for a person the
    /// platform never knew (a natural control).
    pub(super) fn profile_of(&self, person: &Arc<str>) -> Arc<str> {
        self.subscriber.get(person).cloned().unwrap_or_else(|| Arc::from(format!("person:{person}")))
    }

    /// Each subscribed person's first opt-in: the welcome trigger, with the subscriber id.
    pub(super) fn opt_ins(&self) -> impl Iterator<Item = (&Arc<str>, Arc<str>, i64)> {
        self.consent.iter().filter_map(|(person, v)| {
            let first = v.iter().filter(|(_, _, sub)| *sub).map(|(from, _, _)| *from).min()?;
            Some((person, self.profile_of(person), first))
        })
    }

    /// The first send of `flow_id` to `person` in `[from, to)`.
    pub(super) fn first_send(&self, flow_id: &str, person: &Arc<str>, from: i64, to: i64) -> Option<i64> {
        let sends = self.sends.get(flow_id)?.get(person)?;
        let i = sends.partition_point(|t| *t < from);
        sends.get(i).copied().filter(|t| *t < to)
    }
}

/// Loads the SMS platforms' data; empty when no flow of theirs needs entries.
pub(super) async fn load(ctx: &SessionContext, needed: bool) -> Result<HashMap<String, Platform>> {
    let mut out: HashMap<String, Platform> = HashMap::new();
    if !needed {
        return Ok(out);
    }
    let mut strings = Interner::default();
    for_each_batch(ctx, CONSENT_SQL, |b| {
        let (platform, person, id, status) = (text(b, 0)?, text(b, 1)?, text(b, 2)?, text(b, 3)?);
        let (from, to) = (micros(b, 4)?, micros(b, 5)?);
        for r in 0..b.num_rows() {
            let p = out.entry(platform.value(r).to_string()).or_default();
            let person = strings.get(person.value(r));
            p.subscriber.entry(person.clone()).or_insert_with(|| Arc::from(id.value(r)));
            p.consent.entry(person).or_default().push((
                from.value(r),
                to.is_valid(r).then(|| to.value(r)),
                status.value(r) == "subscribed",
            ));
        }
        Ok(())
    })
    .await?;
    for_each_batch(ctx, SENDS_SQL, |b| {
        let (platform, flow, person, at) = (text(b, 0)?, text(b, 1)?, text(b, 2)?, micros(b, 3)?);
        for r in 0..b.num_rows() {
            let p = out.entry(platform.value(r).to_string()).or_default();
            let by_person = p.sends.entry(strings.get(flow.value(r))).or_default();
            by_person.entry(strings.get(person.value(r))).or_default().push(at.value(r));
        }
        Ok(())
    })
    .await?;
    for p in out.values_mut() {
        for v in p.sends.values_mut().flat_map(HashMap::values_mut) {
            v.sort_unstable();
        }
    }
    Ok(out)
}
