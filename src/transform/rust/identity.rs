//! Identity resolution (models.md 1.3): every identifier seen in a source record becomes a node,
//! identifiers seen together in one record are joined by an edge, and union-find groups them into
//! persons. `person_key` is the md5 of `<identifier_type>|<identifier_value>` of the component's
//! oldest identifier (earliest `first_seen_at`, then type, then value), so a later merge keeps
//! the older person's key.
//!
//! Guard rails: identifiers on the blocklist (role or placeholder email addresses, placeholder
//! phones: detected on the plain values in raw, which never leave this module, only their hashes)
//! and identifiers attached to more than [`MAX_CUSTOMERS_PER_IDENTIFIER`] Shopify customer ids
//! are kept out of the graph: they get a row with `is_blocked = true` and a key of their own.
//!
//! State carried from the previous run (`prev_int_person_identifier`): an identifier's
//! `first_seen_at` never gets later and its `last_seen_at` never earlier, so keys stay stable when
//! staging keeps only the latest copy of a record; identifiers that no longer appear in any
//! record (an email replaced on a customer) are kept ("every identifier ever seen") and stay with
//! the person they belonged to.
//!
//! `int_person_key_history` is a second model, built right after this one (names sort that way),
//! but computed here: the new rows are compared with `prev_int_person_identifier` before this
//! model is published (publishing deletes the previous version's files, which empties
//! `prev_int_person_identifier`), and the result is left in the session for the history build.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMicrosecondType};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{DataFrame, SessionContext, cast, col};
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

/// An identifier attached to more than this many Shopify customer ids merges nothing.
pub const MAX_CUSTOMERS_PER_IDENTIFIER: usize = 20;

pub const SHOPIFY_CUSTOMER_ID: &str = "shopify_customer_id";
pub const EMAIL_SHA256: &str = "email_sha256";
pub const PHONE_SHA256: &str = "phone_sha256";
pub const KLAVIYO_PROFILE_ID: &str = "klaviyo_profile_id";
pub const ATTENTIVE_SUBSCRIBER_ID: &str = "attentive_subscriber_id";
pub const POSTSCRIPT_SUBSCRIBER_ID: &str = "postscript_subscriber_id";

/// One identifier in its normal form. Orders by type, then value (the output order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ident {
    pub kind: String,
    pub value: String,
}

impl Ident {
    pub fn new(kind: &str, value: impl Into<String>) -> Ident {
        Ident { kind: kind.to_string(), value: value.into() }
    }
}

/// The identifiers of one source record, seen together, and the record's timestamps (µs UTC).
#[derive(Debug, Clone)]
pub struct Record {
    pub ids: Vec<Ident>,
    pub first_seen: i64,
    pub last_seen: i64,
}

/// A row of the previous run's `int_person_identifier`.
#[derive(Debug, Clone)]
pub struct Prior {
    pub ident: Ident,
    pub person_key: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub blocked: bool,
}

/// One output row before hashing: `anchor` is the identifier whose md5 is the person key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub ident: Ident,
    pub anchor: Ident,
    pub first_seen: i64,
    pub last_seen: i64,
    pub blocked: bool,
}

/// Disjoint sets over `0..n`, union by size with path halving.
pub struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    pub fn new(n: usize) -> UnionFind {
        UnionFind { parent: (0..n).collect(), size: vec![1; n] }
    }

    pub fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    pub fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

/// Role and placeholder local parts (before any `+tag`): shared inboxes, not people.
const ROLE_LOCAL_PARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "none",
    "noemail",
    "no-email",
    "nomail",
    "null",
    "na",
    "n/a",
    "test",
    "example",
    "info",
    "admin",
    "support",
    "sales",
    "contact",
    "orders",
    "billing",
    "postmaster",
    "webmaster",
    "hostmaster",
    "abuse",
    "mailer-daemon",
    "root",
];

/// Whether a normalized (`lower(trim())`) email is a role or placeholder address.
pub fn is_role_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return true;
    };
    let local = local.split('+').next().unwrap_or(local);
    ROLE_LOCAL_PARTS.contains(&local) || local.is_empty() || domain.is_empty()
}

