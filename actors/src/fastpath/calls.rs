//! The registry's calls as they cross nodes. In a cluster one node at a time serves
//! Fastpath (it holds the `fastpath` lease and runs every workgroup); the others forward
//! each call to it ([`FastpathCall`]) and hand back its answer ([`FastpathAnswer`]). A
//! visitor's connection stays on the node it reached: the serving node relays what the
//! visitor's station pushes to it, by a stream number of that node's.

use serde::{Deserialize, Serialize};

use super::machine::Waiting;
use super::visitors::VisitorReply;
use super::workgroup::QueueView;
use super::WorkgroupRecord;

/// A call to the registry of the node serving Fastpath.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FastpathCall {
    ListWorkgroups,
    GetWorkgroup { name: String },
    SaveWorkgroup { record: WorkgroupRecord, create: bool },
    DeleteWorkgroup { name: String },
    MemberOf { username: String },
    SetAgent { workgroup: String, agent: String, online: bool },
    AgentQueues { agent: String },
    AnswerOffer { agent: String, offer_id: String, accept: bool },
    Ask { workgroup: String, user_id: String, nickname: String, email: String, question: String, user: Option<String> },
    Visitor { user_id: String, token: String, action: RemoteVisitorAction },
    UserDepart { workgroup: String, user_id: String },
    FindVisitor { token: String },
}

/// A visitor's action from another node: a connection there is attached by the number
/// that node gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RemoteVisitorAction {
    Status,
    Leave,
    JoinRoom,
    Say(String),
    Attach { stream: u64 },
    Detach(u64),
}

/// The serving registry's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FastpathAnswer {
    Workgroups(Vec<WorkgroupRecord>),
    Workgroup(Box<WorkgroupRecord>),
    Done,
    Names(Vec<String>),
    Queues(Vec<QueueView>),
    Queued(Waiting, String),
    Visitor(VisitorReply),
    Found(String),
}
