//! Handlers of the flow-graph, campaign, list and segment endpoints.
//!
//! All of these resources are small (hundreds of records at most), so each request works on
//! an in-memory snapshot and pages it with the same keyset cursors as the big endpoints.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::Uri;
use axum::response::Response;
use chrono::{DateTime, Months, Utc};
use serde_json::{Value, json};

use super::filter::{self, Op, Window};
use super::graph::{self, Action, FlowGraph};
use super::groups::{self, Group, Kind};
use super::paging::{self, Key, KeyVal};
use super::render::{self, ApiError, Doc, rel_links, ts};
use super::routes::{App, Params, Revision, blocking, dt, io_err, page_links, string_set, unsupported};
use crate::simulate::model::{SimCampaign, SimFlow};
use crate::simulate::store::Entity;

/// The graphs, and the flow and action indexes of an action found in them.
type Found = (Arc<Vec<FlowGraph>>, usize, usize);

/// Campaigns sent longer ago than this are served as archived.
const ARCHIVE_AFTER_MONTHS: u32 = 18;

impl App {
    /// Every flow's action graph, rebuilt when the flows, truth or metrics change.
    pub(super) fn graphs(&self) -> io::Result<Arc<Vec<FlowGraph>>> {
        let root = self.store.root();
        let sig = ["flows.jsonl", "truth.json", "metrics.jsonl"]
            .iter()
            .map(|f| paging::modified_signature(&root.join(f)))
            .max()
            .unwrap_or_default();
        self.graphs.get("graph", sig, || {
            let flows: Vec<SimFlow> = self.store.read_all(Entity::Flows)?;
            let truth = self.store.truth()?;
            let metrics = self.metrics()?;
            let placed = metrics.iter().find(|m| m.name == "Placed Order").map(|m| m.metric_id.as_str());
            Ok(flows
                .iter()
                .map(|f| {
                    let entry =
                        truth.flows.iter().find(|t| t.flow_id == f.flow_id).map_or_else(graph::Entry::default, |t| {
                            graph::Entry {
                                holdout_pct: t.holdout_pct,
                                delay_hours: t.entry_delay_hours,
                                exit_on_order: t.exit_on_order,
                            }
                        });
                    graph::build(f, entry, placed)
                })
                .collect())
        })
    }

    /// Every campaign, deleted ones included (callers hide them), sorted by id.
    pub(super) fn campaigns(&self) -> io::Result<Arc<Vec<SimCampaign>>> {
        let path = self.store.root().join("campaigns.jsonl");
        let sig = paging::modified_signature(&path);
        self.campaigns.get("id", sig, || {
            if !path.exists() {
                return Ok(Vec::new());
            }
            let mut all: Vec<SimCampaign> = self.store.read_all(Entity::Campaigns)?;
            all.sort_by(|a, b| a.campaign_id.cmp(&b.campaign_id));
            Ok(all)
        })
    }

    /// Members per list and segment id, counted on first use and kept for the server's life.
    fn group_counts(&self) -> io::Result<Arc<HashMap<String, u64>>> {
        let mut cached = self.group_counts.lock().expect("group count lock poisoned");
        if let Some(c) = cached.as_ref() {
            return Ok(c.clone());
        }
        let profiles = self.profiles_sorted("id")?;
        let counts = Arc::new(groups::counts(&self.shop, profiles.iter(), self.clock.now()));
        *cached = Some(counts.clone());
        Ok(counts)
    }

    fn find_action(&self, id: &str) -> io::Result<Option<Found>> {
        let graphs = self.graphs()?;
        let hit =
            graphs.iter().enumerate().find_map(|(gi, g)| g.actions.iter().position(|a| a.id == id).map(|ai| (gi, ai)));
        Ok(hit.map(|(gi, ai)| (graphs.clone(), gi, ai)))
    }

    /// A campaign clients can see: not deleted, and created by the fake's now.
    fn visible(&self, c: &SimCampaign) -> bool {
        !c.deleted && self.clock.horizon().is_none_or(|h| c.created_at <= h)
    }
}

