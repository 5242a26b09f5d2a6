//! The fake Attentive (apis.md 6.3): a real SFTP server holding generated feed files, and the
//! REST identity endpoints. Webhooks are the receiver's fake, not this one.
//!
//! - `sftp`: the in-process SFTP server (russh + russh-sftp server sides) over a local folder;
//! - `feeds`: the seeded feed-file generator and its truth;
//! - `rest`: `GET /v1/me`, `/v2/me`.

pub mod brand;
pub mod feeds;
pub mod rest;
pub mod sftp;
