//! The Ozeki Chat doors (`specs/vendor_apis.md` §1).
//!
//! - [`http_api`]: the Ozeki 10 HTTP API at `/api` for HTTP API users, REST and URL forms.
//! - [`recipient`]: Ozeki's recipient spellings (`user@domain@station`, `@%`, e-mail).
//! - [`render`]: the HTTP API's replies and Ozeki timestamps.

pub mod http_api;
pub mod recipient;
pub mod render;
