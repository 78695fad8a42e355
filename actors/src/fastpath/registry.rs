//! `Fastpath`: the registry of workgroups and of visitors. One per server.
//!
//! It starts every stored workgroup, creates, updates and deletes them (store first), checks
//! that an agent is a member before its command reaches the workgroup, finds the workgroup
//! of an offer from its id (`{workgroup}-{n}`), and keeps the index of visitors: user id →
//! workgroup and token. A visitor's id is unique while its request or chat is live (409
//! otherwise); once it has ended, a new request with the same id replaces it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;
use subtle::ConstantTimeEq;

use super::agents::{AgentCommand, Answer};
use super::machine::Waiting;
use super::visitors::{Enqueue, ForVisitor, ForgetVisitor, VisitorAction, VisitorReply};
use super::workgroup::{DescribeQueue, Dissolve, QueueView, Reconfigure, VisitorReport, Workgroup};
use super::{FastpathError, FastpathOptions, WorkgroupRecord};
use crate::groups::{GroupChanged, GroupIndex};
use crate::muc::conference::Conference;
use crate::muc::MucOptions;
use crate::random::random_hex;
use crate::router::Router;
use crate::storage::{StoreError, WorkgroupStorage};

/// The registry.
pub struct Fastpath {
    options: Arc<FastpathOptions>,
    muc: Arc<MucOptions>,
    store: Arc<dyn WorkgroupStorage>,
    router: Addr<Router>,
    conference: Addr<Conference>,
    workgroups: BTreeMap<String, Entry>,
    /// Names being written to the store.
    pending: HashSet<String>,
    visitors: HashMap<String, VisitorEntry>,
    /// Workgroups loaded from the store, started when the actor starts.
    stored: Vec<WorkgroupRecord>,
    /// Resolves agents by user group.
    groups: Arc<GroupIndex>,
}

struct Entry {
    record: WorkgroupRecord,
    addr: Addr<Workgroup>,
}

struct VisitorEntry {
    workgroup: String,
    token: String,
    /// Its request or chat is over; a new request may take the id.
    settled: bool,
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Fastpath {
    pub fn new(
        options: FastpathOptions,
        muc: Arc<MucOptions>,
        store: Arc<dyn WorkgroupStorage>,
        router: Addr<Router>,
        conference: Addr<Conference>,
        stored: Vec<WorkgroupRecord>,
    ) -> Self {
        Fastpath {
            options: Arc::new(options),
            muc,
            store,
            router,
            conference,
            workgroups: BTreeMap::new(),
            pending: HashSet::new(),
            visitors: HashMap::new(),
            stored,
            groups: Arc::default(),
        }
    }

    /// Workgroups may take their agents from user groups, resolved with this index.
    pub fn with_groups(mut self, groups: Arc<GroupIndex>) -> Self {
        self.groups = groups;
        self
    }

    fn start_workgroup(&mut self, record: WorkgroupRecord, ctx: &mut Context<Self>) {
        let addr = Workgroup::new(
            self.options.clone(),
            self.muc.clone(),
            record.clone(),
            self.store.clone(),
            self.router.clone(),
            self.conference.clone(),
            ctx.address().recipient(),
        )
        .with_groups(self.groups.clone())
        .start();
        self.workgroups.insert(record.name.clone(), Entry { record, addr });
    }

    fn entry(&self, name: &str) -> Result<&Entry, FastpathError> {
        self.workgroups.get(name).ok_or_else(|| FastpathError::NoWorkgroup(name.to_owned()))
    }

    fn member_entry(&self, name: &str, agent: &str) -> Result<&Entry, FastpathError> {
        let entry = self.entry(name)?;
        if self.groups.admits(&entry.record.members, &entry.record.member_groups, agent) {
            Ok(entry)
        } else {
            Err(FastpathError::NotMember(name.to_owned()))
        }
    }
}

impl Actor for Fastpath {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for record in std::mem::take(&mut self.stored) {
            self.start_workgroup(record, ctx);
        }
    }
}

type Reply<T> = ResponseActFuture<Fastpath, Result<T, FastpathError>>;

fn ready<T: 'static>(result: Result<T, FastpathError>) -> Reply<T> {
    Box::pin(fut::ready(result))
}

