//! The action graph of each flow, synthesized from its `SimFlow`, and its wire shapes.
//!
//! The store keeps flows as a list of messages with cumulative delays; Klaviyo serves a graph
//! of actions (splits, delays, sends) whose shape changed in revision 2025-10-15. The graph
//! here is a deterministic function of the flow and its truth (the holdout share), so tests
//! and connectors can predict every action id and link:
//!
//! 1. flows whose entry waits after the trigger (cross-sell, replenishment, win-back): a
//!    `time-delay`, then for flows that exit buyers a `conditional-split` "has placed order since
//!    starting this flow" whose true branch ends;
//! 2. flows with a holdout: a `conditional-split` on `properties.holdout_bucket < pct` whose
//!    true branch ends (the held-out profiles exit);
//! 3. for each message in order: a `time-delay` of the hours since the previous message
//!    (skipped when 0), for intent flows a `conditional-split` "has placed order since
//!    starting this flow" before the second message (true branch ends), then the send action.
//!
//! Send actions keep the store's `SimFlowMessage::action_id`; other actions get stable ids
//! derived from the flow id and their position.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::render::{self, hash64, rel_links, ts};
use crate::simulate::model::{SimFlow, SimFlowMessage, SimShop};

/// The last revision serving the old (`action_type`, `settings`, ...) flow-action shape.
pub const OLD_SHAPE_UNTIL: &str = "2025-07-15";
/// The first revision with `channel` back on flow messages.
pub const MESSAGE_CHANNEL_SINCE: &str = "2026-01-15";

/// Flow types whose entrants exit once they buy.
const INTENT_FLOWS: &[&str] = &["abandoned_checkout", "abandoned_cart", "browse_abandonment"];

#[derive(Debug, Clone)]
pub enum Step {
    /// `holdout_bucket < pct`: true ends the flow.
    Holdout {
        pct: u8,
    },
    /// Placed Order at least once since the flow started: true ends the flow.
    OrderedSinceStart {
        metric_id: Option<String>,
    },
    Delay {
        hours: u32,
    },
    Send {
        message: SimFlowMessage,
    },
}

#[derive(Debug, Clone)]
pub enum Links {
    Next(Option<String>),
    Split { if_true: Option<String>, if_false: Option<String> },
}

#[derive(Debug, Clone)]
pub struct Action {
    pub id: String,
    pub flow_id: String,
    pub step: Step,
    pub links: Links,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// `live`, `draft` or `manual`, from the flow's status.
    pub status: String,
    pub transactional: bool,
}

impl Action {
    pub fn message(&self) -> Option<&SimFlowMessage> {
        match &self.step {
            Step::Send { message } => Some(message),
            _ => None,
        }
    }

    /// The revision-≥ 2025-10-15 `definition.type`.
    pub fn type_name(&self) -> &'static str {
        match &self.step {
            Step::Holdout { .. } | Step::OrderedSinceStart { .. } => "conditional-split",
            Step::Delay { .. } => "time-delay",
            Step::Send { message } if message.channel == "sms" => "send-sms",
            Step::Send { .. } => "send-email",
        }
    }

    /// The revision-≤ 2025-07-15 `action_type`.
    pub fn action_type(&self) -> &'static str {
        match &self.step {
            Step::Holdout { .. } | Step::OrderedSinceStart { .. } => "BOOLEAN_BRANCH",
            Step::Delay { .. } => "TIME_DELAY",
            Step::Send { message } if message.channel == "sms" => "SEND_SMS",
            Step::Send { .. } => "SEND_EMAIL",
        }
    }
}

/// One flow and its actions in graph order (entry first).
#[derive(Debug, Clone)]
pub struct FlowGraph {
    pub flow: SimFlow,
    pub actions: Vec<Action>,
}

fn derived_id(flow_id: &str, pos: usize, kind: &str) -> String {
    // Numeric like Klaviyo's action ids, and outside the 80M-89M range the store's send
    // actions use, so the two never collide.
    (90_000_000 + hash64(&format!("flow-action:{flow_id}:{pos}:{kind}")) % 9_000_000).to_string()
}

/// How a flow admits entrants, beyond its trigger (from the simulator's truth).
#[derive(Debug, Clone, Copy, Default)]
pub struct Entry {
    /// Share held out by the `holdout_bucket` split (0: no holdout split).
    pub holdout_pct: u8,
    /// A time delay between trigger and the first split (win-back's 90 days, say).
    pub delay_hours: u32,
    /// After that delay, a "placed order since starting this flow" split ends the flow.
    pub exit_on_order: bool,
}

