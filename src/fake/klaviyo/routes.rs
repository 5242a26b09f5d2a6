//! The gate every request passes (auth, revision, rate limit) and one handler per endpoint.
//!
//! Handlers parse and validate everything before touching the store, so a bad request costs
//! nothing; store reads run on the blocking pool because day files are read synchronously.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Extension, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::filter::{self, Condition, Op, Window};
use super::graph::FlowGraph;
use super::paging::{self, DayCache, Key, KeyVal, Paged, Position, Snapshot};
use super::render::{self, ApiError, Doc, Source};
use super::reports::Quota;
use super::{KlaviyoFakeConfig, REVISIONS};
use super::{reports, resources};
use crate::fake::clock::FakeClock;
use crate::fake::cursor::{self, CursorError};
use crate::fake::rate_limit::{Limit, RateLimiter};
use crate::simulate::model::{SimCampaign, SimEvent, SimFlow, SimMetric, SimProfile, SimShop};
use crate::simulate::store::{Entity, SimStore};

/// Day files kept parsed per entity: more than the windows a client reads at once (16 in the
/// events benchmark), or every page of a day would re-read and re-parse its file.
const DAY_CACHE: usize = 96;

/// Everything the handlers share.
pub struct App {
    pub(super) store: SimStore,
    pub(super) shop: SimShop,
    pub(super) cfg: KlaviyoFakeConfig,
    pub(super) base: String,
    pub(super) clock: FakeClock,
    pub(super) limiter: RateLimiter,
    pub(super) events: DayCache<SimEvent>,
    pub(super) profile_days: DayCache<SimProfile>,
    pub(super) profiles_sorted: Snapshot<SimProfile>,
    pub(super) profiles_by_id: Snapshot<SimProfile>,
    pub(super) metrics: Snapshot<SimMetric>,
    pub(super) flows: Snapshot<SimFlow>,
    pub(super) graphs: Snapshot<FlowGraph>,
    pub(super) campaigns: Snapshot<SimCampaign>,
    pub(super) group_counts: Mutex<Option<Arc<HashMap<String, u64>>>>,
    pub(super) report_quota: Mutex<Quota>,
}

impl App {
    pub fn new(
        store: SimStore,
        shop: SimShop,
        cfg: KlaviyoFakeConfig,
        base: String,
        clock: FakeClock,
        limiter: RateLimiter,
    ) -> Self {
        Self {
            store,
            shop,
            cfg,
            base,
            clock,
            limiter,
            events: DayCache::new(Entity::Events, DAY_CACHE, event_key),
            profile_days: DayCache::new(Entity::Profiles, DAY_CACHE, |p| profile_key("updated", p)),
            profiles_sorted: Snapshot::default(),
            profiles_by_id: Snapshot::default(),
            metrics: Snapshot::default(),
            flows: Snapshot::default(),
            graphs: Snapshot::default(),
            campaigns: Snapshot::default(),
            group_counts: Mutex::new(None),
            report_quota: Mutex::new(Quota::default()),
        }
    }

    pub(super) fn metrics(&self) -> io::Result<Arc<Vec<SimMetric>>> {
        let sig = paging::modified_signature(&self.store.root().join("metrics.jsonl"));
        self.metrics.get("id", sig, || {
            let mut all: Vec<SimMetric> = self.store.read_all(Entity::Metrics)?;
            all.sort_by(|a, b| a.metric_id.cmp(&b.metric_id));
            Ok(all)
        })
    }

    /// All profiles sorted by `sort`: only for sorts the day partitioning cannot serve.
    pub(super) fn profiles_sorted(&self, sort: &str) -> io::Result<Arc<Vec<SimProfile>>> {
        let sig = paging::modified_signature(&self.store.root().join(Entity::Profiles.name()));
        let field = sort.trim_start_matches('-');
        let load = || {
            let mut all: Vec<SimProfile> = self.store.read_all(Entity::Profiles)?;
            all.sort_by_cached_key(|p| profile_key(field, p));
            Ok(all)
        };
        if field == "id" {
            self.profiles_by_id.get(field, sig, load)
        } else {
            self.profiles_sorted.get(field, sig, load)
        }
    }
}

/// The API version a request asked for, for handlers whose behaviour depends on it.
#[derive(Debug, Clone)]
pub struct Revision(pub String);