/// Forwards a message to a workgroup, mapping a stopped actor to `Gone`.
fn forward<M, T>(addr: &Addr<Workgroup>, msg: M) -> impl std::future::Future<Output = Result<T, FastpathError>>
where
    M: Message<Result = Result<T, FastpathError>> + Send + 'static,
    T: Send + 'static,
    Workgroup: Handler<M>,
{
    let sent = addr.send(msg);
    async move { sent.await.map_err(|_| FastpathError::Gone)? }
}

// ---- administration ----------------------------------------------------------------------

/// Every workgroup, by name.
#[derive(Message)]
#[rtype(result = "Vec<WorkgroupRecord>")]
pub struct ListWorkgroups;

impl Handler<ListWorkgroups> for Fastpath {
    type Result = MessageResult<ListWorkgroups>;

    fn handle(&mut self, _: ListWorkgroups, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.workgroups.values().map(|e| e.record.clone()).collect())
    }
}

/// One workgroup.
#[derive(Message)]
#[rtype(result = "Result<WorkgroupRecord, FastpathError>")]
pub struct GetWorkgroup {
    pub name: String,
}

impl Handler<GetWorkgroup> for Fastpath {
    type Result = Result<WorkgroupRecord, FastpathError>;

    fn handle(&mut self, msg: GetWorkgroup, _: &mut Context<Self>) -> Self::Result {
        Ok(self.entry(&msg.name)?.record.clone())
    }
}

/// Create (`create`) or replace a workgroup: stored first, then started or reconfigured.
#[derive(Message)]
#[rtype(result = "Result<WorkgroupRecord, FastpathError>")]
pub struct SaveWorkgroup {
    pub record: WorkgroupRecord,
    pub create: bool,
}

impl Handler<SaveWorkgroup> for Fastpath {
    type Result = Reply<WorkgroupRecord>;

    fn handle(&mut self, msg: SaveWorkgroup, _: &mut Context<Self>) -> Self::Result {
        let mut record = msg.record;
        let name = record.name.clone();
        if self.pending.contains(&name) {
            return ready(Err(FastpathError::Conflict(format!("workgroup '{name}' is being changed; try again"))));
        }
        let write = if msg.create {
            if self.workgroups.contains_key(&name) {
                return ready(Err(FastpathError::Exists(name)));
            }
            futures_util::future::Either::Left(self.store.create_workgroup(record.clone()))
        } else {
            match self.workgroups.get(&name) {
                None => return ready(Err(FastpathError::NoWorkgroup(name))),
                Some(existing) => record.created_ms = existing.record.created_ms,
            }
            futures_util::future::Either::Right(self.store.update_workgroup(record.clone()))
        };
        self.pending.insert(name.clone());
        Box::pin(write.into_actor(self).map(move |result, act, ctx| {
            act.pending.remove(&name);
            match result {
                Ok(()) => {
                    match act.workgroups.get_mut(&name) {
                        Some(entry) => {
                            entry.record = record.clone();
                            entry.addr.do_send(Reconfigure { record: record.clone() });
                        }
                        None => act.start_workgroup(record.clone(), ctx),
                    }
                    Ok(record)
                }
                Err(StoreError::Conflict(_)) => Err(FastpathError::Exists(name)),
                Err(e) => Err(e.into()),
            }
        }))
    }
}

/// Delete a workgroup (its chat records and transcripts stay).
#[derive(Message)]
#[rtype(result = "Result<(), FastpathError>")]
pub struct DeleteWorkgroup {
    pub name: String,
}

impl Handler<DeleteWorkgroup> for Fastpath {
    type Result = Reply<()>;

    fn handle(&mut self, msg: DeleteWorkgroup, _: &mut Context<Self>) -> Self::Result {
        let name = msg.name;
        if let Err(e) = self.entry(&name) {
            return ready(Err(e));
        }
        if !self.pending.insert(name.clone()) {
            return ready(Err(FastpathError::Conflict(format!("workgroup '{name}' is being changed; try again"))));
        }
        Box::pin(self.store.delete_workgroup(name.clone()).into_actor(self).map(move |result, act, _| {
            act.pending.remove(&name);
            result?;
            if let Some(entry) = act.workgroups.remove(&name) {
                entry.addr.do_send(Dissolve);
            }
            act.visitors.retain(|_, v| v.workgroup != name);
            Ok(())
        }))
    }
}

// ---- agents ------------------------------------------------------------------------------

/// The workgroups `username` is an agent (member) of.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct MemberOf {
    pub username: String,
}

