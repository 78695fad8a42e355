//! The Ozeki Chat doors (`specs/vendor_apis.md` §1).
//!
//! - [`http_api`]: the Ozeki 10 HTTP API at `/api` for HTTP API users, REST and URL forms.
//! - [`client_api`]: the JSON client API (`index.php?srv=chatserver&api=…`): signed
//!   stations, friends, conversations, reports, notification polling.
//! - [`keys`]: the admin API that issues and revokes the client API's station keys.
//! - [`recipient`]: Ozeki's recipient spellings (`user@domain@station`, `@%`, e-mail).
//! - [`render`]: the HTTP API's replies and Ozeki timestamps.

pub mod client_api;
pub mod http_api;
pub mod keys;
pub mod recipient;
pub mod render;
