//! What agents do in a workgroup: go online or offline (`AgentCommand`), show as available
//! or not (`UserStatus` from the router's watch), and answer offers (`Answer`).

use actix::prelude::*;

use super::machine::Input;
use super::workgroup::Workgroup;
use super::FastpathError;
use crate::router::{UnwatchUser, UserStatus, WatchUser};

/// An agent goes online (`true`) or offline for this workgroup. Sent by the registry,
/// which checked membership.
#[derive(Message)]
#[rtype(result = "Result<(), FastpathError>")]
pub struct AgentCommand {
    pub agent: String,
    pub online: bool,
}

impl Handler<AgentCommand> for Workgroup {
    type Result = ResponseActFuture<Self, Result<(), FastpathError>>;

    fn handle(&mut self, msg: AgentCommand, ctx: &mut Context<Self>) -> Self::Result {
        let agent = msg.agent;
        if !msg.online {
            if !self.machine.is_agent(&agent) {
                return Box::pin(fut::ready(Err(FastpathError::NotOnline(self.record.name.clone()))));
            }
            self.router.do_send(UnwatchUser { username: agent.clone(), key: self.watch_key() });
            let _ = self.apply(Input::AgentOffline { agent }, ctx);
            return Box::pin(fut::ready(Ok(())));
        }
        if self.machine.is_agent(&agent) {
            return Box::pin(fut::ready(Ok(())));
        }
        let watch = WatchUser { username: agent.clone(), key: self.watch_key(), watcher: ctx.address().recipient() };
        Box::pin(self.router.send(watch).into_actor(self).map(move |status, act, ctx| {
            let status = status.map_err(|_| FastpathError::Gone)?;
            if !act.machine.is_agent(&agent) {
                let _ = act.apply(Input::AgentOnline { agent: agent.clone() }, ctx);
            }
            let _ = act.apply(Input::AgentAvailability { agent, available: status.available_to_chat }, ctx);
            Ok(())
        }))
    }
}

impl Handler<UserStatus> for Workgroup {
    type Result = ();

    fn handle(&mut self, msg: UserStatus, ctx: &mut Context<Self>) {
        if !self.machine.is_agent(&msg.username) {
            return;
        }
        if msg.online {
            let _ = self.apply(Input::AgentAvailability { agent: msg.username, available: msg.available_to_chat }, ctx);
        } else {
            // Every station ended: the agent is offline, its pending offer counts as rejected.
            self.router.do_send(UnwatchUser { username: msg.username.clone(), key: self.watch_key() });
            let _ = self.apply(Input::AgentOffline { agent: msg.username }, ctx);
        }
    }
}

/// An agent accepts or rejects an offer. Sent by the registry.
#[derive(Message)]
#[rtype(result = "Result<(), FastpathError>")]
pub struct Answer {
    pub agent: String,
    pub offer_id: String,
    pub accept: bool,
}

impl Handler<Answer> for Workgroup {
    type Result = Result<(), FastpathError>;

    fn handle(&mut self, msg: Answer, ctx: &mut Context<Self>) -> Self::Result {
        let input = if msg.accept {
            Input::Accept { agent: msg.agent, offer_id: msg.offer_id }
        } else {
            Input::Reject { agent: msg.agent, offer_id: msg.offer_id }
        };
        Ok(self.apply(input, ctx)?)
    }
}