/// Whether a trimmed phone number is a placeholder: too short to be real, one digit repeated, or
/// a run like 1234567890 (the national part is checked without a leading country code 1).
pub fn is_placeholder_phone(phone: &str) -> bool {
    let digits: Vec<u8> = phone.bytes().filter(u8::is_ascii_digit).collect();
    if digits.len() < 7 {
        return true;
    }
    let national = if digits.len() == 11 && digits[0] == b'1' { &digits[1..] } else { &digits[..] };
    let same = national.iter().all(|d| *d == national[0]);
    let ascending = national.windows(2).all(|w| w[1] == w[0] + 1 || (w[0] == b'9' && w[1] == b'0'));
    same || ascending
}

/// SHA-256 hex, as staging hashes emails and phones.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Union-find with the guard rails: one row per identifier, sorted by type then value.
pub fn resolve(records: &[Record], blocklist: &BTreeSet<Ident>, prior: &[Prior]) -> Vec<Resolved> {
    // Nodes with their first and last sightings.
    let mut seen: BTreeMap<Ident, (i64, i64)> = BTreeMap::new();
    let mut customers: BTreeMap<&Ident, BTreeSet<&str>> = BTreeMap::new();
    for r in records {
        let shopify: Vec<&str> =
            r.ids.iter().filter(|i| i.kind == SHOPIFY_CUSTOMER_ID).map(|i| i.value.as_str()).collect();
        for id in &r.ids {
            let e = seen.entry(id.clone()).or_insert((r.first_seen, r.last_seen));
            e.0 = e.0.min(r.first_seen);
            e.1 = e.1.max(r.last_seen);
            if id.kind != SHOPIFY_CUSTOMER_ID {
                customers.entry(id).or_default().extend(shopify.iter().copied());
            }
        }
    }
    let mut blocked: BTreeSet<Ident> = seen.keys().filter(|i| blocklist.contains(*i)).cloned().collect();
    blocked.extend(customers.iter().filter(|(_, c)| c.len() > MAX_CUSTOMERS_PER_IDENTIFIER).map(|(i, _)| (*i).clone()));
    // The previous run: sightings never shrink; vanished identifiers are kept.
    let mut carried: Vec<&Prior> = Vec::new();
    for p in prior {
        match seen.get_mut(&p.ident) {
            Some(e) => {
                e.0 = e.0.min(p.first_seen);
                e.1 = e.1.max(p.last_seen);
            }
            None => {
                seen.insert(p.ident.clone(), (p.first_seen, p.last_seen));
                if p.blocked || blocklist.contains(&p.ident) {
                    blocked.insert(p.ident.clone());
                }
                carried.push(p);
            }
        }
    }

    let nodes: Vec<(&Ident, &(i64, i64))> = seen.iter().collect();
    let index: BTreeMap<&Ident, usize> = nodes.iter().enumerate().map(|(n, (i, _))| (*i, n)).collect();
    let mut uf = UnionFind::new(nodes.len());
    for r in records {
        let mut linked = r.ids.iter().filter(|i| !blocked.contains(*i)).map(|i| index[i]);
        if let Some(first) = linked.next() {
            linked.for_each(|n| uf.union(first, n));
        }
    }
    // A vanished identifier stays with the other (unblocked) identifiers of its previous person.
    let mut by_key: BTreeMap<&str, usize> = BTreeMap::new();
    for p in prior.iter().filter(|p| !blocked.contains(&p.ident) && !p.blocked) {
        by_key.entry(&p.person_key).or_insert(index[&p.ident]);
    }
    for p in carried.iter().filter(|p| !blocked.contains(&p.ident)) {
        uf.union(by_key[p.person_key.as_str()], index[&p.ident]);
    }

    // The anchor of each component: earliest first_seen, then type, then value.
    let mut anchor: BTreeMap<usize, usize> = BTreeMap::new();
    for n in 0..nodes.len() {
        let root = uf.find(n);
        let best = anchor.entry(root).or_insert(n);
        if (nodes[n].1.0, nodes[n].0) < (nodes[*best].1.0, nodes[*best].0) {
            *best = n;
        }
    }
    (0..nodes.len())
        .map(|n| {
            let a = anchor[&uf.find(n)];
            Resolved {
                ident: nodes[n].0.clone(),
                anchor: nodes[a].0.clone(),
                first_seen: nodes[n].1.0,
                last_seen: nodes[n].1.1,
                blocked: blocked.contains(nodes[n].0),
            }
        })
        .collect()
}