pub fn router(app: Arc<App>) -> Router {
    let mut r = Router::new();
    for (path, handler) in [
        ("/api/accounts", get(accounts)),
        ("/api/metrics", get(metrics)),
        ("/api/profiles", get(profiles)),
        ("/api/events", get(events)),
        ("/api/flows", get(flows)),
        ("/api/flows/{id}", get(resources::flow_by_id)),
        ("/api/flows/{id}/flow-actions", get(resources::flow_actions)),
        ("/api/flow-actions/{id}", get(resources::flow_action_by_id)),
        ("/api/flow-actions/{id}/flow-messages", get(resources::flow_action_messages)),
        ("/api/flow-messages/{id}", get(resources::flow_message_by_id)),
        ("/api/campaigns", get(resources::campaigns)),
        ("/api/campaigns/{id}", get(resources::campaign_by_id)),
        ("/api/campaigns/{id}/campaign-messages", get(resources::campaign_messages)),
        ("/api/campaign-messages/{id}", get(resources::campaign_message_by_id)),
        ("/api/lists", get(resources::lists)),
        ("/api/segments", get(resources::segments)),
        ("/api/flow-series-reports", post(reports::flow_series)),
        ("/api/flow-values-reports", post(reports::flow_values)),
        ("/api/campaign-values-reports", post(reports::campaign_values)),
    ] {
        // Klaviyo serves both spellings and the official SDKs send the trailing slash.
        r = r.route(path, handler.clone()).route(&format!("{path}/"), handler);
    }
    r.fallback(not_found).layer(middleware::from_fn_with_state(app.clone(), gate)).with_state(app)
}

async fn not_found(uri: Uri) -> Response {
    ApiError::not_found(format!("{} is not served by this fake.", uri.path())).into_response()
}

/// The limit bucket of a path: each endpoint family is charged separately.
fn bucket(app: &App, path: &str) -> Option<(&'static str, Limit)> {
    let limits = app.cfg.limits.unwrap_or_default();
    let path = path.trim_end_matches('/');
    let family = path.strip_prefix("/api/")?.split('/').next()?;
    match family {
        "accounts" => Some(("accounts", limits.accounts)),
        "metrics" => Some(("metrics", limits.metrics)),
        "profiles" => Some(("profiles", limits.profiles)),
        "events" => Some(("events", limits.events)),
        "flows" | "flow-actions" | "flow-messages" => Some(("flows", limits.flows)),
        "campaigns" | "campaign-messages" => Some(("campaigns", limits.campaigns)),
        "lists" => Some(("lists", limits.lists)),
        "segments" => Some(("segments", limits.lists)),
        "flow-series-reports" => Some(("flow-series-reports", limits.reports)),
        "flow-values-reports" => Some(("flow-values-reports", limits.reports)),
        "campaign-values-reports" => Some(("campaign-values-reports", limits.reports)),
        _ => None,
    }
}

/// Auth, then revision, then rate limit: the order Klaviyo's answers imply (a bad key is a
/// 401 even when throttled would also apply).
async fn gate(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match auth {
        None => {
            return ApiError::not_authenticated("Authentication credentials were not provided.").into_response();
        }
        Some(v) if v.strip_prefix("Klaviyo-API-Key ").map(str::trim) != Some(app.cfg.api_key.as_str()) => {
            return ApiError::not_authenticated("Incorrect authentication credentials.").into_response();
        }
        Some(_) => {}
    }
    let revision = req.headers().get("revision").and_then(|v| v.to_str().ok()).map(str::to_string);
    let revision = match revision {
        None => {
            let mut e = ApiError::invalid("revision", "Missing required header 'revision'.");
            e.source = Source::Header("revision");
            return e.into_response();
        }
        Some(r) if !REVISIONS.contains(&r.trim_end_matches(".pre")) => {
            let mut e = ApiError::invalid(
                "revision",
                format!("Invalid revision '{r}'. Supported revisions: {}.", REVISIONS.join(", ")),
            );
            e.source = Source::Header("revision");
            return e.into_response();
        }
        Some(r) => r,
    };
    let mut allowance = None;
    if app.cfg.rate_limits
        && let Some((name, limit)) = bucket(&app, req.uri().path())
    {
        // The daily report quota answers first: its wait (hours) is the one that matters.
        let report = name.ends_with("-reports");
        if report && let Err(secs) = app.report_quota(false) {
            return render::vendor_error(StatusCode::TOO_MANY_REQUESTS, Some(secs));
        }
        match app.limiter.check(name, limit) {
            Ok(a) => allowance = Some(a),
            Err(secs) => return render::vendor_error(StatusCode::TOO_MANY_REQUESTS, Some(secs)),
        }
        if report && let Err(secs) = app.report_quota(true) {
            return render::vendor_error(StatusCode::TOO_MANY_REQUESTS, Some(secs));
        }
    }
    req.extensions_mut().insert(Revision(revision));
    let mut resp = next.run(req).await;
    if let Some(a) = allowance
        && resp.status() != StatusCode::TOO_MANY_REQUESTS
    {
        let h = resp.headers_mut();
        h.insert("RateLimit-Limit", HeaderValue::from(a.limit));
        h.insert("RateLimit-Remaining", HeaderValue::from(a.remaining));
        h.insert("RateLimit-Reset", HeaderValue::from(a.reset_secs));
    }
    resp
}