impl Handler<MemberOf> for Fastpath {
    type Result = MessageResult<MemberOf>;

    fn handle(&mut self, msg: MemberOf, _: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.workgroups
                .values()
                .filter(|e| self.groups.admits(&e.record.members, &e.record.member_groups, &msg.username))
                .map(|e| e.record.name.clone())
                .collect(),
        )
    }
}

/// An agent goes online or offline for a workgroup; `NotMember` unless it is a member.
#[derive(Message)]
#[rtype(result = "Result<(), FastpathError>")]
pub struct SetAgent {
    pub workgroup: String,
    pub agent: String,
    pub online: bool,
}

impl Handler<SetAgent> for Fastpath {
    type Result = ResponseFuture<Result<(), FastpathError>>;

    fn handle(&mut self, msg: SetAgent, _: &mut Context<Self>) -> Self::Result {
        match self.member_entry(&msg.workgroup, &msg.agent) {
            Ok(entry) => Box::pin(forward(&entry.addr, AgentCommand { agent: msg.agent, online: msg.online })),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

/// The queues of every workgroup `agent` is a member of.
#[derive(Message)]
#[rtype(result = "Vec<QueueView>")]
pub struct AgentQueues {
    pub agent: String,
}

impl Handler<AgentQueues> for Fastpath {
    type Result = ResponseFuture<Vec<QueueView>>;

    fn handle(&mut self, msg: AgentQueues, _: &mut Context<Self>) -> Self::Result {
        let asks: Vec<_> = self
            .workgroups
            .values()
            .filter(|e| self.groups.admits(&e.record.members, &e.record.member_groups, &msg.agent))
            .map(|e| e.addr.send(DescribeQueue))
            .collect();
        Box::pin(async move { futures_util::future::join_all(asks).await.into_iter().filter_map(Result::ok).collect() })
    }
}

/// An agent answers an offer.
#[derive(Message)]
#[rtype(result = "Result<(), FastpathError>")]
pub struct AnswerOffer {
    pub agent: String,
    pub offer_id: String,
    pub accept: bool,
}

impl Handler<AnswerOffer> for Fastpath {
    type Result = ResponseFuture<Result<(), FastpathError>>;

    fn handle(&mut self, msg: AnswerOffer, _: &mut Context<Self>) -> Self::Result {
        let workgroup = msg.offer_id.rsplit_once('-').map(|(name, _)| name).and_then(|name| self.workgroups.get(name));
        match workgroup {
            Some(entry) => {
                Box::pin(forward(&entry.addr, Answer { agent: msg.agent, offer_id: msg.offer_id, accept: msg.accept }))
            }
            None => Box::pin(std::future::ready(Err(FastpathError::UnknownOffer(msg.offer_id)))),
        }
    }
}

// ---- visitors ----------------------------------------------------------------------------

/// A visitor asks for an agent. Replies with its place and the token for its doors.
#[derive(Message)]
#[rtype(result = "Result<(Waiting, String), FastpathError>")]
pub struct Ask {
    pub workgroup: String,
    pub user_id: String,
    pub nickname: String,
    pub email: String,
    pub question: String,
    /// A signed-in user queueing as itself; `None` for a web visitor.
    pub user: Option<String>,
}

impl Handler<Ask> for Fastpath {
    type Result = Reply<(Waiting, String)>;

    fn handle(&mut self, msg: Ask, _: &mut Context<Self>) -> Self::Result {
        let addr = match self.entry(&msg.workgroup) {
            Ok(entry) => entry.addr.clone(),
            Err(e) => return ready(Err(e)),
        };
        if let Some(existing) = self.visitors.get(&msg.user_id) {
            if !existing.settled {
                return ready(Err(FastpathError::AlreadyQueued(msg.user_id)));
            }
            if let Some(old) = self.workgroups.get(&existing.workgroup) {
                old.addr.do_send(ForgetVisitor { user_id: msg.user_id.clone(), token: existing.token.clone() });
            }
        }
        let token = format!("visitor-{}", random_hex(24));
        self.visitors.insert(
            msg.user_id.clone(),
            VisitorEntry { workgroup: msg.workgroup.clone(), token: token.clone(), settled: false },
        );
        let user_id = msg.user_id.clone();
        let enqueue = Enqueue {
            user_id: msg.user_id,
            token: token.clone(),
            nickname: msg.nickname,
            email: msg.email,
            question: msg.question,
            user: msg.user,
        };
        Box::pin(forward(&addr, enqueue).into_actor(self).map(move |result, act, _| match result {
            Ok(waiting) => Ok((waiting, token)),
            Err(e) => {
                if act.visitors.get(&user_id).is_some_and(|v| v.token == token) {
                    act.visitors.remove(&user_id);
                }
                Err(e)
            }
        }))
    }
}

/// A visitor's action, with its token.
#[derive(Message)]
#[rtype(result = "Result<VisitorReply, FastpathError>")]
pub struct VisitorCall {
    pub user_id: String,
    pub token: String,
    pub action: VisitorAction,
}

impl Handler<VisitorCall> for Fastpath {
    type Result = ResponseFuture<Result<VisitorReply, FastpathError>>;

    fn handle(&mut self, msg: VisitorCall, _: &mut Context<Self>) -> Self::Result {
        let Some(visitor) = self.visitors.get(&msg.user_id) else {
            return Box::pin(std::future::ready(Err(FastpathError::UnknownVisitor(msg.user_id))));
        };
        if !same_secret(&visitor.token, &msg.token) {
            return Box::pin(std::future::ready(Err(FastpathError::BadToken(msg.user_id))));
        }
        match self.workgroups.get(&visitor.workgroup) {
            Some(entry) => Box::pin(forward(&entry.addr, ForVisitor { user_id: msg.user_id, action: msg.action })),
            None => Box::pin(std::future::ready(Err(FastpathError::UnknownVisitor(msg.user_id)))),
        }
    }
}

/// A signed-in user leaves the queue it joined through the workgroup IQ.
#[derive(Message)]
#[rtype(result = "Result<VisitorReply, FastpathError>")]
pub struct UserDepart {
    pub workgroup: String,
    /// The user's id in the queue (its bare address).
    pub user_id: String,
}

impl Handler<UserDepart> for Fastpath {
    type Result = ResponseFuture<Result<VisitorReply, FastpathError>>;

    fn handle(&mut self, msg: UserDepart, _: &mut Context<Self>) -> Self::Result {
        let known = self.visitors.get(&msg.user_id).filter(|v| v.workgroup == msg.workgroup && !v.settled);
        match (known, self.workgroups.get(&msg.workgroup)) {
            (Some(_), Some(entry)) => {
                Box::pin(forward(&entry.addr, ForVisitor { user_id: msg.user_id, action: VisitorAction::Leave }))
            }
            _ => Box::pin(std::future::ready(Err(FastpathError::UnknownVisitor(msg.user_id)))),
        }
    }
}

/// The visitor a token belongs to (a websocket URL carries only the token).
#[derive(Message)]
#[rtype(result = "Result<String, FastpathError>")]
pub struct FindVisitor {
    pub token: String,
}

impl Handler<FindVisitor> for Fastpath {
    type Result = Result<String, FastpathError>;

    fn handle(&mut self, msg: FindVisitor, _: &mut Context<Self>) -> Self::Result {
        self.visitors
            .iter()
            .find(|(_, v)| same_secret(&v.token, &msg.token))
            .map(|(id, _)| id.clone())
            .ok_or(FastpathError::UnknownToken)
    }
}

impl Handler<VisitorReport> for Fastpath {
    type Result = ();

    fn handle(&mut self, msg: VisitorReport, _: &mut Context<Self>) {
        match msg {
            VisitorReport::Settled { user_id, token } => {
                if let Some(visitor) = self.visitors.get_mut(&user_id).filter(|v| v.token == token) {
                    visitor.settled = true;
                }
            }
            VisitorReport::Gone { user_id, token } => {
                if self.visitors.get(&user_id).is_some_and(|v| v.token == token) {
                    self.visitors.remove(&user_id);
                }
            }
        }
    }
}

/// A group changed: workgroups that take agents from it reconsider them (an agent no longer
/// in it goes offline); a deleted group leaves their records.
impl Handler<GroupChanged> for Fastpath {
    type Result = ();

    fn handle(&mut self, msg: GroupChanged, _: &mut Context<Self>) {
        for entry in self.workgroups.values_mut().filter(|e| e.record.member_groups.contains(&msg.group)) {
            if msg.deleted {
                entry.record.member_groups.remove(&msg.group);
            }
            entry.addr.do_send(Reconfigure { record: entry.record.clone() });
        }
    }
}