/// Builds `int_person_identifier`.
pub fn build_person_identifier(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(person_identifier(ctx))
}

/// Builds `int_person_key_history`.
pub fn build_person_key_history(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(async move {
        match ctx.table(HISTORY_TABLE).await {
            Ok(df) => Ok(df),
            Err(_) => {
                Err(DataFusionError::Plan("int_person_key_history needs int_person_identifier built first".into()))
            }
        }
    })
}

/// Session tables the identifier build leaves for the history build.
const NEW_TABLE: &str = "identity__new_person_identifier";
const HISTORY_TABLE: &str = "identity__new_person_key_history";

/// Identifiers whose key moved since the previous run, one row per (old, new) pair, dated by the
/// latest sighting in the new person (deterministic: reruns on the same data are identical),
/// appended to the previous history.
const HISTORY_SQL: &str = "
with cur as (
    select person_key, identifier_type, identifier_value,
           max(last_seen_at) over (partition by person_key) as person_last_seen_at
    from identity__new_person_identifier
),
moved as (
    select p.person_key as old_person_key, c.person_key as new_person_key, max(c.person_last_seen_at) as changed_at
    from prev_int_person_identifier p
    join cur c on p.identifier_type = c.identifier_type and p.identifier_value = c.identifier_value
    where p.person_key <> c.person_key
    group by p.person_key, c.person_key
),
history as (
    select old_person_key, new_person_key, changed_at from prev_int_person_key_history
    union
    select old_person_key, new_person_key, changed_at from moved
)
select old_person_key, new_person_key, changed_at from history
order by changed_at, old_person_key, new_person_key
";

/// Every source record's identifiers, with the type of its platform id (`profile_type`); the
/// Klaviyo external id counts as a Shopify customer id when it is numeric (what the Shopify
/// integration writes). An Attentive subscriber has no record of its own: each of its events
/// pairs its id with the phone, email and client user id it carries, and all of them are one
/// record per subscriber and identifier set, seen from its first to its last event.
const RECORDS_SQL: &str = "
select cast(customer_id as varchar) as customer_id, email_sha256, phone_sha256,
       cast(null as varchar) as profile_id, cast(null as varchar) as profile_type,
       coalesce(created_at, updated_at) as first_seen_at, updated_at as last_seen_at
from stg_shopify__customers
union all
select cast(customer_id as varchar), email_sha256, phone_sha256, cast(null as varchar), cast(null as varchar),
       created_at, updated_at
from stg_shopify__orders
union all
select case when regexp_like(trim(external_id), '^[0-9]+$') then trim(external_id) end,
       email_sha256, phone_sha256, profile_id, 'klaviyo_profile_id', coalesce(created_at, updated_at), updated_at
from stg_klaviyo__profiles
union all
select shopify_customer_id, email_sha256, phone_sha256, subscriber_id, 'attentive_subscriber_id',
       min(occurred_at), max(occurred_at)
from stg_attentive__events
where subscriber_id is not null
group by shopify_customer_id, email_sha256, phone_sha256, subscriber_id
union all
select shopify_customer_id, email_sha256, phone_sha256, subscriber_id, 'postscript_subscriber_id',
       coalesce(created_at, updated_at), updated_at
from stg_postscript__subscribers
union all
select shopify_customer_id, email_sha256, phone_sha256, subscriber_id, 'postscript_subscriber_id',
       coalesce(created_at, _updated_at), _updated_at
from stg_postscript__warehouse_subscribers
union all
select shopify_customer_id, email_sha256, phone_sha256, subscriber_id, 'postscript_subscriber_id',
       occurred_at as first_seen_at, occurred_at as last_seen_at
from stg_postscript__webhook_events
where subscriber_id is not null
";