/// The query of one request, decoded, with what links need to reproduce it.
pub(super) struct Params {
    pub(super) path: String,
    raw_query: Option<String>,
    pub(super) pairs: Vec<(String, String)>,
}

impl Params {
    pub(super) fn new(uri: &Uri) -> Self {
        let pairs =
            uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        Self { path: uri.path().to_string(), raw_query: uri.query().map(str::to_string), pairs }
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(super) fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    pub(super) fn page_size(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        let Some(raw) = self.get("page[size]") else {
            return Ok(default);
        };
        match raw.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            Ok(n) => Err(ApiError::invalid("page[size]", format!("page[size] must be between 1 and {max}; got {n}."))),
            Err(_) => Err(ApiError::invalid("page[size]", format!("page[size] must be an integer; got '{raw}'."))),
        }
    }

    pub(super) fn cursor(&self, app: &App, ep: &str, sort: &str) -> Result<Option<Position>, ApiError> {
        let Some(token) = self.get("page[cursor]") else {
            return Ok(None);
        };
        match cursor::decode::<Position>(token, app.cfg.cursor_ttl) {
            Ok(p) if p.ep == ep && p.sort == sort => Ok(Some(p)),
            Ok(_) | Err(CursorError::Invalid) => {
                Err(ApiError::invalid("page[cursor]", "Invalid page cursor; request the first page again."))
            }
            Err(CursorError::Stale) => {
                Err(ApiError::invalid("page[cursor]", "The page cursor has expired; request the first page again."))
            }
        }
    }

    pub(super) fn fields(&self) -> HashMap<String, Vec<String>> {
        self.pairs
            .iter()
            .filter_map(|(k, v)| {
                let ty = k.strip_prefix("fields[")?.strip_suffix(']')?;
                Some((ty.to_string(), v.split(',').map(|s| s.trim().to_string()).collect()))
            })
            .collect()
    }

    pub(super) fn self_link(&self, base: &str) -> String {
        match &self.raw_query {
            Some(q) => format!("{base}{}?{q}", self.path),
            None => format!("{base}{}", self.path),
        }
    }

    /// The same request with another cursor: filter, sort and size carry over.
    pub(super) fn link_with_cursor(&self, base: &str, token: &str) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs.iter().filter(|(k, _)| k != "page[cursor]") {
            ser.append_pair(k, v);
        }
        ser.append_pair("page[cursor]", token);
        format!("{base}{}?{}", self.path, ser.finish())
    }

    pub(super) fn conditions(&self) -> Result<Vec<Condition>, ApiError> {
        match self.get("filter") {
            Some(f) => filter::parse(f).map_err(ApiError::filter),
            None => Ok(Vec::new()),
        }
    }
}

/// The `links` object of a page, minting cursors for its neighbours.
pub(super) fn page_links(
    app: &App,
    params: &Params,
    ep: &str,
    sort: &str,
    next: Option<Key>,
    prev: Option<Key>,
) -> Value {
    let link = |key: Option<Key>, before: bool| {
        key.map(|key| {
            let token = cursor::encode(&Position { ep: ep.to_string(), sort: sort.to_string(), before, key });
            params.link_with_cursor(&app.base, &token)
        })
    };
    json!({"self": params.self_link(&app.base), "next": link(next, false), "prev": link(prev, true)})
}