fn not_found(kind: &str, id: &str) -> ApiError {
    ApiError::not_found(format!("A {kind} with id {id} does not exist."))
}

fn single(doc: Doc, params: &Params, app: &App) -> Response {
    doc.into_single(params.self_link(&app.base))
}

fn check_additional(params: &Params, ty: &str, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let name = format!("additional-fields[{ty}]");
    let fields = params.list(&name);
    if let Some(bad) = fields.iter().find(|f| !allowed.contains(&f.as_str())) {
        let param: &'static str = match ty {
            "flow" => "additional-fields[flow]",
            "list" => "additional-fields[list]",
            _ => "additional-fields[segment]",
        };
        return Err(ApiError::invalid(param, format!("'{bad}' is not a valid field.")));
    }
    Ok(fields)
}

// ---------------------------------------------------------------- flows, actions, messages

fn trigger(app: &App, f: &SimFlow) -> Result<Value, ApiError> {
    Ok(match f.trigger_type.as_str() {
        "Added to List" => json!([{"type": "list", "id": groups::audience_list(&app.shop, "email")}]),
        "Metric" => {
            let metrics = app.metrics().map_err(io_err)?;
            let id = metrics.iter().find(|m| Some(&m.name) == f.trigger_metric.as_ref()).map(|m| m.metric_id.clone());
            json!([{"type": "metric", "id": id, "trigger_filter": null}])
        }
        "Date Based" => json!([{"type": "date", "id": null, "date_property": "birthday"}]),
        "Price Drop" => json!([{"type": "price-drop", "id": null}]),
        "Low Inventory" => json!([{"type": "low-inventory", "id": null}]),
        _ => json!([]),
    })
}

pub(super) async fn flow_by_id(State(app): State<Arc<App>>, Path(id): Path<String>, uri: Uri) -> Response {
    blocking(move || {
        let params = Params::new(&uri);
        let with_definition = !check_additional(&params, "flow", &["definition"])?.is_empty();
        let graphs = app.graphs().map_err(io_err)?;
        let g = graphs.iter().find(|g| g.flow.flow_id == id).ok_or_else(|| not_found("flow", &id))?;
        let mut r = render::flow(&app.base, &g.flow);
        if with_definition {
            r["attributes"]["definition"] = graph::flow_definition(g, &app.shop, trigger(&app, &g.flow)?);
        }
        let mut doc = Doc::new(params.fields());
        doc.push(r);
        Ok(single(doc, &params, &app))
    })
    .await
}

fn position_key(pos: usize, id: &str) -> Key {
    (KeyVal::Int(pos as i64), id.to_string())
}

pub(super) async fn flow_actions(
    State(app): State<Arc<App>>,
    Extension(rev): Extension<Revision>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    blocking(move || {
        let params = Params::new(&uri);
        let size = params.page_size(50, 50)?;
        let mut types = None;
        let mut statuses = None;
        let mut created = Window::default();
        let mut updated = Window::default();
        for c in params.conditions()? {
            match (c.field.as_str(), c.op) {
                ("action_type", Op::Equals | Op::Any) => types = Some(string_set(&c)?),
                ("status", Op::Equals | Op::Any) => statuses = Some(string_set(&c)?),
                ("created", Op::GreaterThan | Op::GreaterOrEqual | Op::LessThan | Op::LessOrEqual) => {
                    created.add(c.op, dt(&c)?)
                }
                ("updated", Op::GreaterThan | Op::GreaterOrEqual | Op::LessThan | Op::LessOrEqual) => {
                    updated.add(c.op, dt(&c)?)
                }
                _ => return Err(unsupported(&c)),
            }
        }
        let cursor = params.cursor(&app, "flow-actions", &id)?;
        let graphs = app.graphs().map_err(io_err)?;
        let g = graphs.iter().find(|g| g.flow.flow_id == id).ok_or_else(|| not_found("flow", &id))?;
        let indexed: Vec<(usize, Action)> = g.actions.iter().cloned().enumerate().collect();
        let key = |(pos, a): &(usize, Action)| position_key(*pos, &a.id);
        let keep = |(_, a): &(usize, Action)| {
            types.as_ref().is_none_or(|t| t.iter().any(|t| t == a.action_type() || t == a.type_name()))
                && statuses.as_ref().is_none_or(|s| s.contains(&a.status))
                && created.contains(a.created)
                && updated.contains(a.updated)
        };
        let all = Arc::new(indexed);
        let page = paging::paginate(false, cursor.as_ref(), size, key, |asc, start, limit| {
            paging::scan([Ok(all.clone())], asc, start, limit, key, keep)
        })
        .map_err(io_err)?;
        let mut doc = Doc::new(params.fields());
        for (_, a) in &page.items {
            doc.push(graph::action(&app.base, a, &app.shop, &rev.0));
        }
        Ok(doc.into_response(page_links(&app, &params, "flow-actions", &id, page.next, page.prev), false))
    })
    .await
}