/// Plain emails and phones, normalized as staging normalizes them before hashing.
const EMAILS_SQL: &str = "
select lower(trim(email)) from raw_shopify__customers where email is not null
union select lower(trim(email)) from raw_shopify__orders where email is not null
union select lower(trim(email)) from raw_klaviyo__profiles where email is not null
union select lower(trim(email)) from raw_attentive__general_events where email is not null
union select lower(trim(email)) from raw_attentive__webhook_events where email is not null
union select lower(trim(email)) from raw_postscript__subscribers where email is not null
union select lower(trim(email)) from raw_postscript__warehouse_subscribers where email is not null
union select lower(trim(email)) from raw_postscript__webhook_events where email is not null
";
const PHONES_SQL: &str = "
select trim(phone) from raw_shopify__customers where phone is not null
union select trim(phone) from raw_shopify__orders where phone is not null
union select trim(phone_number) from raw_klaviyo__profiles where phone_number is not null
union select trim(phone) from raw_attentive__general_events where phone is not null
union select trim(phone) from raw_attentive__webhook_events where phone is not null
union select trim(phone_number) from raw_postscript__subscribers where phone_number is not null
union select trim(phone_number) from raw_postscript__warehouse_subscribers where phone_number is not null
union select trim(phone) from raw_postscript__webhook_events where phone is not null
";

async fn person_identifier(ctx: &SessionContext) -> Result<DataFrame> {
    let shop = query(ctx, "select cast(max(shop_id) as varchar) from stg_shopify__shop").await?;
    let shop = match shop.first() {
        Some(b) if b.num_rows() > 0 => strings(b, 0)?.iter().next().flatten().unwrap_or_default().to_string(),
        _ => String::new(),
    };

    let mut records = Vec::new();
    for b in query(ctx, RECORDS_SQL).await? {
        let (cid, email, phone, profile) = (strings(&b, 0)?, strings(&b, 1)?, strings(&b, 2)?, strings(&b, 3)?);
        let profile_type = strings(&b, 4)?;
        let (first, last) = (micros(&b, 5)?, micros(&b, 6)?);
        for row in 0..b.num_rows() {
            let mut ids = Vec::new();
            let mut push = |kind: &str, a: &StringArray, value: fn(&str, &str) -> String| {
                if a.is_valid(row) && !a.value(row).is_empty() {
                    ids.push(Ident::new(kind, value(&shop, a.value(row))));
                }
            };
            push(SHOPIFY_CUSTOMER_ID, &cid, |shop, id| format!("{shop}:{id}"));
            push(EMAIL_SHA256, &email, |_, v| v.to_string());
            push(PHONE_SHA256, &phone, |_, v| v.to_string());
            if profile.is_valid(row) && !profile.value(row).is_empty() && profile_type.is_valid(row) {
                let kind = profile_type.value(row);
                debug_assert!([KLAVIYO_PROFILE_ID, ATTENTIVE_SUBSCRIBER_ID, POSTSCRIPT_SUBSCRIBER_ID].contains(&kind));
                ids.push(Ident::new(kind, profile.value(row)));
            }
            if ids.is_empty() {
                continue; // a guest order with nothing to resolve by: no person
            }
            let last_seen = if last.is_valid(row) { last.value(row) } else { i64::MIN };
            let first_seen = if first.is_valid(row) { first.value(row) } else { last_seen };
            records.push(Record { ids, first_seen, last_seen });
        }
    }

    let mut blocklist = BTreeSet::new();
    for (sql, kind, rule) in [
        (EMAILS_SQL, EMAIL_SHA256, is_role_email as fn(&str) -> bool),
        (PHONES_SQL, PHONE_SHA256, is_placeholder_phone as fn(&str) -> bool),
    ] {
        for b in query(ctx, sql).await? {
            for v in strings(&b, 0)?.iter().flatten().filter(|v| !v.is_empty() && rule(v)) {
                blocklist.insert(Ident::new(kind, sha256_hex(v)));
            }
        }
    }

    let mut prior = Vec::new();
    let prev_sql = "select person_key, identifier_type, identifier_value, first_seen_at, last_seen_at, is_blocked \
                    from prev_int_person_identifier";
    for b in query(ctx, prev_sql).await? {
        let (key, kind, value) = (strings(&b, 0)?, strings(&b, 1)?, strings(&b, 2)?);
        let (first, last) = (micros(&b, 3)?, micros(&b, 4)?);
        let blocked = b.column(5).as_boolean();
        for row in 0..b.num_rows() {
            // Customer ids keyed before the shop stream landed (':<id>') are superseded by '<shop>:<id>'.
            if !shop.is_empty() && kind.value(row) == SHOPIFY_CUSTOMER_ID && value.value(row).starts_with(':') {
                continue;
            }
            prior.push(Prior {
                ident: Ident::new(kind.value(row), value.value(row)),
                person_key: key.value(row).to_string(),
                first_seen: first.value(row),
                last_seen: last.value(row),
                blocked: blocked.value(row),
            });
        }
    }

    // The history compares with the previous run's keys now: publishing this model deletes the
    // previous version's files, so `prev_int_person_identifier` is empty once it is built.
    let batches = frame(ctx, &resolve(&records, &blocklist, &prior))?.collect().await?;
    let schema = batches.first().map(|b| b.schema()).unwrap_or_else(|| Arc::new(output_schema()));
    ctx.register_table(NEW_TABLE, Arc::new(MemTable::try_new(schema.clone(), vec![batches.clone()])?))?;
    let history = ctx.sql(HISTORY_SQL).await?;
    let history_schema = Arc::new(history.schema().as_arrow().clone());
    let history = history.collect().await?;
    ctx.register_table(HISTORY_TABLE, Arc::new(MemTable::try_new(history_schema, vec![history])?))?;
    ctx.read_batches(batches)
}

