//! Web sites that embed chat for their own users (ImbaChat, `specs/vendor_apis.md` §3):
//! - [`admin`]: the admin API for sites (`/restapi/v1/sites`);
//! - [`tokens`]: the site user tokens (HS256 `{user_id, exp}`) and their refusals;
//! - [`users_info`]: the client that asks a site what its users are called and look like;
//! - [`api`]: what a site's pages call (the token exchange, its users by site id);
//! - [`origins`]: which pages may call the server from a browser (CORS, websocket `Origin`);
//! - [`widget`]: the embeddable widget script and the web client's files.

pub mod admin;
pub mod api;
pub mod origins;
pub mod tokens;
pub mod users_info;
pub mod widget;