/// The graph of `flow`; `placed_order` is the Placed Order metric id the order split reads.
pub fn build(flow: &SimFlow, entry: Entry, placed_order: Option<&str>) -> FlowGraph {
    let mut steps = Vec::new();
    if entry.delay_hours > 0 {
        steps.push(Step::Delay { hours: entry.delay_hours });
        if entry.exit_on_order {
            steps.push(Step::OrderedSinceStart { metric_id: placed_order.map(str::to_string) });
        }
    }
    if entry.holdout_pct > 0 {
        steps.push(Step::Holdout { pct: entry.holdout_pct });
    }
    let mut prev_delay = 0;
    for (i, m) in flow.messages.iter().enumerate() {
        let hours = m.delay_hours.saturating_sub(prev_delay);
        prev_delay = prev_delay.max(m.delay_hours);
        if hours > 0 {
            steps.push(Step::Delay { hours });
        }
        if i == 1 && INTENT_FLOWS.contains(&flow.flow_type.as_str()) {
            steps.push(Step::OrderedSinceStart { metric_id: placed_order.map(str::to_string) });
        }
        steps.push(Step::Send { message: m.clone() });
    }
    let ids: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(pos, s)| match s {
            Step::Send { message } => message.action_id.clone(),
            Step::Holdout { .. } => derived_id(&flow.flow_id, pos, "holdout"),
            Step::OrderedSinceStart { .. } => derived_id(&flow.flow_id, pos, "ordered"),
            Step::Delay { .. } => derived_id(&flow.flow_id, pos, "delay"),
        })
        .collect();
    let transactional = flow.flow_type == "transactional";
    let actions = steps
        .into_iter()
        .enumerate()
        .map(|(pos, step)| {
            let next = ids.get(pos + 1).cloned();
            let links = match step {
                Step::Holdout { .. } | Step::OrderedSinceStart { .. } => Links::Split { if_true: None, if_false: next },
                _ => Links::Next(next),
            };
            let (created, updated) = match &step {
                Step::Send { message } => (message.created_at, message.updated_at),
                _ => (flow.created_at, flow.created_at + Duration::days(1)),
            };
            Action {
                id: ids[pos].clone(),
                flow_id: flow.flow_id.clone(),
                step,
                links,
                created,
                updated,
                status: flow.status.clone(),
                transactional,
            }
        })
        .collect();
    FlowGraph { flow: flow.clone(), actions }
}

fn from_email(shop: &SimShop) -> String {
    format!("hello@{}", shop.myshopify_domain)
}

fn preview_text(m: &SimFlowMessage, shop: &SimShop) -> String {
    format!("{} from {}", m.name, shop.name)
}

/// The SMS text of a flow or campaign message.
pub fn sms_body(label: &str, shop: &SimShop) -> String {
    format!("{}: {label}. Shop now: https://{}/ Reply STOP to opt out.", shop.name, shop.myshopify_domain)
}

fn template_id(message_id: &str) -> String {
    render::short_id(&format!("template:{message_id}"))
}

fn split_filter(step: &Step) -> Value {
    match step {
        Step::Holdout { pct } => json!({"condition_groups": [{"conditions": [{
            "type": "profile-property",
            "property": "properties['holdout_bucket']",
            "filter": {"type": "numeric", "operator": "less-than", "value": pct},
        }]}]}),
        Step::OrderedSinceStart { metric_id } => json!({"condition_groups": [{"conditions": [{
            "type": "profile-metric",
            "metric_id": metric_id,
            "measurement": "count",
            "measurement_filter": {"type": "numeric", "operator": "greater-than", "value": 0},
            "timeframe_filter": {"type": "date", "operator": "flow-start"},
            "metric_filters": null,
        }]}]}),
        _ => Value::Null,
    }
}

/// `definition` of one action (revision ≥ 2025-10-15), also the items of a flow's
/// `definition.actions`.
pub fn definition(a: &Action, shop: &SimShop) -> Value {
    let links = match &a.links {
        Links::Next(n) => json!({"next": n}),
        Links::Split { if_true, if_false } => json!({"next_if_true": if_true, "next_if_false": if_false}),
    };
    let data = match &a.step {
        Step::Holdout { .. } | Step::OrderedSinceStart { .. } => json!({"profile_filter": split_filter(&a.step)}),
        Step::Delay { hours } => json!({
            "unit": "hours",
            "value": hours,
            "secondary_value": null,
            "timezone": "profile",
            "delay_until_time": null,
            "delay_until_weekdays": [],
        }),
        Step::Send { message: m } if m.channel == "sms" => json!({
            "status": a.status,
            "message": {
                "id": m.message_id,
                "name": m.name,
                "body": sms_body(&m.name, shop),
                "image_id": null,
                "shorten_links": true,
                "add_org_prefix": true,
                "add_info_link": true,
                "add_opt_out_language": false,
                "smart_sending_enabled": !a.transactional,
                "sms_quiet_hours_enabled": true,
                "transactional": a.transactional,
                "add_tracking_params": true,
                "custom_tracking_params": null,
                "additional_filters": null,
                "template_id": null,
            },
        }),
        Step::Send { message: m } => json!({
            "status": a.status,
            "message": {
                "id": m.message_id,
                "name": m.name,
                "from_email": from_email(shop),
                "from_label": shop.name,
                "reply_to_email": null,
                "cc_email": null,
                "bcc_email": null,
                "subject_line": m.subject,
                "preview_text": preview_text(m, shop),
                "template_id": template_id(&m.message_id),
                "smart_sending_enabled": !a.transactional,
                "transactional": a.transactional,
                "add_tracking_params": true,
                "custom_tracking_params": null,
                "additional_filters": null,
            },
        }),
    };
    json!({"id": a.id, "type": a.type_name(), "links": links, "data": data})
}