pub(super) async fn flow_action_by_id(
    State(app): State<Arc<App>>,
    Extension(rev): Extension<Revision>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    blocking(move || {
        let params = Params::new(&uri);
        let (graphs, gi, ai) = app.find_action(&id).map_err(io_err)?.ok_or_else(|| not_found("flow action", &id))?;
        let mut doc = Doc::new(params.fields());
        doc.push(graph::action(&app.base, &graphs[gi].actions[ai], &app.shop, &rev.0));
        Ok(single(doc, &params, &app))
    })
    .await
}

pub(super) async fn flow_action_messages(
    State(app): State<Arc<App>>,
    Extension(rev): Extension<Revision>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    blocking(move || {
        let params = Params::new(&uri);
        params.page_size(50, 50)?;
        let (graphs, gi, ai) = app.find_action(&id).map_err(io_err)?.ok_or_else(|| not_found("flow action", &id))?;
        let a = &graphs[gi].actions[ai];
        let mut doc = Doc::new(params.fields());
        if let Some(m) = a.message() {
            doc.push(graph::message(&app.base, a, m, &app.shop, &rev.0));
        }
        Ok(doc.into_response(json!({"self": params.self_link(&app.base), "next": null, "prev": null}), false))
    })
    .await
}

pub(super) async fn flow_message_by_id(
    State(app): State<Arc<App>>,
    Extension(rev): Extension<Revision>,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    blocking(move || {
        let params = Params::new(&uri);
        let graphs = app.graphs().map_err(io_err)?;
        let found = graphs
            .iter()
            .flat_map(|g| g.actions.iter())
            .find_map(|a| a.message().filter(|m| m.message_id == id).map(|m| (a, m)));
        let (a, m) = found.ok_or_else(|| not_found("flow message", &id))?;
        let mut doc = Doc::new(params.fields());
        doc.push(graph::message(&app.base, a, m, &app.shop, &rev.0));
        Ok(single(doc, &params, &app))
    })
    .await
}

// ---------------------------------------------------------------- campaigns

fn scheduled_at(c: &SimCampaign) -> DateTime<Utc> {
    c.created_at + (c.send_at - c.created_at) / 2
}

/// The subject a campaign was sent with: its name without the leading send date.
fn subject(c: &SimCampaign) -> String {
    match c.name.split_once(' ') {
        Some((date, rest)) if date.len() == 10 && date.as_bytes()[4] == b'-' => rest.to_string(),
        _ => c.name.clone(),
    }
}

fn campaign_key(field: &str, c: &SimCampaign) -> Key {
    let v = match field {
        "created_at" => KeyVal::Int(c.created_at.timestamp_micros()),
        "updated_at" => KeyVal::Int(c.updated_at.timestamp_micros()),
        "scheduled_at" => KeyVal::Int(scheduled_at(c).timestamp_micros()),
        "name" => KeyVal::Str(c.name.clone()),
        _ => KeyVal::Str(c.campaign_id.clone()),
    };
    (v, c.campaign_id.clone())
}

fn campaign_status(c: &SimCampaign, now: DateTime<Utc>) -> &'static str {
    if c.send_at <= now { "Sent" } else { "Scheduled" }
}

