//! The external apps' doors (R-Chat style, `specs/vendor_apis.md` §2).
//!
//! - [`admin`]: the admin API for apps (create, rotate tokens, deliveries and replays).
//! - [`api`]: the apps' own API with bearer tokens (register, webhook, chats, messages).
//! - [`webhook`]: webhook requests on the wire (rendering, signatures, verification) and the
//!   destination rules every outbound request passes.

pub mod admin;
pub mod api;
pub mod webhook;
