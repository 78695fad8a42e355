//! Where a live connection (an SSE stream or a websocket) is attached, and how it detaches
//! when it closes: to a user's station through the router, or to a Fastpath visitor's
//! station through the Fastpath registry (visitors have no account; their token proves
//! them). Both doors share this, so neither knows the other kind of owner.

use actix::{Addr, Recipient};
use switchboard_actors::fastpath::registry::{Fastpath, VisitorCall};
use switchboard_actors::fastpath::visitors::{VisitorAction, VisitorReply};
use switchboard_actors::router::{Detach, Router};
use switchboard_actors::user_session::UserSession;
use switchboard_actors::Push;

use crate::error::ApiError;
use crate::state::AppState;

/// The owner of an attached connection.
pub enum Binding {
    User { router: Addr<Router>, session: Addr<UserSession>, username: String, resource: String, connection_id: u64 },
    Visitor { fastpath: Addr<Fastpath>, user_id: String, token: String, connection_id: u64 },
}

impl Binding {
    /// Tells the owner that the connection closed.
    pub fn detach(self) {
        match self {
            Binding::User { router, username, resource, connection_id, .. } => {
                router.do_send(Detach { username, resource, connection_id })
            }
            Binding::Visitor { fastpath, user_id, token, connection_id } => {
                fastpath.do_send(VisitorCall { user_id, token, action: VisitorAction::Detach(connection_id) })
            }
        }
    }

    /// The user's session, for an account's connection.
    pub fn session(&self) -> Option<&Addr<UserSession>> {
        match self {
            Binding::User { session, .. } => Some(session),
            Binding::Visitor { .. } => None,
        }
    }

    /// Who the connection belongs to, for logs.
    pub fn owner(&self) -> &str {
        match self {
            Binding::User { username, .. } => username,
            Binding::Visitor { user_id, .. } => user_id,
        }
    }
}

/// Attaches a connection to a visitor's station; replies with the binding and the
/// visitor's address.
pub async fn attach_visitor(
    state: &AppState,
    user_id: String,
    token: String,
    connection: Recipient<Push>,
) -> Result<(Binding, String), ApiError> {
    let call =
        VisitorCall { user_id: user_id.clone(), token: token.clone(), action: VisitorAction::Attach(connection) };
    match state.fastpath.send(call).await?? {
        VisitorReply::Attached { connection_id, address } => {
            Ok((Binding::Visitor { fastpath: state.fastpath.clone(), user_id, token, connection_id }, address))
        }
        _ => Err(ApiError::internal("unexpected reply to an attach")),
    }
}
