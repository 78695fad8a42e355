//! `Fastpath`: the registry of workgroups and of visitors. One per server.
//!
//! It starts every stored workgroup, creates, updates and deletes them (store first), checks
//! that an agent is a member before its command reaches the workgroup, finds the workgroup
//! of an offer from its id (`{workgroup}-{n}`), and keeps the index of visitors: user id →
//! workgroup and token. A visitor's id is unique while its request or chat is live (409
//! otherwise); once it has ended, a new request with the same id replaces it.
//!
//! In a cluster ([`Fastpath::clustered`]) one node at a time serves Fastpath: the one that
//! holds the `fastpath` lease runs every workgroup and keeps the visitors' index; the
//! registries of the other nodes forward each call to it ([`FastpathCall`]). A visitor's
//! connection on another node is attached by a stream number: the serving node relays what
//! the visitor's station pushes. When the serving node dies another takes the lease and
//! starts the workgroups from the store (their queues and live visitors were the dead
//! node's, and are gone with it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use subtle::ConstantTimeEq;

use super::agents::{AgentCommand, Answer};
use super::calls::{FastpathAnswer, FastpathCall, RemoteVisitorAction};
use super::machine::Waiting;
use super::visitors::{Enqueue, ForVisitor, ForgetVisitor, VisitorAction, VisitorReply};
use super::workgroup::{DescribeQueue, Dissolve, QueueView, Reconfigure, VisitorReport, Workgroup};
use super::{FastpathError, FastpathOptions, WorkgroupRecord};
use crate::clock::now_ms;
use crate::cluster::{AskPeers, FromPeer, Relay, Targets, ToPeers};
use crate::groups::{GroupChanged, GroupIndex};
use crate::model::event::Push;
use crate::model::{Event, Payload};
use crate::muc::conference::Conference;
use crate::muc::MucOptions;
use crate::random::random_hex;
use crate::router::Router;
use crate::storage::{LeaseStorage, StoreError, WorkgroupStorage};

/// The lease of the node that serves Fastpath.
const LEASE: &str = "fastpath";

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
    /// Set on a node of a cluster.
    cluster: Option<FastpathCluster>,
}

