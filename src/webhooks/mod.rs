//! Attentive and Postscript webhooks: the always-on receiver and the nightly compaction.
//!
//! Neither platform has a pull API for sends, clicks or opt-outs (apis.md 3.1, 4.2), so their
//! events arrive only as webhooks. [`server`] (`serve-webhooks`) verifies each delivery and
//! stores its body unchanged as one object before it answers 200; [`compact`] (inside the
//! nightly sync) turns the objects it has not seen yet into raw Parquet under the stream
//! `webhook_events` of each platform. The object is the unit of durability: a delivery the
//! platform saw acknowledged is already in storage, whatever happens to the receiver after.

pub mod compact;
pub mod event;
pub mod metrics;
pub mod objects;
pub mod server;
pub mod verify;

/// The raw stream both platforms land into.
pub const STREAM: &str = "webhook_events";

/// A platform that sends webhooks. Its name is the source name of the landed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    Attentive,
    Postscript,
}

impl Platform {
    pub const ALL: [Platform; 2] = [Platform::Attentive, Platform::Postscript];

    /// The source name (`attentive`, `postscript`): the URL path segment and the raw source.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Attentive => "attentive",
            Platform::Postscript => "postscript",
        }
    }

    /// The header carrying the signature (Attentive) or the shared token (Postscript).
    pub fn signature_header(self) -> &'static str {
        match self {
            Platform::Attentive => "x-attentive-hmac-sha256",
            Platform::Postscript => "postscript-signature",
        }
    }

    /// The receiver's path for this platform.
    pub fn path(self) -> &'static str {
        match self {
            Platform::Attentive => "/webhooks/attentive",
            Platform::Postscript => "/webhooks/postscript",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The platforms a `[webhooks]` section configures.
pub fn configured(cfg: &crate::config::WebhooksConfig) -> Vec<Platform> {
    let mut out = Vec::new();
    if cfg.attentive.is_some() {
        out.push(Platform::Attentive);
    }
    if cfg.postscript.is_some() {
        out.push(Platform::Postscript);
    }
    out
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