fn archived(c: &SimCampaign, now: DateTime<Utc>) -> bool {
    now.checked_sub_months(Months::new(ARCHIVE_AFTER_MONTHS)).is_some_and(|cut| c.send_at < cut)
}

fn render_campaign(app: &App, c: &SimCampaign, now: DateTime<Utc>) -> Value {
    let self_path = format!("/api/campaigns/{}/", c.campaign_id);
    let excluded: Vec<String> = if render::hash64(&c.campaign_id).is_multiple_of(3) {
        vec![groups::segment_id(&app.shop, "Lapsed customers")]
    } else {
        Vec::new()
    };
    let mut messages = rel_links(&app.base, &self_path, "campaign-messages");
    messages["data"] = json!([{"type": "campaign-message", "id": c.message_id}]);
    json!({
        "type": "campaign",
        "id": c.campaign_id,
        "attributes": {
            "name": c.name,
            "status": campaign_status(c, now),
            "archived": archived(c, now),
            "audiences": {"included": [groups::audience_list(&app.shop, &c.channel)], "excluded": excluded},
            "send_options": {"use_smart_sending": !render::hash64(&c.message_id).is_multiple_of(4)},
            "tracking_options": {
                "add_tracking_params": true,
                "custom_tracking_params": null,
                "is_tracking_clicks": true,
                "is_tracking_opens": c.channel == "email",
            },
            "send_strategy": {
                "method": "static",
                "datetime": ts(c.send_at),
                "options": {"is_local": false, "send_past_recipients_immediately": null},
                "throttle_percentage": null,
            },
            "created_at": ts(c.created_at),
            "scheduled_at": ts(scheduled_at(c)),
            "updated_at": ts(c.updated_at),
            "send_time": ts(c.send_at),
        },
        "relationships": {
            "campaign-messages": messages,
            "tags": rel_links(&app.base, &self_path, "tags"),
        },
        "links": {"self": format!("{}{self_path}", app.base)},
    })
}

fn render_campaign_message(app: &App, c: &SimCampaign) -> Value {
    let self_path = format!("/api/campaign-messages/{}/", c.message_id);
    let label = subject(c);
    let content = if c.channel == "sms" {
        json!({"body": graph::sms_body(&label, &app.shop), "media_url": null})
    } else {
        json!({
            "subject": label,
            "preview_text": format!("{label} from {}", app.shop.name),
            "from_email": format!("hello@{}", app.shop.myshopify_domain),
            "from_label": app.shop.name,
            "reply_to_email": null,
            "cc_email": null,
            "bcc_email": null,
        })
    };
    let mut campaign = rel_links(&app.base, &self_path, "campaign");
    campaign["data"] = json!({"type": "campaign", "id": c.campaign_id});
    json!({
        "type": "campaign-message",
        "id": c.message_id,
        "attributes": {
            "definition": {"channel": c.channel, "label": c.name, "content": content},
            "send_times": [{"datetime": ts(c.send_at), "is_local": false}],
            "created_at": ts(c.created_at),
            "updated_at": ts(c.updated_at),
        },
        "relationships": {
            "campaign": campaign,
            "template": rel_links(&app.base, &self_path, "template"),
            "image": rel_links(&app.base, &self_path, "image"),
        },
        "links": {"self": format!("{}{self_path}", app.base)},
    })
}

const CHANNELS: &[&str] = &["email", "sms", "mobile_push"];

pub(super) async fn campaigns(State(app): State<Arc<App>>, uri: Uri) -> Response {
    blocking(move || campaigns_page(&app, &Params::new(&uri))).await
}