/// The registry's side of a cluster.
struct FastpathCluster {
    node: String,
    leases: Arc<dyn LeaseStorage>,
    lease_ms: i64,
    every: Duration,
    link: Option<(Recipient<ToPeers>, Recipient<AskPeers>)>,
    /// The node serving Fastpath, as the last claim found it.
    server: Option<String>,
    /// This node serves, since its claim at `granted_ms` (epoch ms).
    serving: bool,
    granted_ms: i64,
    /// Connections here attached to visitors' stations on the serving node, by stream.
    streams: HashMap<u64, Recipient<Push>>,
    /// (visitor, connection id on the serving node) → stream.
    attached: HashMap<(String, u64), u64>,
    next_stream: u64,
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
            cluster: None,
        }
    }

    /// A node of a cluster, `node`: it serves Fastpath while it holds the lease in `leases`
    /// (held for `lease`, claimed `every`), and forwards to the node that does otherwise.
    /// Nothing starts before the cluster link is up (`LinkFastpath`).
    pub fn clustered(mut self, node: String, leases: Arc<dyn LeaseStorage>, lease: Duration, every: Duration) -> Self {
        self.cluster = Some(FastpathCluster {
            node,
            leases,
            lease_ms: lease.as_millis() as i64,
            every,
            link: None,
            server: None,
            serving: false,
            granted_ms: 0,
            streams: HashMap::new(),
            attached: HashMap::new(),
            next_stream: 1,
        });
        self
    }

    /// Where a call goes: `Ok(None)` here (one machine, or this node serves), `Ok(Some)` to
    /// the serving peer; an error while no node is known to serve.
    fn server(&self) -> Result<Option<String>, FastpathError> {
        let Some(cluster) = &self.cluster else {
            return Ok(None);
        };
        if cluster.serving {
            return Ok(None);
        }
        match &cluster.server {
            Some(node) if *node != cluster.node => Ok(Some(node.clone())),
            _ => Err(FastpathError::Unreachable("no cluster node serves Fastpath yet; try again shortly".into())),
        }
    }

    /// Asks the serving `node` and reads its answer with `pick`.
    fn ask_server<T: 'static>(
        &self,
        node: String,
        call: FastpathCall,
        pick: fn(FastpathAnswer) -> Option<T>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, FastpathError>>>> {
        let asked =
            self.cluster.as_ref().and_then(|c| c.link.as_ref()).map(|(_, asker)| {
                asker.send(AskPeers { nodes: vec![node.clone()], relay: Relay::FastpathCall { call } })
            });
        Box::pin(async move {
            let answers = match asked {
                Some(asked) => asked.await.unwrap_or_default(),
                None => Vec::new(),
            };
            let answer = answers.into_iter().find_map(|(_, relay)| match relay {
                Relay::FastpathAnswer { answer } => Some(answer),
                _ => None,
            });
            let unreachable = || {
                FastpathError::Unreachable(format!(
                    "cluster node '{node}' serves Fastpath and did not answer; try again shortly"
                ))
            };
            let answer = answer.ok_or_else(unreachable)??;
            pick(answer)
                .ok_or_else(|| FastpathError::BadRequest("the serving node answered with something else".into()))
        })
    }

    /// Claims (or renews) the lease; starts serving when granted, stops when another node
    /// holds it or this one could not renew in time.
    fn claim(&mut self, ctx: &mut Context<Self>) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        let now = now_ms();
        let give_up_after = cluster.lease_ms - 2 * cluster.every.as_millis() as i64;
        if cluster.serving && now - cluster.granted_ms > give_up_after {
            tracing::warn!("could not renew the Fastpath lease in time; no longer serving");
            self.retire();
        }
        let Some(cluster) = &self.cluster else {
            return;
        };
        let node = cluster.node.clone();
        let claimed = cluster.leases.claim_leases(vec![LEASE.into()], node.clone(), now, now + cluster.lease_ms);
        ctx.spawn(claimed.into_actor(self).map(move |result, act, ctx| {
            let holder = match result {
                Ok(mut holders) => holders.pop(),
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim the Fastpath lease");
                    None
                }
            };
            let (Some(holder), Some(cluster)) = (holder, &mut act.cluster) else {
                return;
            };
            let mine = holder == node;
            cluster.server = Some(holder);
            if mine {
                cluster.granted_ms = now;
                if !cluster.serving {
                    cluster.serving = true;
                    act.serve(ctx);
                }
            } else if cluster.serving {
                act.retire();
            }
        }));
    }

    /// This node took the lease: every stored workgroup starts here.
    fn serve(&mut self, ctx: &mut Context<Self>) {
        tracing::info!("serving Fastpath");
        let loaded = self.store.all_workgroups();
        ctx.wait(loaded.into_actor(self).map(|result, act, ctx| match result {
            Ok(records) => {
                for record in records {
                    if !act.workgroups.contains_key(&record.name) {
                        act.start_workgroup(record, ctx);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not load the workgroups"),
        }));
    }

    /// Another node serves now: this node's workgroups stop.
    fn retire(&mut self) {
        if let Some(cluster) = &mut self.cluster {
            cluster.serving = false;
        }
        for (_, entry) in std::mem::take(&mut self.workgroups) {
            entry.addr.do_send(Dissolve);
        }
        self.visitors.clear();
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
        if self.cluster.is_some() {
            self.stored.clear(); // The serving node loads them when it takes the lease.
            return;
        }
        for record in std::mem::take(&mut self.stored) {
            self.start_workgroup(record, ctx);
        }
    }
}

type Reply<T> = ResponseActFuture<Fastpath, Result<T, FastpathError>>;

/// What a handler answers at once, or after asking the serving node.
type Later<T> = ResponseFuture<Result<T, FastpathError>>;

fn now<T: 'static>(result: Result<T, FastpathError>) -> Later<T> {
    Box::pin(std::future::ready(result))
}

/// Forwards `$call` to the serving node when this one does not serve, reading the answer
/// with `$pick`; `$wrap` makes the handler's result of the future.
macro_rules! or_forward {
    ($self:ident, $call:expr, $pick:expr, $wrap:expr) => {
        match $self.server() {
            Ok(None) => {}
            Ok(Some(node)) => return $wrap($self.ask_server(node, $call, $pick), $self),
            Err(e) => return $wrap(Box::pin(std::future::ready(Err(e))), $self),
        }
    };
}

fn plain<T: 'static>(later: Later<T>, _: &Fastpath) -> Later<T> {
    later
}