/// A `flow-action` resource in the shape of `revision`.
pub fn action(base: &str, a: &Action, shop: &SimShop, revision: &str) -> Value {
    let self_path = format!("/api/flow-actions/{}/", a.id);
    let attributes = if revision <= OLD_SHAPE_UNTIL {
        old_attributes(a, revision)
    } else {
        json!({"created": ts(a.created), "updated": ts(a.updated), "definition": definition(a, shop)})
    };
    let mut flow = rel_links(base, &self_path, "flow");
    flow["data"] = json!({"type": "flow", "id": a.flow_id});
    json!({
        "type": "flow-action",
        "id": a.id,
        "attributes": attributes,
        "relationships": {"flow": flow, "flow-messages": rel_links(base, &self_path, "flow-messages")},
        "links": {"self": format!("{base}{self_path}")},
    })
}

fn old_attributes(a: &Action, revision: &str) -> Value {
    let send = a.message().is_some();
    let sms = a.message().is_some_and(|m| m.channel == "sms");
    let settings = match &a.step {
        Step::Delay { hours } => json!({"delay_unit": "hours", "delay_value": hours, "timezone": "profile"}),
        Step::Holdout { .. } | Step::OrderedSinceStart { .. } => json!({"profile_filter": split_filter(&a.step)}),
        Step::Send { .. } => json!({}),
    };
    let mut attrs = json!({
        "action_type": a.action_type(),
        "status": if send { a.status.as_str() } else { "live" },
        "created": ts(a.created),
        "updated": ts(a.updated),
        "settings": settings,
        "tracking_options": if send {
            json!({"is_add_utm": true, "utm_params": [], "is_tracking_opens": !sms, "is_tracking_clicks": true})
        } else {
            Value::Null
        },
        "send_options": if send {
            json!({"use_smart_sending": !a.transactional, "is_transactional": a.transactional})
        } else {
            Value::Null
        },
        "render_options": if sms {
            json!({"shorten_links": true, "add_org_prefix": true, "add_info_link": true, "add_opt_out_language": false})
        } else {
            Value::Null
        },
    });
    if revision == OLD_SHAPE_UNTIL {
        attrs["badge_options"] = Value::Null;
    }
    attrs
}

fn content(m: &SimFlowMessage, shop: &SimShop) -> Value {
    if m.channel == "sms" {
        json!({"body": sms_body(&m.name, shop), "media_url": null})
    } else {
        json!({
            "subject": m.subject,
            "preview_text": preview_text(m, shop),
            "from_email": from_email(shop),
            "from_label": shop.name,
            "reply_to_email": null,
            "cc_email": null,
            "bcc_email": null,
        })
    }
}

/// A `flow-message` resource in the shape of `revision`.
pub fn message(base: &str, a: &Action, m: &SimFlowMessage, shop: &SimShop, revision: &str) -> Value {
    let self_path = format!("/api/flow-messages/{}/", m.message_id);
    let attributes = if revision <= OLD_SHAPE_UNTIL {
        json!({
            "name": m.name,
            "channel": m.channel,
            "content": content(m, shop),
            "created": ts(m.created_at),
            "updated": ts(m.updated_at),
        })
    } else {
        let mut attrs = json!({
            "created": ts(m.created_at),
            "updated": ts(m.updated_at),
            "definition": {"channel": m.channel, "content": content(m, shop)},
        });
        if revision >= MESSAGE_CHANNEL_SINCE {
            attrs["channel"] = json!(m.channel);
        }
        attrs
    };
    let mut flow_action = rel_links(base, &self_path, "flow-action");
    flow_action["data"] = json!({"type": "flow-action", "id": a.id});
    let mut template = rel_links(base, &self_path, "template");
    template["data"] =
        if m.channel == "sms" { Value::Null } else { json!({"type": "template", "id": template_id(&m.message_id)}) };
    json!({
        "type": "flow-message",
        "id": m.message_id,
        "attributes": attributes,
        "relationships": {"flow-action": flow_action, "template": template},
        "links": {"self": format!("{base}{self_path}")},
    })
}

/// A flow's `definition` (`additional-fields[flow]=definition`): triggers, actions, entry.
pub fn flow_definition(g: &FlowGraph, shop: &SimShop, trigger: Value) -> Value {
    json!({
        "triggers": trigger,
        "profile_filter": null,
        "actions": g.actions.iter().map(|a| definition(a, shop)).collect::<Vec<_>>(),
        "entry_action_id": g.actions.first().map(|a| a.id.clone()),
    })
}