fn campaigns_page(app: &App, params: &Params) -> Result<Response, ApiError> {
    let size = params.page_size(100, 100)?;
    let sort = params.get("sort").unwrap_or("id").to_string();
    let field = sort.trim_start_matches('-').to_string();
    if !matches!(field.as_str(), "created_at" | "updated_at" | "scheduled_at" | "id" | "name") {
        return Err(ApiError::invalid("sort", format!("'{sort}' is not a valid sort for campaigns.")));
    }
    let includes = super::routes::check_includes(params, &["campaign-messages", "tags"])?;
    let mut channel = None;
    let mut want_archived = false;
    let mut windows: HashMap<String, Window> = HashMap::new();
    let mut sets: Vec<(String, Vec<String>)> = Vec::new();
    let mut name_contains = None;
    for c in params.conditions()? {
        match (c.field.as_str(), c.op) {
            ("messages.channel", Op::Equals) => {
                let ch = filter::string(&c.value).map_err(ApiError::filter)?;
                if !CHANNELS.contains(&ch.as_str()) {
                    return Err(ApiError::filter(format!("'{ch}' is not a valid messages.channel.")));
                }
                channel = Some(ch);
            }
            ("archived", Op::Equals) => want_archived = filter::boolean(&c.value).map_err(ApiError::filter)?,
            (
                "created_at" | "updated_at" | "scheduled_at",
                Op::GreaterThan | Op::GreaterOrEqual | Op::LessThan | Op::LessOrEqual,
            ) => windows.entry(c.field.clone()).or_default().add(c.op, dt(&c)?),
            ("id", Op::Any | Op::Equals) | ("status", Op::Any | Op::Equals) => {
                sets.push((c.field.clone(), string_set(&c)?))
            }
            ("name", Op::Contains) => name_contains = Some(filter::string(&c.value).map_err(ApiError::filter)?),
            _ => return Err(unsupported(&c)),
        }
    }
    let Some(channel) = channel else {
        return Err(ApiError::filter(
            "A channel filter is required: equals(messages.channel,'email'), 'sms' or 'mobile_push'.",
        ));
    };
    let cursor = params.cursor(app, "campaigns", &sort)?;
    let now = app.clock.now();
    let mut all: Vec<SimCampaign> =
        app.campaigns().map_err(io_err)?.iter().filter(|c| app.visible(c)).cloned().collect();
    all.sort_by_cached_key(|c| campaign_key(&field, c));
    let all = Arc::new(all);
    let key = |c: &SimCampaign| campaign_key(&field, c);
    let keep = |c: &SimCampaign| {
        c.channel == channel
            && archived(c, now) == want_archived
            && windows.iter().all(|(f, w)| {
                w.contains(match f.as_str() {
                    "created_at" => c.created_at,
                    "updated_at" => c.updated_at,
                    _ => scheduled_at(c),
                })
            })
            && name_contains.as_ref().is_none_or(|n| c.name.contains(n.as_str()))
            && sets.iter().all(|(f, set)| {
                if f == "id" { set.contains(&c.campaign_id) } else { set.iter().any(|s| s == campaign_status(c, now)) }
            })
    };
    let page = paging::paginate(sort.starts_with('-'), cursor.as_ref(), size, key, |asc, start, limit| {
        paging::scan([Ok(all.clone())], asc, start, limit, key, keep)
    })
    .map_err(io_err)?;
    let mut doc = Doc::new(params.fields());
    for c in &page.items {
        doc.push(render_campaign(app, c, now));
        if includes.iter().any(|i| i == "campaign-messages") {
            doc.include(render_campaign_message(app, c));
        }
    }
    Ok(doc.into_response(page_links(app, params, "campaigns", &sort, page.next, page.prev), !includes.is_empty()))
}

fn find_campaign(app: &App, pred: impl Fn(&SimCampaign) -> bool) -> Result<Option<SimCampaign>, ApiError> {
    let all = app.campaigns().map_err(io_err)?;
    Ok(all.iter().find(|c| app.visible(c) && pred(c)).cloned())
}

pub(super) async fn campaign_by_id(State(app): State<Arc<App>>, Path(id): Path<String>, uri: Uri) -> Response {
    blocking(move || {
        let params = Params::new(&uri);
        let c = find_campaign(&app, |c| c.campaign_id == id)?.ok_or_else(|| not_found("campaign", &id))?;
        let mut doc = Doc::new(params.fields());
        doc.push(render_campaign(&app, &c, app.clock.now()));
        Ok(single(doc, &params, &app))
    })
    .await
}