pub(super) fn unsupported(c: &Condition) -> ApiError {
    ApiError::filter(format!("'{}' operator for field '{}' is not supported.", c.op_name, c.field))
}

pub(super) fn io_err(e: io::Error) -> ApiError {
    ApiError::internal(format!("store read failed: {e}"))
}

/// A datetime bound from a filter value; quoted datetimes are the classic client bug.
pub(super) fn dt(c: &Condition) -> Result<DateTime<Utc>, ApiError> {
    filter::datetime(&c.value).map_err(ApiError::filter)
}

pub(super) fn string_set(c: &Condition) -> Result<Vec<String>, ApiError> {
    match (&c.op, &c.value) {
        (Op::Equals, v) => Ok(vec![filter::string(v).map_err(ApiError::filter)?]),
        (Op::Any, filter::Value::List(items)) => {
            items.iter().map(|v| filter::string(v).map_err(ApiError::filter)).collect()
        }
        _ => Err(unsupported(c)),
    }
}

/// Runs a store-reading endpoint on the blocking pool.
pub(super) async fn blocking(f: impl FnOnce() -> Result<Response, ApiError> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

pub(super) fn check_includes(params: &Params, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let includes = params.list("include");
    if let Some(bad) = includes.iter().find(|i| !allowed.contains(&i.as_str())) {
        return Err(ApiError::invalid("include", format!("'{bad}' is not a valid include.")));
    }
    Ok(includes)
}

async fn accounts(State(app): State<Arc<App>>, uri: Uri) -> Response {
    let params = Params::new(&uri);
    let mut doc = Doc::new(params.fields());
    doc.push(render::account(&app.base, &app.shop));
    doc.into_response(json!({"self": params.self_link(&app.base), "next": null, "prev": null}), false)
}

async fn metrics(State(app): State<Arc<App>>, uri: Uri) -> Response {
    blocking(move || metrics_page(&app, &Params::new(&uri))).await
}

/// Metrics have no `page[size]`: Klaviyo pages them 200 at a time.
fn metrics_page(app: &App, params: &Params) -> Result<Response, ApiError> {
    let mut names = None;
    let mut categories = None;
    for c in params.conditions()? {
        match (c.field.as_str(), c.op) {
            ("integration.name", Op::Equals) => names = Some(string_set(&c)?),
            ("integration.category", Op::Equals) => categories = Some(string_set(&c)?),
            _ => return Err(unsupported(&c)),
        }
    }
    let cursor = params.cursor(app, "metrics", "id")?;
    let all = app.metrics().map_err(io_err)?;
    let key = |m: &SimMetric| (KeyVal::Str(m.metric_id.clone()), m.metric_id.clone());
    let keep = |m: &SimMetric| {
        let name = m.integration.as_deref();
        names.as_ref().is_none_or(|n| name.is_some_and(|x| n.iter().any(|y| y == x)))
            && categories
                .as_ref()
                .is_none_or(|cs| name.is_some_and(|x| cs.iter().any(|y| y == render::integration_category(x))))
    };
    let page = paging::paginate(false, cursor.as_ref(), 200, key, |asc, start, limit| {
        paging::scan([Ok(all.clone())], asc, start, limit, key, keep)
    })
    .map_err(io_err)?;
    let mut doc = Doc::new(params.fields());
    for m in &page.items {
        doc.push(render::metric(&app.base, m));
    }
    Ok(doc.into_response(page_links(app, params, "metrics", "id", page.next, page.prev), false))
}

fn profile_key(field: &str, p: &SimProfile) -> Key {
    let v = match field {
        "created" => KeyVal::Int(p.created_at.timestamp_micros()),
        "updated" => KeyVal::Int(p.updated_at.timestamp_micros()),
        "email" => KeyVal::Str(p.email.clone().unwrap_or_default()),
        _ => KeyVal::Str(p.profile_id.clone()),
    };
    (v, p.profile_id.clone())
}

async fn profiles(State(app): State<Arc<App>>, uri: Uri) -> Response {
    blocking(move || profiles_page(&app, &Params::new(&uri))).await
}

fn profiles_page(app: &App, params: &Params) -> Result<Response, ApiError> {
    let size = params.page_size(20, 100)?;
    let sort = params.get("sort").unwrap_or("id").to_string();
    let field = sort.trim_start_matches('-').to_string();
    if !matches!(field.as_str(), "created" | "updated" | "id" | "email") {
        return Err(ApiError::invalid("sort", format!("'{sort}' is not a valid sort for profiles.")));
    }
    let mut with_subscriptions = false;
    for f in params.list("additional-fields[profile]") {
        match f.as_str() {
            "subscriptions" => with_subscriptions = true,
            // Real, but its lower rate limit and model are the next round's work; refusing
            // beats silently serving a profile without the fields the client asked for.
            "predictive_analytics" => {
                return Err(ApiError::invalid(
                    "additional-fields[profile]",
                    "predictive_analytics is not served by this fake yet.",
                ));
            }
            _ => {
                return Err(ApiError::invalid("additional-fields[profile]", format!("'{f}' is not a valid field.")));
            }
        }
    }
    let mut updated = Window::default();
    let mut created = Window::default();
    let mut id_sets: Vec<(String, Vec<String>)> = Vec::new();
    for c in params.conditions()? {
        match (c.field.as_str(), c.op) {
            // Klaviyo allows only these two operators on profile timestamps (apis.md 1.8).
            ("updated", Op::GreaterThan | Op::LessThan) => updated.add(c.op, dt(&c)?),
            ("created", Op::GreaterThan | Op::LessThan) => created.add(c.op, dt(&c)?),
            ("id" | "email" | "phone_number" | "external_id", Op::Equals | Op::Any) => {
                id_sets.push((c.field.clone(), string_set(&c)?))
            }
            _ => return Err(unsupported(&c)),
        }
    }
    let cursor = params.cursor(app, "profiles", &sort)?;
    let descending = sort.starts_with('-');
    let key = |p: &SimProfile| profile_key(&field, p);
    let keep = |p: &SimProfile| {
        updated.contains(p.updated_at)
            && created.contains(p.created_at)
            && id_sets.iter().all(|(f, set)| {
                let v = match f.as_str() {
                    "id" => Some(&p.profile_id),
                    "email" => p.email.as_ref(),
                    "phone_number" => p.phone.as_ref(),
                    _ => p.external_id.as_ref(),
                };
                v.is_some_and(|v| set.contains(v))
            })
    };
    let page: Paged<SimProfile> = if field == "updated" {
        // Profiles are partitioned by `updated`, so an incremental pull reads only its days.
        let days = days_in(&app.store, Entity::Profiles, &updated, None).map_err(io_err)?;
        paging::paginate(descending, cursor.as_ref(), size, key, |asc, start, limit| {
            let days = ordered_days(&days, asc, start);
            paging::scan(days.iter().map(|d| app.profile_days.day(&app.store, *d)), asc, start, limit, key, keep)
        })
    } else {
        let all = app.profiles_sorted(&field).map_err(io_err)?;
        paging::paginate(descending, cursor.as_ref(), size, key, |asc, start, limit| {
            paging::scan([Ok(all.clone())], asc, start, limit, key, keep)
        })
    }
    .map_err(io_err)?;
    let mut doc = Doc::new(params.fields());
    for p in &page.items {
        doc.push(render::profile(&app.base, p, with_subscriptions));
    }
    Ok(doc.into_response(page_links(app, params, "profiles", &sort, page.next, page.prev), false))
}

/// The days of a daily entity that can hold records inside `window` (and before `horizon`).
pub(super) fn days_in(
    store: &SimStore,
    entity: Entity,
    window: &Window,
    horizon: Option<DateTime<Utc>>,
) -> io::Result<Vec<NaiveDate>> {
    let lo = window.lower.map(|(t, _)| t.date_naive());
    let hi = [window.upper.map(|(t, _)| t.date_naive()), horizon.map(|t| t.date_naive())].into_iter().flatten().min();
    Ok(store
        .days(entity)?
        .into_iter()
        .filter(|d| lo.is_none_or(|lo| *d >= lo) && hi.is_none_or(|hi| *d <= hi))
        .collect())
}

/// Days in scan order, skipping those wholly before (or after) the cursor's record.
fn ordered_days(days: &[NaiveDate], ascending: bool, start: Option<&Key>) -> Vec<NaiveDate> {
    let start_day = start.and_then(|(v, _)| match v {
        KeyVal::Int(micros) => DateTime::from_timestamp_micros(*micros).map(|t| t.date_naive()),
        KeyVal::Str(_) => None,
    });
    let mut out: Vec<NaiveDate> =
        days.iter().copied().filter(|d| start_day.is_none_or(|s| if ascending { *d >= s } else { *d <= s })).collect();
    if !ascending {
        out.reverse();
    }
    out
}

fn event_key(e: &SimEvent) -> Key {
    (KeyVal::Int(e.datetime.timestamp_micros()), e.event_id.clone())
}

async fn events(State(app): State<Arc<App>>, Extension(rev): Extension<Revision>, uri: Uri) -> Response {
    blocking(move || events_page(&app, &Params::new(&uri), &rev)).await
}

/// The first revision with `page[size]` on events (apis.md 1.4).
const EVENTS_PAGE_SIZE_SINCE: &str = "2026-01-15";

fn events_page(app: &App, params: &Params, rev: &Revision) -> Result<Response, ApiError> {
    // Revisions are ISO dates, so string order is date order.
    let size = if rev.0.as_str() >= EVENTS_PAGE_SIZE_SINCE {
        params.page_size(200, 1000)?
    } else if params.get("page[size]").is_some() {
        return Err(ApiError::invalid(
            "page[size]",
            format!("page[size] is not supported for events before revision {EVENTS_PAGE_SIZE_SINCE}."),
        ));
    } else {
        200
    };
    let sort = params.get("sort").unwrap_or("datetime");
    let descending = match sort {
        "datetime" | "timestamp" => false,
        "-datetime" | "-timestamp" => true,
        _ => {
            return Err(ApiError::invalid("sort", format!("'{sort}' is not a valid sort for events.")));
        }
    };
    let sort = if descending { "-datetime" } else { "datetime" };
    let includes = check_includes(params, &["metric", "profile", "attributions"])?;
    let mut window = Window::default();
    let mut metric_id = None;
    let mut profile_id = None;
    for c in params.conditions()? {
        match (c.field.as_str(), c.op) {
            ("datetime", Op::GreaterThan | Op::GreaterOrEqual | Op::LessThan | Op::LessOrEqual) => {
                window.add(c.op, dt(&c)?)
            }
            ("timestamp", Op::GreaterThan | Op::GreaterOrEqual | Op::LessThan | Op::LessOrEqual) => {
                let secs = match &c.value {
                    filter::Value::Bare(t) => t.parse::<i64>().ok(),
                    _ => None,
                };
                let at = secs
                    .and_then(|s| DateTime::from_timestamp(s, 0))
                    .ok_or_else(|| ApiError::filter("timestamp values must be unquoted epoch seconds."))?;
                window.add(c.op, at)
            }
            ("metric_id", Op::Equals) => metric_id = Some(filter::string(&c.value).map_err(ApiError::filter)?),
            ("profile_id", Op::Equals) => profile_id = Some(filter::string(&c.value).map_err(ApiError::filter)?),
            _ => return Err(unsupported(&c)),
        }
    }
    let cursor = params.cursor(app, "events", sort)?;
    let horizon = app.clock.horizon();
    let days = days_in(&app.store, Entity::Events, &window, horizon).map_err(io_err)?;
    let keep = |e: &SimEvent| {
        window.contains(e.datetime)
            && horizon.is_none_or(|h| e.datetime <= h)
            && metric_id.as_ref().is_none_or(|m| *m == e.metric_id)
            && profile_id.as_ref().is_none_or(|p| *p == e.profile_id)
    };
    let page = paging::paginate(descending, cursor.as_ref(), size, event_key, |asc, start, limit| {
        let days = ordered_days(&days, asc, start);
        paging::scan(days.iter().map(|d| app.events.day(&app.store, *d)), asc, start, limit, event_key, keep)
    })
    .map_err(io_err)?;

    let metrics = app.metrics().map_err(io_err)?;
    let metric_by_id: HashMap<&str, &SimMetric> = metrics.iter().map(|m| (m.metric_id.as_str(), m)).collect();
    let with = |name: &str| includes.iter().any(|i| i == name);
    let profiles = if with("profile") { Some(app.profiles_sorted("id").map_err(io_err)?) } else { None };
    let mut doc = Doc::new(params.fields());
    for e in &page.items {
        let metric = metric_by_id.get(e.metric_id.as_str());
        doc.push(render::event(
            &app.base,
            e,
            metric.map(|m| m.name.as_str()),
            &app.shop.currency,
            with("attributions"),
        ));
        if with("metric")
            && let Some(m) = metric
        {
            doc.include(render::metric(&app.base, m));
        }
        if let Some(all) = &profiles
            && let Ok(i) = all.binary_search_by(|p| p.profile_id.as_str().cmp(e.profile_id.as_str()))
        {
            doc.include(render::profile(&app.base, &all[i], false));
        }
        if with("attributions")
            && let Some(a) = render::attribution(&app.base, e)
        {
            doc.include(a);
        }
    }
    Ok(doc.into_response(page_links(app, params, "events", sort, page.next, page.prev), !includes.is_empty()))
}

fn flow_key(field: &str, f: &SimFlow) -> Key {
    let v = match field {
        "created" => KeyVal::Int(f.created_at.timestamp_micros()),
        "updated" => KeyVal::Int(f.updated_at.timestamp_micros()),
        "name" => KeyVal::Str(f.name.clone()),
        "status" => KeyVal::Str(f.status.clone()),
        "trigger_type" => KeyVal::Str(f.trigger_type.clone()),
        _ => KeyVal::Str(f.flow_id.clone()),
    };
    (v, f.flow_id.clone())
}

async fn flows(State(app): State<Arc<App>>, uri: Uri) -> Response {
    blocking(move || flows_page(&app, &Params::new(&uri))).await
}

fn flows_page(app: &App, params: &Params) -> Result<Response, ApiError> {
    let size = params.page_size(50, 50)?;
    let sort = params.get("sort").unwrap_or("id").to_string();
    let field = sort.trim_start_matches('-').to_string();
    if !matches!(field.as_str(), "created" | "updated" | "id" | "name" | "status" | "trigger_type") {
        return Err(ApiError::invalid("sort", format!("'{sort}' is not a valid sort for flows.")));
    }
    let mut archived = false;
    let mut updated = Window::default();
    let mut created = Window::default();
    let mut sets: Vec<(String, Vec<String>)> = Vec::new();
    let mut name_contains = None;
    for c in params.conditions()? {
        match (c.field.as_str(), c.op) {
            ("archived", Op::Equals) => archived = filter::boolean(&c.value).map_err(ApiError::filter)?,
            ("updated", Op::GreaterThan | Op::GreaterOrEqual | Op::LessThan | Op::LessOrEqual) => {
                updated.add(c.op, dt(&c)?)
            }
            ("created", Op::GreaterThan | Op::GreaterOrEqual | Op::LessThan | Op::LessOrEqual) => {
                created.add(c.op, dt(&c)?)
            }
            ("id", Op::Any) | ("name" | "status" | "trigger_type", Op::Equals) => {
                sets.push((c.field.clone(), string_set(&c)?))
            }
            ("name", Op::Contains) => name_contains = Some(filter::string(&c.value).map_err(ApiError::filter)?),
            _ => return Err(unsupported(&c)),
        }
    }
    let cursor = params.cursor(app, "flows", &sort)?;
    let sig = paging::modified_signature(&app.store.root().join("flows.jsonl"));
    let all = app
        .flows
        .get(&field, sig, || {
            let mut all: Vec<SimFlow> = app.store.read_all(Entity::Flows)?;
            all.sort_by_cached_key(|f| flow_key(&field, f));
            Ok(all)
        })
        .map_err(io_err)?;
    let key = |f: &SimFlow| flow_key(&field, f);
    let keep = |f: &SimFlow| {
        f.archived == archived
            && updated.contains(f.updated_at)
            && created.contains(f.created_at)
            && name_contains.as_ref().is_none_or(|n| f.name.contains(n.as_str()))
            && sets.iter().all(|(field, set)| {
                let v = match field.as_str() {
                    "id" => &f.flow_id,
                    "name" => &f.name,
                    "status" => &f.status,
                    _ => &f.trigger_type,
                };
                set.contains(v)
            })
    };
    let page = paging::paginate(sort.starts_with('-'), cursor.as_ref(), size, key, |asc, start, limit| {
        paging::scan([Ok(all.clone())], asc, start, limit, key, keep)
    })
    .map_err(io_err)?;
    let mut doc = Doc::new(params.fields());
    for f in &page.items {
        doc.push(render::flow(&app.base, f));
    }
    Ok(doc.into_response(page_links(app, params, "flows", &sort, page.next, page.prev), false))
}