/// The schema of `int_person_identifier` as built here.
fn output_schema() -> Schema {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Schema::new(vec![
        Field::new("person_key", DataType::Utf8, true),
        Field::new("identifier_type", DataType::Utf8, false),
        Field::new("identifier_value", DataType::Utf8, false),
        Field::new("first_seen_at", ts.clone(), false),
        Field::new("last_seen_at", ts, false),
        Field::new("is_blocked", DataType::Boolean, false),
    ])
}

fn frame(ctx: &SessionContext, rows: &[Resolved]) -> Result<DataFrame> {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("anchor", DataType::Utf8, false),
        Field::new("identifier_type", DataType::Utf8, false),
        Field::new("identifier_value", DataType::Utf8, false),
        Field::new("first_seen_at", ts.clone(), false),
        Field::new("last_seen_at", ts, false),
        Field::new("is_blocked", DataType::Boolean, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| Some(format!("{}|{}", r.anchor.kind, r.anchor.value))).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(r.ident.kind.as_str())).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| Some(r.ident.value.as_str())).collect::<StringArray>()),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.first_seen)).with_timezone("UTC")),
        Arc::new(TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.last_seen)).with_timezone("UTC")),
        Arc::new(rows.iter().map(|r| Some(r.blocked)).collect::<BooleanArray>()),
    ];
    let batch = RecordBatch::try_new(schema, columns)?;
    ctx.read_batch(batch)?.select(vec![
        cast(datafusion::functions::expr_fn::md5(col("anchor")), DataType::Utf8).alias("person_key"),
        col("identifier_type"),
        col("identifier_value"),
        col("first_seen_at"),
        col("last_seen_at"),
        col("is_blocked"),
    ])
}

async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}

fn strings(b: &RecordBatch, i: usize) -> Result<StringArray> {
    let a = arrow::compute::cast(b.column(i), &DataType::Utf8)?;
    Ok(a.as_string::<i32>().clone())
}