pub(super) async fn campaign_messages(State(app): State<Arc<App>>, Path(id): Path<String>, uri: Uri) -> Response {
    blocking(move || {
        let params = Params::new(&uri);
        let c = find_campaign(&app, |c| c.campaign_id == id)?.ok_or_else(|| not_found("campaign", &id))?;
        let mut doc = Doc::new(params.fields());
        doc.push(render_campaign_message(&app, &c));
        Ok(doc.into_response(json!({"self": params.self_link(&app.base), "next": null, "prev": null}), false))
    })
    .await
}

pub(super) async fn campaign_message_by_id(State(app): State<Arc<App>>, Path(id): Path<String>, uri: Uri) -> Response {
    blocking(move || {
        let params = Params::new(&uri);
        let c = find_campaign(&app, |c| c.message_id == id)?.ok_or_else(|| not_found("campaign message", &id))?;
        let mut doc = Doc::new(params.fields());
        doc.push(render_campaign_message(&app, &c));
        Ok(single(doc, &params, &app))
    })
    .await
}

// ---------------------------------------------------------------- lists and segments

pub(super) async fn lists(State(app): State<Arc<App>>, uri: Uri) -> Response {
    blocking(move || groups_page(&app, &Params::new(&uri), Kind::List)).await
}

pub(super) async fn segments(State(app): State<Arc<App>>, uri: Uri) -> Response {
    blocking(move || groups_page(&app, &Params::new(&uri), Kind::Segment)).await
}

fn group_key(field: &str, g: &Group) -> Key {
    let v = match field {
        "created" => KeyVal::Int(g.created.timestamp_micros()),
        "updated" => KeyVal::Int(g.updated.timestamp_micros()),
        "name" => KeyVal::Str(g.name.clone()),
        _ => KeyVal::Str(g.id.clone()),
    };
    (v, g.id.clone())
}

fn groups_page(app: &App, params: &Params, kind: Kind) -> Result<Response, ApiError> {
    let (ty, ep) = match kind {
        Kind::List => ("list", "lists"),
        Kind::Segment => ("segment", "segments"),
    };
    let size = params.page_size(10, 10)?;
    let sort = params.get("sort").unwrap_or("id").to_string();
    let field = sort.trim_start_matches('-').to_string();
    if !matches!(field.as_str(), "created" | "updated" | "id" | "name") {
        return Err(ApiError::invalid("sort", format!("'{sort}' is not a valid sort for {ep}.")));
    }
    let with_count = !check_additional(params, ty, &["profile_count"])?.is_empty();
    let mut created = Window::default();
    let mut updated = Window::default();
    for c in params.conditions()? {
        match (c.field.as_str(), c.op) {
            // Klaviyo allows only greater-than on group timestamps (apis.md 1.6).
            ("updated", Op::GreaterThan) => updated.add(c.op, dt(&c)?),
            ("created", Op::GreaterThan) => created.add(c.op, dt(&c)?),
            _ => return Err(unsupported(&c)),
        }
    }
    let cursor = params.cursor(app, ep, &sort)?;
    let horizon = app.clock.horizon();
    let mut all = match kind {
        Kind::List => groups::lists(&app.shop),
        Kind::Segment => groups::segments(&app.shop),
    };
    all.retain(|g| horizon.is_none_or(|h| g.created <= h));
    all.sort_by_cached_key(|g| group_key(&field, g));
    let all = Arc::new(all);
    let key = |g: &Group| group_key(&field, g);
    let keep = |g: &Group| created.contains(g.created) && updated.contains(g.updated);
    let page = paging::paginate(sort.starts_with('-'), cursor.as_ref(), size, key, |asc, start, limit| {
        paging::scan([Ok(all.clone())], asc, start, limit, key, keep)
    })
    .map_err(io_err)?;
    let counts = if with_count { Some(app.group_counts().map_err(io_err)?) } else { None };
    let mut doc = Doc::new(params.fields());
    for g in &page.items {
        let n = counts.as_ref().map(|c| c.get(&g.id).copied().unwrap_or(0));
        doc.push(groups::render(&app.base, g, n));
    }
    Ok(doc.into_response(page_links(app, params, ep, &sort, page.next, page.prev), false))
}