fn in_actor<T: 'static>(later: Later<T>, fastpath: &Fastpath) -> Reply<T> {
    Box::pin(later.into_actor(fastpath))
}

fn done(answer: FastpathAnswer) -> Option<()> {
    matches!(answer, FastpathAnswer::Done).then_some(())
}

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
#[rtype(result = "Result<Vec<WorkgroupRecord>, FastpathError>")]
pub struct ListWorkgroups;

impl Handler<ListWorkgroups> for Fastpath {
    type Result = Later<Vec<WorkgroupRecord>>;

    fn handle(&mut self, _: ListWorkgroups, _: &mut Context<Self>) -> Self::Result {
        let pick = |a| match a {
            FastpathAnswer::Workgroups(list) => Some(list),
            _ => None,
        };
        or_forward!(self, FastpathCall::ListWorkgroups, pick, plain);
        now(Ok(self.workgroups.values().map(|e| e.record.clone()).collect()))
    }
}

fn one_workgroup(answer: FastpathAnswer) -> Option<WorkgroupRecord> {
    match answer {
        FastpathAnswer::Workgroup(record) => Some(*record),
        _ => None,
    }
}

/// One workgroup.
#[derive(Message)]
#[rtype(result = "Result<WorkgroupRecord, FastpathError>")]
pub struct GetWorkgroup {
    pub name: String,
}

impl Handler<GetWorkgroup> for Fastpath {
    type Result = Later<WorkgroupRecord>;

