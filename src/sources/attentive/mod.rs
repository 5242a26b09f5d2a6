//! Attentive: the nightly SFTP feeds (General Events and Conversions CSVs), the only bulk
//! history Attentive offers (apis.md 3.3 B), and `GET /v1/me` for `check --connect`.
//!
//! Not a paged HTTP source, so it does not go through [`crate::extract`]: one SFTP session per
//! run lists the feed folder once, and each stream lands the files of its own pattern
//! ([`land::sync_feed`]). Modules:
//!
//! - `sftp`: connection with host-key pinning, login, listing and download;
//! - `hostkey`: the pinned key and fingerprints;
//! - `pattern`: file-name patterns with the date in the name;
//! - `feed`: one CSV row into the landed record, event-type normalisation;
//! - `land`: per-stream state, landing, quarantine and missing-day detection;
//! - `rest`: `GET /v1/me`.

pub mod feed;
pub mod hostkey;
pub mod land;
pub mod pattern;
pub mod rest;
pub mod sftp;

use std::collections::BTreeMap;

use crate::config::{AttentiveConfig, Secrets};
use crate::error::{Error, Result};
use crate::extract::SyncContext;
use crate::manifest::StreamSummary;
use feed::Feed;
use pattern::FilePattern;

pub const SOURCE: &str = "attentive";

/// The feeds, in the order a run lands them.
pub const FEEDS: [Feed; 2] = [feed::GENERAL_EVENTS, feed::CONVERSIONS];

/// Checks what the job file says beyond its types: `(key, expected, got)` on error.
pub fn validate(cfg: &AttentiveConfig) -> std::result::Result<(), (String, String, String)> {
    hostkey::PinnedHostKey::parse(&cfg.sftp.host_key)
        .map_err(|why| ("sources.attentive.sftp.host_key".into(), why, "<not shown>".into()))?;
    if cfg.sftp.domain.trim().is_empty() || cfg.sftp.domain.contains('/') {
        return Err(("sources.attentive.sftp.domain".into(), "the brand's domain".into(), cfg.sftp.domain.clone()));
    }
    for feed in FEEDS {
        let (key, text) = pattern_of(cfg, &feed);
        FilePattern::new(text, &cfg.sftp.domain).map_err(|why| (key.to_string(), why, text.to_string()))?;
    }
    Ok(())
}

fn pattern_of<'a>(cfg: &'a AttentiveConfig, feed: &Feed) -> (&'static str, &'a str) {
    if feed.stream == feed::CONVERSIONS.stream {
        ("sources.attentive.sftp.conversions_pattern", &cfg.sftp.conversions_pattern)
    } else {
        ("sources.attentive.sftp.general_events_pattern", &cfg.sftp.general_events_pattern)
    }
}

/// Lands every selected feed. A configuration problem (host key, login) stops the run; a
/// server that cannot be reached fails both streams and the other sources still land.
pub async fn sync(
    cfg: &AttentiveConfig,
    secrets: &Secrets,
    ctx: &SyncContext,
    only_stream: Option<&str>,
) -> Result<(BTreeMap<String, StreamSummary>, Vec<Error>)> {
    let feeds: Vec<Feed> = FEEDS.iter().copied().filter(|f| only_stream.is_none_or(|s| s == f.stream)).collect();
    if feeds.is_empty() {
        let names: Vec<&str> = FEEDS.iter().map(|f| f.stream).collect();
        return Err(Error::config(format!(
            "--stream {}: source {SOURCE} has streams {}",
            only_stream.unwrap_or_default(),
            names.join(", ")
        )));
    }
    let mut summaries = BTreeMap::new();
    let mut failures = Vec::new();
    let failed_all = |summaries: &mut BTreeMap<String, StreamSummary>, message: String| {
        for f in &feeds {
            let summary = StreamSummary { status: "failed".into(), error: Some(message.clone()), ..Default::default() };
            summaries.insert(format!("{SOURCE}.{}", f.stream), summary);
        }
    };
    let server = match sftp::FeedServer::connect(&cfg.sftp, secrets).await {
        Ok(s) => s,
        Err(e @ Error::Config { .. }) => return Err(e),
        Err(e) => {
            failed_all(&mut summaries, e.to_string());
            failures.push(e);
            return Ok((summaries, failures));
        }
    };
    let listing = match server.list().await {
        Ok(l) => l,
        Err(e) => {
            failed_all(&mut summaries, e.to_string());
            failures.push(e);
            server.close().await;
            return Ok((summaries, failures));
        }
    };
    tracing::info!(source = SOURCE, server = %server.address, files = listing.len(), "Feed folder listed.");
    for feed in &feeds {
        let pattern = FilePattern::new(pattern_of(cfg, feed).1, &cfg.sftp.domain).map_err(Error::config)?;
        let outcome = land::sync_feed(ctx, &server, feed, &pattern, &listing, cfg.start_date).await?;
        let s = &outcome.summary;
        tracing::info!(source = SOURCE, stream = feed.stream, records = s.records, files = s.pages, status = %s.status, "Stream finished.");
        if !outcome.errors.is_empty() {
            failures.push(Error::Source {
                source_name: SOURCE.into(),
                stream: feed.stream.into(),
                message: outcome.errors.join("; "),
                cause: None,
            });
        }
        summaries.insert(format!("{SOURCE}.{}", feed.stream), outcome.summary);
    }
    server.close().await;
    Ok((summaries, failures))
}