fn micros(b: &RecordBatch, i: usize) -> Result<TimestampMicrosecondArray> {
    let a = arrow::compute::cast(b.column(i), &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))?;
    a.as_primitive_opt::<TimestampMicrosecondType>()
        .cloned()
        .ok_or_else(|| DataFusionError::Internal(format!("column {i} is not a timestamp")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, v: &str) -> Ident {
        Ident::new(kind, v)
    }

    fn rec(ids: Vec<Ident>, first: i64) -> Record {
        Record { ids, first_seen: first, last_seen: first + 1 }
    }

    fn key_of<'a>(rows: &'a [Resolved], i: &Ident) -> &'a Ident {
        &rows.iter().find(|r| &r.ident == i).unwrap().anchor
    }

    #[test]
    fn union_find_joins_components() {
        let mut uf = UnionFind::new(5);
        uf.union(0, 1);
        uf.union(3, 4);
        uf.union(1, 4);
        assert_eq!(uf.find(0), uf.find(3));
        assert_ne!(uf.find(2), uf.find(0));
    }

    #[test]
    fn shared_email_merges_and_the_oldest_identifier_anchors() {
        let (c, e, p) = (id(SHOPIFY_CUSTOMER_ID, "1:7"), id(EMAIL_SHA256, "e"), id(KLAVIYO_PROFILE_ID, "P"));
        let rows =
            resolve(&[rec(vec![c.clone(), e.clone()], 20), rec(vec![p.clone(), e.clone()], 10)], &BTreeSet::new(), &[]);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.anchor == e), "oldest, ties by type: {rows:?}");
        assert!(rows.iter().any(|r| r.ident == p));
        assert!(rows.windows(2).all(|w| w[0].ident < w[1].ident), "sorted");
        assert_eq!(rows.iter().find(|r| r.ident == e).unwrap().first_seen, 10);
        assert_eq!(rows.iter().find(|r| r.ident == e).unwrap().last_seen, 21);
    }

    #[test]
    fn identifier_on_too_many_customers_is_blocked() {
        let shared = id(EMAIL_SHA256, "shared");
        let mut records: Vec<Record> =
            (0..21).map(|n| rec(vec![id(SHOPIFY_CUSTOMER_ID, &format!("1:{n}")), shared.clone()], n)).collect();
        let rows = resolve(&records, &BTreeSet::new(), &[]);
        let anchors: BTreeSet<&Ident> = rows.iter().map(|r| &r.anchor).collect();
        assert_eq!(anchors.len(), 22, "nothing merges");
        assert!(rows.iter().find(|r| r.ident == shared).unwrap().blocked);
        records.pop();
        let rows = resolve(&records, &BTreeSet::new(), &[]);
        assert!(rows.iter().all(|r| !r.blocked && r.anchor == shared), "20 still merge");
    }

    #[test]
    fn blocklisted_identifier_merges_nothing_but_the_rest_of_the_record_does() {
        let (c, role, ph) = (id(SHOPIFY_CUSTOMER_ID, "1:1"), id(EMAIL_SHA256, "role"), id(PHONE_SHA256, "p"));
        let c2 = id(SHOPIFY_CUSTOMER_ID, "1:2");
        let records = [rec(vec![c.clone(), role.clone(), ph.clone()], 1), rec(vec![c2.clone(), role.clone()], 0)];
        let rows = resolve(&records, &BTreeSet::from([role.clone()]), &[]);
        assert_eq!(key_of(&rows, &c), &ph);
        assert_eq!(key_of(&rows, &role), &role);
        assert_eq!(key_of(&rows, &c2), &c2);
    }

    #[test]
    fn prior_keeps_first_seen_and_vanished_identifiers() {
        let (c, old_email, new_email) =
            (id(SHOPIFY_CUSTOMER_ID, "1:1"), id(EMAIL_SHA256, "old"), id(EMAIL_SHA256, "new"));
        let prior = [
            Prior { ident: c.clone(), person_key: "k".into(), first_seen: 5, last_seen: 6, blocked: false },
            Prior { ident: old_email.clone(), person_key: "k".into(), first_seen: 5, last_seen: 6, blocked: false },
        ];
        let rows = resolve(&[rec(vec![c.clone(), new_email.clone()], 50)], &BTreeSet::new(), &prior);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.anchor == old_email), "the vanished email stays: {rows:?}");
        assert_eq!(rows.iter().find(|r| r.ident == c).unwrap().first_seen, 5);
    }

    #[test]
    fn role_emails_and_placeholder_phones() {
        assert!(is_role_email("noreply@shop.com"));
        assert!(is_role_email("info+x@shop.com"));
        assert!(is_role_email("@shop.com"));
        assert!(!is_role_email("ann@example.com"), "documentation domains are real enough in simulations");
        assert!(!is_role_email("ann@gmail.com"));
        assert!(is_placeholder_phone("+10000000000"));
        assert!(is_placeholder_phone("+1 555 555 5555"));
        assert!(is_placeholder_phone("1234567890"));
        assert!(is_placeholder_phone("+1234"));
        assert!(!is_placeholder_phone("+12125550123"));
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
