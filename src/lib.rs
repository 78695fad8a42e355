//! Switchboard: an actor-based, XMPP-flavoured realtime chat server.
//!
//! This crate is the front door; the realtime core (actors, event model, store) is the
//! `switchboard-actors` crate. Map of the doors:
//! - [`app`]: start-up from a [`config::Config`] (`Application::build`).
//! - [`routes`]: the route table, above every door.
//! - [`http`]: the REST doors, one file per endpoint family (admin, chat stream API, misc).
//! - [`sse`]: Server-Sent Events; [`ws`]: the JSON websocket; [`chatapi`]: the typed events
//!   as the JSON doors' `chatapi.*` objects.
//! - [`xmpp`]: the XMPP doors (raw stanza POST, RFC 7395 websocket) and their renderer.
//! - [`apps`]: external apps: their admin API, their own API, and webhooks on the wire.
//! - [`ozeki`]: the Ozeki Chat doors (the Ozeki 10 HTTP API for HTTP API users).
//! - [`sites`]: web sites: their admin API, their users' tokens, the users-info client that
//!   learns their names and avatars, and the embeddable widget.
//! - [`web`]: the web client, its files and the Fastpath visitor page, compiled in.
//! - [`urls`]: percent-encoding of one URL component.
//! - [`outbound`]: outbound HTTP (webhooks, users-info) and its destination rules.
//! - [`inbound`], [`requests`]: what several doors share: the rules for what comes in, and
//!   the requests they make of the core for a caller.
//! - [`auth`]: Basic, bearer tokens, visitor tokens, the admin check and the `Caller` and
//!   `CallerStation` extractors; [`secrets`]: first-start secrets.
//! - [`cluster`]: the cluster link: the router's relays to and from its peers over NATS.
//! - [`binding`]: where a live connection is attached, and how it detaches.
//! - [`error`]: API errors mapped to status and JSON in one place.
//! - [`outbox`]: the byte budget that bounds what a slow client can make the server hold.
//! - [`cli`]: `switchboard user|room|group …`, the admin command line over the admin API.
//! - [`vcard`]: vCards (vcard-temp) as the admin API and XMPP take them, and their photos.
//! - [`upgrade`]: websocket connections served outside the HTTP dispatcher, without its
//!   per-connection buffers.

pub mod app;
pub mod apps;
pub mod auth;
pub mod binding;
pub mod chatapi;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod http;
pub mod inbound;
pub mod outbound;
pub mod outbox;
pub mod ozeki;
pub mod requests;
pub mod routes;
pub mod secrets;
pub mod sites;
pub mod sse;
pub mod state;
pub mod upgrade;
pub mod urls;
pub mod vcard;
pub mod web;
pub mod ws;
pub mod xmpp;

pub use app::{Application, BuildError};
pub use config::Config;