    fn handle(&mut self, msg: GetWorkgroup, _: &mut Context<Self>) -> Self::Result {
        or_forward!(self, FastpathCall::GetWorkgroup { name: msg.name }, one_workgroup, plain);
        now(self.entry(&msg.name).map(|e| e.record.clone()))
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
        let call = FastpathCall::SaveWorkgroup { record: msg.record.clone(), create: msg.create };
        or_forward!(self, call, one_workgroup, in_actor);
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
        or_forward!(self, FastpathCall::DeleteWorkgroup { name: msg.name.clone() }, done, in_actor);
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
#[rtype(result = "Result<Vec<String>, FastpathError>")]
pub struct MemberOf {
    pub username: String,
}

impl Handler<MemberOf> for Fastpath {
    type Result = Later<Vec<String>>;

    fn handle(&mut self, msg: MemberOf, _: &mut Context<Self>) -> Self::Result {
        let pick = |a| match a {
            FastpathAnswer::Names(names) => Some(names),
            _ => None,
        };
        or_forward!(self, FastpathCall::MemberOf { username: msg.username.clone() }, pick, plain);
        now(Ok(self
            .workgroups
            .values()
            .filter(|e| self.groups.admits(&e.record.members, &e.record.member_groups, &msg.username))
            .map(|e| e.record.name.clone())
            .collect()))
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
        let call =
            FastpathCall::SetAgent { workgroup: msg.workgroup.clone(), agent: msg.agent.clone(), online: msg.online };
        or_forward!(self, call, done, plain);
        match self.member_entry(&msg.workgroup, &msg.agent) {
            Ok(entry) => Box::pin(forward(&entry.addr, AgentCommand { agent: msg.agent, online: msg.online })),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }
}

/// The queues of every workgroup `agent` is a member of.
#[derive(Message)]
#[rtype(result = "Result<Vec<QueueView>, FastpathError>")]
pub struct AgentQueues {
    pub agent: String,
}

impl Handler<AgentQueues> for Fastpath {
    type Result = Later<Vec<QueueView>>;

    fn handle(&mut self, msg: AgentQueues, _: &mut Context<Self>) -> Self::Result {
        let pick = |a| match a {
            FastpathAnswer::Queues(queues) => Some(queues),
            _ => None,
        };
        or_forward!(self, FastpathCall::AgentQueues { agent: msg.agent.clone() }, pick, plain);
        let asks: Vec<_> = self
            .workgroups
            .values()
            .filter(|e| self.groups.admits(&e.record.members, &e.record.member_groups, &msg.agent))
            .map(|e| e.addr.send(DescribeQueue))
            .collect();
        Box::pin(
            async move { Ok(futures_util::future::join_all(asks).await.into_iter().filter_map(Result::ok).collect()) },
        )
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
        let call =
            FastpathCall::AnswerOffer { agent: msg.agent.clone(), offer_id: msg.offer_id.clone(), accept: msg.accept };
        or_forward!(self, call, done, plain);
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
        let call = FastpathCall::Ask {
            workgroup: msg.workgroup.clone(),
            user_id: msg.user_id.clone(),
            nickname: msg.nickname.clone(),
            email: msg.email.clone(),
            question: msg.question.clone(),
            user: msg.user.clone(),
        };
        let pick = |a| match a {
            FastpathAnswer::Queued(waiting, token) => Some((waiting, token)),
            _ => None,
        };
        or_forward!(self, call, pick, in_actor);
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

    fn handle(&mut self, msg: VisitorCall, ctx: &mut Context<Self>) -> Self::Result {
        match self.server() {
            Ok(None) => {}
            Ok(Some(node)) => return self.forward_visitor_call(node, msg, ctx.address()),
            Err(e) => return now(Err(e)),
        }
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
        let call = FastpathCall::UserDepart { workgroup: msg.workgroup.clone(), user_id: msg.user_id.clone() };
        or_forward!(self, call, visitor_reply, plain);
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
    type Result = Later<String>;

    fn handle(&mut self, msg: FindVisitor, _: &mut Context<Self>) -> Self::Result {
        let pick = |a| match a {
            FastpathAnswer::Found(user_id) => Some(user_id),
            _ => None,
        };
        or_forward!(self, FastpathCall::FindVisitor { token: msg.token.clone() }, pick, plain);
        now(self
            .visitors
            .iter()
            .find(|(_, v)| same_secret(&v.token, &msg.token))
            .map(|(id, _)| id.clone())
            .ok_or(FastpathError::UnknownToken))
    }
}

fn visitor_reply(answer: FastpathAnswer) -> Option<VisitorReply> {
    match answer {
        FastpathAnswer::Visitor(reply) => Some(reply),
        _ => None,
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

/// How many workgroups this node runs (in a cluster, none unless it serves). Sent by
/// `/metrics`.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct CountWorkgroups;

impl Handler<CountWorkgroups> for Fastpath {
    type Result = u64;

    fn handle(&mut self, _: CountWorkgroups, _: &mut Context<Self>) -> u64 {
        self.workgroups.len() as u64
    }
}

/// The cluster link is up: this node claims the Fastpath lease now and every heartbeat.
/// Sent once by the server's cluster link.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkFastpath {
    pub link: Recipient<ToPeers>,
    pub asker: Recipient<AskPeers>,
}

impl Handler<LinkFastpath> for Fastpath {
    type Result = ();

    fn handle(&mut self, msg: LinkFastpath, ctx: &mut Context<Self>) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        cluster.link = Some((msg.link, msg.asker));
        let every = cluster.every;
        self.claim(ctx);
        ctx.run_interval(every, |act, ctx| act.claim(ctx));
    }
}

/// A connection here was attached to a visitor's station on the serving node (`Some`: by
/// that connection id), or could not be (`None`). Sent by the registry to itself.
#[derive(Message)]
#[rtype(result = "()")]
struct StreamAnswered {
    user_id: String,
    stream: u64,
    connection_id: Option<u64>,
}

impl Handler<StreamAnswered> for Fastpath {
    type Result = ();

    fn handle(&mut self, msg: StreamAnswered, _: &mut Context<Self>) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        match msg.connection_id {
            Some(id) => {
                cluster.attached.insert((msg.user_id, id), msg.stream);
            }
            None => {
                cluster.streams.remove(&msg.stream);
            }
        }
    }
}

impl Fastpath {
    /// A visitor's call to the serving `node`; a connection to attach stays here, known there
    /// by a stream number.
    fn forward_visitor_call(&mut self, node: String, msg: VisitorCall, me: Addr<Fastpath>) -> Later<VisitorReply> {
        let Some(cluster) = &mut self.cluster else {
            return now(Err(FastpathError::Gone));
        };
        let user_id = msg.user_id.clone();
        let mut attaching = None;
        let action = match msg.action {
            VisitorAction::Status => RemoteVisitorAction::Status,
            VisitorAction::Leave => RemoteVisitorAction::Leave,
            VisitorAction::JoinRoom => RemoteVisitorAction::JoinRoom,
            VisitorAction::Say(text) => RemoteVisitorAction::Say(text),
            VisitorAction::Attach(connection) => {
                let stream = cluster.next_stream;
                cluster.next_stream += 1;
                cluster.streams.insert(stream, connection);
                attaching = Some(stream);
                RemoteVisitorAction::Attach { stream }
            }
            VisitorAction::Detach(id) => {
                if let Some(stream) = cluster.attached.remove(&(user_id.clone(), id)) {
                    cluster.streams.remove(&stream);
                }
                RemoteVisitorAction::Detach(id)
            }
        };
        let call = FastpathCall::Visitor { user_id: msg.user_id, token: msg.token, action };
        let asked = self.ask_server(node, call, visitor_reply);
        Box::pin(async move {
            let reply = asked.await;
            if let Some(stream) = attaching {
                let connection_id = match &reply {
                    Ok(VisitorReply::Attached { connection_id, .. }) => Some(*connection_id),
                    _ => None,
                };
                me.do_send(StreamAnswered { user_id, stream, connection_id });
            }
            reply
        })
    }

    /// A peer's call, made to this registry now (so that calls keep their order); the answer
    /// once it is given.
    fn answer_call(
        &self,
        me: Addr<Fastpath>,
        node: String,
        call: FastpathCall,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<FastpathAnswer, FastpathError>>>> {
        use futures_util::FutureExt;
        fn read<T>(
            sent: Result<Result<T, FastpathError>, MailboxError>,
            answer: impl FnOnce(T) -> FastpathAnswer,
        ) -> Result<FastpathAnswer, FastpathError> {
            sent.map_err(|_| FastpathError::Gone)?.map(answer)
        }
        match call {
            FastpathCall::ListWorkgroups => {
                me.send(ListWorkgroups).map(|s| read(s, FastpathAnswer::Workgroups)).boxed_local()
            }
            FastpathCall::GetWorkgroup { name } => me
                .send(GetWorkgroup { name })
                .map(|s| read(s, |r| FastpathAnswer::Workgroup(Box::new(r))))
                .boxed_local(),
            FastpathCall::SaveWorkgroup { record, create } => me
                .send(SaveWorkgroup { record, create })
                .map(|s| read(s, |r| FastpathAnswer::Workgroup(Box::new(r))))
                .boxed_local(),
            FastpathCall::DeleteWorkgroup { name } => {
                me.send(DeleteWorkgroup { name }).map(|s| read(s, |()| FastpathAnswer::Done)).boxed_local()
            }
            FastpathCall::MemberOf { username } => {
                me.send(MemberOf { username }).map(|s| read(s, FastpathAnswer::Names)).boxed_local()
            }
            FastpathCall::SetAgent { workgroup, agent, online } => {
                me.send(SetAgent { workgroup, agent, online }).map(|s| read(s, |()| FastpathAnswer::Done)).boxed_local()
            }
            FastpathCall::AgentQueues { agent } => {
                me.send(AgentQueues { agent }).map(|s| read(s, FastpathAnswer::Queues)).boxed_local()
            }
            FastpathCall::AnswerOffer { agent, offer_id, accept } => me
                .send(AnswerOffer { agent, offer_id, accept })
                .map(|s| read(s, |()| FastpathAnswer::Done))
                .boxed_local(),
            FastpathCall::Ask { workgroup, user_id, nickname, email, question, user } => me
                .send(Ask { workgroup, user_id, nickname, email, question, user })
                .map(|s| read(s, |(waiting, token)| FastpathAnswer::Queued(waiting, token)))
                .boxed_local(),
            FastpathCall::Visitor { user_id, token, action } => {
                let action = match action {
                    RemoteVisitorAction::Status => VisitorAction::Status,
                    RemoteVisitorAction::Leave => VisitorAction::Leave,
                    RemoteVisitorAction::JoinRoom => VisitorAction::JoinRoom,
                    RemoteVisitorAction::Say(text) => VisitorAction::Say(text),
                    RemoteVisitorAction::Attach { stream } => {
                        let link = self.cluster.as_ref().and_then(|c| c.link.as_ref()).map(|(link, _)| link.clone());
                        let Some(link) = link else {
                            return Box::pin(std::future::ready(Err(FastpathError::Gone)));
                        };
                        VisitorAction::Attach(RelayedPush { node, stream, link }.start().recipient())
                    }
                    RemoteVisitorAction::Detach(id) => VisitorAction::Detach(id),
                };
                me.send(VisitorCall { user_id, token, action }).map(|s| read(s, FastpathAnswer::Visitor)).boxed_local()
            }
            FastpathCall::UserDepart { workgroup, user_id } => {
                me.send(UserDepart { workgroup, user_id }).map(|s| read(s, FastpathAnswer::Visitor)).boxed_local()
            }
            FastpathCall::FindVisitor { token } => {
                me.send(FindVisitor { token }).map(|s| read(s, FastpathAnswer::Found)).boxed_local()
            }
        }
    }
}

/// What peers relay about Fastpath: calls to this node, which serves it (answered), and
/// pushes for visitors' connections here. Sent by the link.
impl Handler<FromPeer> for Fastpath {
    type Result = ResponseFuture<Option<Relay>>;

    fn handle(&mut self, msg: FromPeer, ctx: &mut Context<Self>) -> Self::Result {
        match msg.relay {
            Relay::FastpathCall { call } => {
                let answered = self.answer_call(ctx.address(), msg.node, call);
                Box::pin(async move { Some(Relay::FastpathAnswer { answer: answered.await }) })
            }
            Relay::FastpathPush { stream, events, close } => {
                if let Some(cluster) = &mut self.cluster {
                    let push = match close {
                        Some(reason) => cluster.streams.remove(&stream).map(|c| (c, Push::Close { reason })),
                        None => cluster
                            .streams
                            .get(&stream)
                            .map(|c| (c.clone(), Push::Events(events.into_iter().map(Event::new).collect()))),
                    };
                    if let Some((connection, push)) = push {
                        connection.do_send(push);
                    }
                }
                Box::pin(std::future::ready(None))
            }
            _ => Box::pin(std::future::ready(None)),
        }
    }
}

/// A visitor's connection on another node, as its station here sees it: what the station
/// pushes goes there in one relay. It ends when the station lets it go.
struct RelayedPush {
    node: String,
    stream: u64,
    link: Recipient<ToPeers>,
}

impl Actor for RelayedPush {
    type Context = Context<Self>;
}

impl Handler<Push> for RelayedPush {
    type Result = ();

    fn handle(&mut self, push: Push, _: &mut Context<Self>) {
        let events: Vec<Payload> = push.events().iter().map(|e| e.payload.clone()).collect();
        let close = match push {
            Push::Close { reason } => Some(reason),
            _ => None,
        };
        let relay = Relay::FastpathPush { stream: self.stream, events, close };
        self.link.do_send(ToPeers { targets: Targets::Nodes(vec![self.node.clone()]), relay: Arc::new(relay) });
    }
}
