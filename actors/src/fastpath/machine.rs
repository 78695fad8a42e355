//! The Fastpath workgroup state machine as plain code: `on(input, now) -> effects`.
//!
//! It holds one workgroup's queue of visitor requests, its agents and the offers in flight,
//! and decides everything (`specs/openfire.md` §4, the intended behaviour, not Openfire's
//! inverted overflow test): who may join, which agent gets the next offer (least current
//! chats, ties to the agent idle longest; never one with an offer pending, at `maxChats`,
//! not available to chat, or a recent rejector of that request), revokes on timeout and on
//! a visitor's cancel, `agent-not-found` once a request outlives its request timeout or no
//! agent is left, and the queue positions. The `Workgroup` actor feeds it inputs with the
//! time, runs its effects (events, rooms) and drives `Tick` from a timer; tests drive it
//! with a fake clock.

use std::collections::BTreeMap;

pub use crate::model::records::{DepartReason, RequestMetadata, RevokeReason};

/// Times in milliseconds, limits as counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How long an agent has to answer an offer.
    pub offer_timeout_ms: i64,
    /// How long a request may wait for an agent before `agent-not-found`.
    pub request_timeout_ms: i64,
    /// How long an agent who rejected (or let time out) a request is skipped for it.
    pub rejection_memory_ms: i64,
    /// Most chats an agent handles at once.
    pub max_chats: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { offer_timeout_ms: 20_000, request_timeout_ms: 240_000, rejection_memory_ms: 20_000, max_chats: 4 }
    }
}

/// Estimated wait per position while no request has been served yet (§4.2).
const DEFAULT_WAIT_PER_POSITION_MS: i64 = 15_000;

/// What happens to a workgroup.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An agent goes online for the workgroup (`POST …/assists/{wg}`).
    AgentOnline {
        agent: String,
    },
    /// An agent goes offline, or its stations all ended: its offers count as rejected.
    AgentOffline {
        agent: String,
    },
    /// An agent's presence changed: `available` is "available to chat" (no show or `chat`).
    AgentAvailability {
        agent: String,
        available: bool,
    },
    /// A visitor asks to join the queue.
    Join {
        user_id: String,
        metadata: RequestMetadata,
    },
    /// A visitor leaves the queue (or cancels while being offered).
    Depart {
        user_id: String,
    },
    Accept {
        agent: String,
        offer_id: String,
    },
    Reject {
        agent: String,
        offer_id: String,
    },
    /// An agent's chat (room) ended.
    ChatEnded {
        agent: String,
    },
    /// The admin opened or closed the workgroup.
    SetOpen {
        open: bool,
    },
    /// Time passes: offers and requests expire, waiting requests are dispatched.
    Tick,
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Tell a waiting visitor its place (1-based) and estimated wait.
    QueueStatus { user_id: String, position: usize, remaining_secs: i64 },
    /// The visitor left the queue without a chat.
    Departed { user_id: String, reason: DepartReason },
    /// Offer a request to an agent.
    Offer { agent: String, offer_id: String, user_id: String, metadata: RequestMetadata, timeout_secs: i64 },
    /// Take an offer back from an agent.
    Revoke { agent: String, offer_id: String, user_id: String, reason: RevokeReason },
    /// An agent accepted: create a room, invite both.
    Accepted { agent: String, user_id: String, metadata: RequestMetadata },
    /// The queue changed: agents get a summary.
    QueueChanged,
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the workgroup is closed")]
    Closed,
    #[error("no agent is available in this workgroup")]
    NoAgent,
    #[error("'{0}' is already waiting in this queue")]
    AlreadyQueued(String),
    #[error("'{0}' is not waiting in this queue")]
    NotQueued(String),
    #[error("offer '{0}' does not exist")]
    UnknownOffer(String),
    #[error("offer '{0}' is not your pending offer")]
    NotYourOffer(String),
    #[error("'{0}' is not online as an agent of this workgroup")]
    NotAnAgent(String),
}

#[derive(Debug, Clone)]
struct Agent {
    available: bool,
    chats: u32,
    /// When its last chat ended; `None`: never chatted (the longest idle of all).
    last_chat_ended_ms: Option<i64>,
    pending_offer: Option<String>,
}

#[derive(Debug, Clone)]
struct Request {
    id: String,
    user_id: String,
    metadata: RequestMetadata,
    joined_ms: i64,
    offer: Option<String>,
    /// Agent → until when it is skipped for this request.
    rejected_by: BTreeMap<String, i64>,
}

#[derive(Debug, Clone)]
struct Offer {
    request_id: String,
    agent: String,
    expires_ms: i64,
}

/// One workgroup's queue, agents and offers.
#[derive(Debug, Clone)]
pub struct Machine {
    name: String,
    settings: Settings,
    open: bool,
    agents: BTreeMap<String, Agent>,
    queue: Vec<Request>,
    offers: BTreeMap<String, Offer>,
    next_id: u64,
    /// Running average wait of served requests, `avg = (avg + wait) / 2` (§4.2).
    average_wait_ms: Option<i64>,
}

/// A waiting visitor, for queue summaries and `GET /ask/{userID}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Waiting {
    pub user_id: String,
    pub position: usize,
    pub remaining_secs: i64,
    pub joined_ms: i64,
}

/// An online agent, for queue summaries.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgentView {
    pub name: String,
    pub available: bool,
    pub chats: u32,
    pub offer_pending: bool,
}

impl Machine {
    pub fn new(name: &str, settings: Settings, open: bool) -> Self {
        Machine {
            name: name.to_owned(),
            settings,
            open,
            agents: BTreeMap::new(),
            queue: Vec::new(),
            offers: BTreeMap::new(),
            next_id: 1,
            average_wait_ms: None,
        }
    }

    /// Open, with at least one agent available to chat (§4.1 status OPEN).
    pub fn accepting(&self) -> bool {
        self.open && self.agents.values().any(|a| a.available)
    }

    /// The visitors waiting, in order.
    pub fn waiting(&self) -> Vec<Waiting> {
        (0..self.queue.len())
            .map(|i| Waiting {
                user_id: self.queue[i].user_id.clone(),
                position: i + 1,
                remaining_secs: self.estimate_secs(i + 1),
                joined_ms: self.queue[i].joined_ms,
            })
            .collect()
    }

    /// The agents online, by name.
    pub fn agents(&self) -> Vec<AgentView> {
        self.agents
            .iter()
            .map(|(name, a)| AgentView {
                name: name.clone(),
                available: a.available,
                chats: a.chats,
                offer_pending: a.pending_offer.is_some(),
            })
            .collect()
    }

    pub fn is_agent(&self, name: &str) -> bool {
        self.agents.contains_key(name)
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// New timeouts and limits (an admin update); offers in flight keep their deadlines.
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// The running average wait of served requests, in seconds (0 before the first).
    pub fn average_wait_secs(&self) -> i64 {
        self.average_wait_ms.map_or(0, |ms| (ms + 999) / 1000)
    }

    /// The next time at which `Tick` changes something: an offer or a request expiring,
    /// or a rejector becoming eligible again. `None`: nothing is waiting on the clock.
    pub fn next_deadline(&self, now: i64) -> Option<i64> {
        let offers = self.offers.values().map(|o| o.expires_ms);
        let requests = self.queue.iter().filter(|r| r.offer.is_none()).flat_map(|r| {
            let memories = r.rejected_by.values().copied().filter(move |until| *until > now);
            std::iter::once(r.joined_ms + self.settings.request_timeout_ms).chain(memories)
        });
        offers.chain(requests).min()
    }

    fn estimate_secs(&self, position: usize) -> i64 {
        let per = self.average_wait_ms.unwrap_or(DEFAULT_WAIT_PER_POSITION_MS);
        (per * position as i64 + 999) / 1000
    }

    fn position_of(&self, user_id: &str) -> Option<usize> {
        self.queue.iter().position(|r| r.user_id == user_id)
    }

    /// Status for every visitor at or after `from` (0-based): their positions moved.
    fn statuses_from(&self, from: usize, effects: &mut Vec<Effect>) {
        for (i, request) in self.queue.iter().enumerate().skip(from) {
            effects.push(Effect::QueueStatus {
                user_id: request.user_id.clone(),
                position: i + 1,
                remaining_secs: self.estimate_secs(i + 1),
            });
        }
    }

    /// Removes the request at `index`; the visitors behind it move up.
    fn remove_request(&mut self, index: usize, effects: &mut Vec<Effect>) -> Request {
        let request = self.queue.remove(index);
        if let Some(offer_id) = &request.offer {
            if let Some(offer) = self.offers.remove(offer_id) {
                if let Some(agent) = self.agents.get_mut(&offer.agent) {
                    agent.pending_offer = None;
                }
            }
        }
        self.statuses_from(index, effects);
        effects.push(Effect::QueueChanged);
        request
    }

    /// Ends the offer `offer_id` without acceptance: its agent is skipped for the request
    /// for the rejection memory.
    fn drop_offer(&mut self, offer_id: &str, now: i64) -> Option<Offer> {
        let offer = self.offers.remove(offer_id)?;
        if let Some(agent) = self.agents.get_mut(&offer.agent) {
            agent.pending_offer = None;
        }
        if let Some(request) = self.queue.iter_mut().find(|r| r.id == offer.request_id) {
            request.offer = None;
            request.rejected_by.insert(offer.agent.clone(), now + self.settings.rejection_memory_ms);
        }
        Some(offer)
    }

    /// The best agent for `request`: least current chats, then idle longest.
    fn pick_agent(&self, request: &Request, now: i64) -> Option<String> {
        self.agents
            .iter()
            .filter(|(name, a)| {
                a.available
                    && a.chats < self.settings.max_chats
                    && a.pending_offer.is_none()
                    && request.rejected_by.get(*name).is_none_or(|until| *until <= now)
            })
            .min_by_key(|(name, a)| (a.chats, a.last_chat_ended_ms.unwrap_or(i64::MIN), (*name).clone()))
            .map(|(name, _)| name.clone())
    }

    /// Expires old requests and offers waiting requests to agents.
    fn dispatch(&mut self, now: i64, effects: &mut Vec<Effect>) {
        // Requests past their time, or with nobody left to serve them, end.
        let nobody = self.agents.is_empty();
        let mut index = 0;
        while index < self.queue.len() {
            let request = &self.queue[index];
            let expired = now >= request.joined_ms + self.settings.request_timeout_ms;
            if (expired || nobody) && request.offer.is_none() {
                let request = self.remove_request(index, effects);
                effects.push(Effect::Departed { user_id: request.user_id, reason: DepartReason::AgentNotFound });
            } else {
                index += 1;
            }
        }
        for index in 0..self.queue.len() {
            if self.queue[index].offer.is_some() {
                continue;
            }
            let Some(agent) = self.pick_agent(&self.queue[index], now) else {
                continue;
            };
            let offer_id = format!("{}-{}", self.name, self.next_id);
            self.next_id += 1;
            let deadline = self.queue[index].joined_ms + self.settings.request_timeout_ms;
            let expires_ms = (now + self.settings.offer_timeout_ms).min(deadline);
            let request = &mut self.queue[index];
            request.offer = Some(offer_id.clone());
            self.offers
                .insert(offer_id.clone(), Offer { request_id: request.id.clone(), agent: agent.clone(), expires_ms });
            self.agents.get_mut(&agent).expect("picked from the agents").pending_offer = Some(offer_id.clone());
            effects.push(Effect::Offer {
                agent,
                offer_id,
                user_id: request.user_id.clone(),
                metadata: request.metadata.clone(),
                timeout_secs: ((expires_ms - now) + 999) / 1000,
            });
        }
    }

    fn own_offer(&self, agent: &str, offer_id: &str) -> Result<(), Refusal> {
        match self.offers.get(offer_id) {
            None => Err(Refusal::UnknownOffer(offer_id.to_owned())),
            Some(offer) if offer.agent != agent => Err(Refusal::NotYourOffer(offer_id.to_owned())),
            Some(_) => Ok(()),
        }
    }

    /// Applies one input at time `now` (ms).
    pub fn on(&mut self, input: Input, now: i64) -> Result<Vec<Effect>, Refusal> {
        let mut effects = Vec::new();
        match input {
            Input::AgentOnline { agent } => {
                self.agents.entry(agent).or_insert(Agent {
                    available: true,
                    chats: 0,
                    last_chat_ended_ms: None,
                    pending_offer: None,
                });
                effects.push(Effect::QueueChanged);
            }
            Input::AgentOffline { agent } => {
                let removed = self.agents.remove(&agent).ok_or_else(|| Refusal::NotAnAgent(agent.clone()))?;
                if let Some(offer_id) = removed.pending_offer {
                    self.drop_offer(&offer_id, now);
                }
            }
            Input::AgentAvailability { agent, available } => {
                let entry = self.agents.get_mut(&agent).ok_or(Refusal::NotAnAgent(agent))?;
                entry.available = available;
            }
            Input::Join { user_id, metadata } => {
                if !self.open {
                    return Err(Refusal::Closed);
                }
                if !self.accepting() {
                    return Err(Refusal::NoAgent);
                }
                if self.position_of(&user_id).is_some() {
                    return Err(Refusal::AlreadyQueued(user_id));
                }
                let id = format!("{}{}", self.name, self.next_id);
                self.next_id += 1;
                self.queue.push(Request {
                    id,
                    user_id: user_id.clone(),
                    metadata,
                    joined_ms: now,
                    offer: None,
                    rejected_by: BTreeMap::new(),
                });
                let position = self.queue.len();
                effects.push(Effect::QueueStatus { user_id, position, remaining_secs: self.estimate_secs(position) });
                effects.push(Effect::QueueChanged);
            }
            Input::Depart { user_id } => {
                let index = self.position_of(&user_id).ok_or_else(|| Refusal::NotQueued(user_id.clone()))?;
                if let Some(offer_id) = self.queue[index].offer.clone() {
                    if let Some(offer) = self.offers.get(&offer_id) {
                        effects.push(Effect::Revoke {
                            agent: offer.agent.clone(),
                            offer_id,
                            user_id: user_id.clone(),
                            reason: RevokeReason::UserCanceled,
                        });
                    }
                }
                self.remove_request(index, &mut effects);
                effects.push(Effect::Departed { user_id, reason: DepartReason::DepartureRequested });
            }
            Input::Accept { agent, offer_id } => {
                self.own_offer(&agent, &offer_id)?;
                let offer = self.offers.get(&offer_id).expect("checked above").clone();
                let index =
                    self.queue.iter().position(|r| r.id == offer.request_id).expect("offers belong to queued requests");
                // The average first: the visitors moving up get estimates that include this wait.
                let waited = now - self.queue[index].joined_ms;
                self.average_wait_ms = Some(self.average_wait_ms.map_or(waited, |avg| (avg + waited) / 2));
                let request = self.remove_request(index, &mut effects);
                let served = self.agents.get_mut(&agent).expect("offers belong to agents");
                served.chats += 1;
                effects.push(Effect::Accepted { agent, user_id: request.user_id, metadata: request.metadata });
            }
            Input::Reject { agent, offer_id } => {
                self.own_offer(&agent, &offer_id)?;
                self.drop_offer(&offer_id, now);
            }
            Input::ChatEnded { agent } => {
                if let Some(entry) = self.agents.get_mut(&agent) {
                    entry.chats = entry.chats.saturating_sub(1);
                    entry.last_chat_ended_ms = Some(now);
                }
            }
            Input::SetOpen { open } => self.open = open,
            Input::Tick => {
                let expired: Vec<String> =
                    self.offers.iter().filter(|(_, o)| o.expires_ms <= now).map(|(id, _)| id.clone()).collect();
                for offer_id in expired {
                    let offer = self.drop_offer(&offer_id, now).expect("listed above");
                    let user_id = self
                        .queue
                        .iter()
                        .find(|r| r.id == offer.request_id)
                        .map(|r| r.user_id.clone())
                        .unwrap_or_default();
                    effects.push(Effect::Revoke {
                        agent: offer.agent,
                        offer_id,
                        user_id,
                        reason: RevokeReason::TimedOut,
                    });
                }
            }
        }
        self.dispatch(now, &mut effects);
        Ok(effects)
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn machine() -> Machine {
        Machine::new("wg", Settings::default(), true)
    }

    fn join(m: &mut Machine, user: &str, now: i64) -> Vec<Effect> {
        m.on(Input::Join { user_id: user.into(), metadata: [("question".to_owned(), "?".to_owned())].into() }, now)
            .unwrap()
    }

    fn offers(effects: &[Effect]) -> Vec<(String, String, String)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Offer { agent, offer_id, user_id, .. } => {
                    Some((agent.clone(), offer_id.clone(), user_id.clone()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn joining_needs_an_open_workgroup_with_an_available_agent() {
        let mut m = machine();
        assert_eq!(
            m.on(Input::Join { user_id: "v".into(), metadata: RequestMetadata::new() }, 0),
            Err(Refusal::NoAgent)
        );
        m.on(Input::AgentOnline { agent: "ann".into() }, 0).unwrap();
        m.on(Input::AgentAvailability { agent: "ann".into(), available: false }, 0).unwrap();
        assert_eq!(
            m.on(Input::Join { user_id: "v".into(), metadata: RequestMetadata::new() }, 0),
            Err(Refusal::NoAgent)
        );
        m.on(Input::AgentAvailability { agent: "ann".into(), available: true }, 0).unwrap();
        m.on(Input::SetOpen { open: false }, 0).unwrap();
        assert_eq!(
            m.on(Input::Join { user_id: "v".into(), metadata: RequestMetadata::new() }, 0),
            Err(Refusal::Closed)
        );
        m.on(Input::SetOpen { open: true }, 0).unwrap();
        let effects = join(&mut m, "v", 0);
        assert!(effects.contains(&Effect::QueueStatus { user_id: "v".into(), position: 1, remaining_secs: 15 }));
        assert_eq!(
            m.on(Input::Join { user_id: "v".into(), metadata: RequestMetadata::new() }, 0),
            Err(Refusal::AlreadyQueued("v".into()))
        );
    }

    #[test]
    fn offers_go_to_the_least_busy_then_longest_idle_agent_one_at_a_time() {
        let mut m = machine();
        for agent in ["ann", "bob"] {
            m.on(Input::AgentOnline { agent: agent.into() }, 0).unwrap();
        }
        // Ann has just ended a chat; Bob never chatted, so he is the longest idle.
        m.on(Input::ChatEnded { agent: "ann".into() }, 0).unwrap();
        let first = offers(&join(&mut m, "v1", 10));
        assert_eq!((first[0].0.as_str(), first[0].2.as_str()), ("bob", "v1"));
        let second = offers(&join(&mut m, "v2", 20));
        assert_eq!(second[0].0, "ann");
        // Both have an offer pending: the third visitor waits.
        assert!(offers(&join(&mut m, "v3", 30)).is_empty());
        // Bob accepts: v2 moves up, and Bob (one chat, under maxChats) is the only agent
        // without a pending offer, so v3 goes to him.
        let effects = m.on(Input::Accept { agent: "bob".into(), offer_id: first[0].1.clone() }, 40).unwrap();
        assert!(effects
            .iter()
            .any(|e| matches!(e, Effect::Accepted { agent, user_id, .. } if agent == "bob" && user_id == "v1")));
        assert!(effects.contains(&Effect::QueueStatus { user_id: "v2".into(), position: 1, remaining_secs: 1 }));
        let to_bob = offers(&effects);
        assert_eq!((to_bob[0].0.as_str(), to_bob[0].2.as_str()), ("bob", "v3"), "Bob is free again, under maxChats");
    }

    #[test]
    fn a_rejection_moves_on_at_once_and_a_lone_rejector_returns_after_the_memory() {
        let mut m = machine();
        for agent in ["ann", "bob"] {
            m.on(Input::AgentOnline { agent: agent.into() }, 0).unwrap();
        }
        let first = offers(&join(&mut m, "v", 0));
        let (agent, offer_id, _) = first[0].clone();
        let effects = m.on(Input::Reject { agent: agent.clone(), offer_id }, 1_000).unwrap();
        let next = offers(&effects);
        assert_ne!(next[0].0, agent, "the other agent gets it at once");
        // The other agent rejects too: nobody is left for 20 s after the first rejection.
        let effects = m.on(Input::Reject { agent: next[0].0.clone(), offer_id: next[0].1.clone() }, 2_000).unwrap();
        assert!(offers(&effects).is_empty());
        assert!(offers(&m.on(Input::Tick, 20_999).unwrap()).is_empty());
        let again = offers(&m.on(Input::Tick, 21_000).unwrap());
        assert_eq!(again[0].0, agent, "the first rejector is eligible again");
    }

    #[test]
    fn offers_time_out_and_are_revoked_then_requests_expire_with_agent_not_found() {
        let mut m = Machine::new("wg", Settings { request_timeout_ms: 30_000, ..Settings::default() }, true);
        m.on(Input::AgentOnline { agent: "ann".into() }, 0).unwrap();
        let effects = join(&mut m, "v", 0);
        assert!(effects.iter().any(|e| matches!(e, Effect::Offer { timeout_secs: 20, .. })));
        let offer_id = offers(&effects)[0].1.clone();
        join(&mut m, "w", 0);
        assert!(m.on(Input::Tick, 19_999).unwrap().iter().all(|e| !matches!(e, Effect::Revoke { .. })));
        let effects = m.on(Input::Tick, 20_000).unwrap();
        assert!(effects.contains(&Effect::Revoke {
            agent: "ann".into(),
            offer_id,
            user_id: "v".into(),
            reason: RevokeReason::TimedOut
        }));
        // Ann is free again: she gets w's request (she timed out on v's, not w's).
        assert_eq!(offers(&effects)[0].2, "w");
        // v outlives its request timeout with nobody to take it.
        let effects = m.on(Input::Tick, 30_000).unwrap();
        assert!(effects.contains(&Effect::Departed { user_id: "v".into(), reason: DepartReason::AgentNotFound }));
    }

    #[test]
    fn a_visitor_cancelling_while_offered_revokes_the_offer() {
        let mut m = machine();
        m.on(Input::AgentOnline { agent: "ann".into() }, 0).unwrap();
        let first = offers(&join(&mut m, "v", 0));
        join(&mut m, "w", 0);
        let effects = m.on(Input::Depart { user_id: "v".into() }, 5).unwrap();
        assert!(effects.contains(&Effect::Revoke {
            agent: "ann".into(),
            offer_id: first[0].1.clone(),
            user_id: "v".into(),
            reason: RevokeReason::UserCanceled
        }));
        assert!(effects.contains(&Effect::Departed { user_id: "v".into(), reason: DepartReason::DepartureRequested }));
        assert!(effects.contains(&Effect::QueueStatus { user_id: "w".into(), position: 1, remaining_secs: 15 }));
        assert_eq!(offers(&effects)[0].2, "w", "Ann is free for the next visitor");
        assert_eq!(m.on(Input::Depart { user_id: "v".into() }, 6), Err(Refusal::NotQueued("v".into())));
    }

    #[test]
    fn only_the_offered_agent_may_answer_and_unknown_offers_are_refused() {
        let mut m = machine();
        for agent in ["ann", "bob"] {
            m.on(Input::AgentOnline { agent: agent.into() }, 0).unwrap();
        }
        let first = offers(&join(&mut m, "v", 0));
        let (agent, offer_id, _) = first[0].clone();
        let other = if agent == "ann" { "bob" } else { "ann" };
        assert_eq!(
            m.on(Input::Accept { agent: other.into(), offer_id: offer_id.clone() }, 1),
            Err(Refusal::NotYourOffer(offer_id.clone()))
        );
        assert_eq!(
            m.on(Input::Accept { agent: agent.clone(), offer_id: "nope".into() }, 1),
            Err(Refusal::UnknownOffer("nope".into()))
        );
        assert!(m.on(Input::Accept { agent, offer_id: offer_id.clone() }, 1).is_ok());
        assert_eq!(
            m.on(Input::Reject { agent: other.into(), offer_id: offer_id.clone() }, 2),
            Err(Refusal::UnknownOffer(offer_id))
        );
    }

    #[test]
    fn agents_going_offline_drop_their_offers_and_the_last_one_ends_the_queue() {
        let mut m = machine();
        for agent in ["ann", "bob"] {
            m.on(Input::AgentOnline { agent: agent.into() }, 0).unwrap();
        }
        let first = offers(&join(&mut m, "v", 0));
        let effects = m.on(Input::AgentOffline { agent: first[0].0.clone() }, 1).unwrap();
        let moved = offers(&effects);
        assert_ne!(moved[0].0, first[0].0, "the offer counts as rejected and moves on");
        let effects = m.on(Input::AgentOffline { agent: moved[0].0.clone() }, 2).unwrap();
        assert!(effects.contains(&Effect::Departed { user_id: "v".into(), reason: DepartReason::AgentNotFound }));
        assert!(m.waiting().is_empty());
    }

    #[test]
    fn an_agent_at_max_chats_gets_no_offers_until_a_chat_ends() {
        let mut m = Machine::new("wg", Settings { max_chats: 1, ..Settings::default() }, true);
        m.on(Input::AgentOnline { agent: "ann".into() }, 0).unwrap();
        let first = offers(&join(&mut m, "v", 0));
        m.on(Input::Accept { agent: "ann".into(), offer_id: first[0].1.clone() }, 1).unwrap();
        assert!(offers(&join(&mut m, "w", 2)).is_empty());
        let effects = m.on(Input::ChatEnded { agent: "ann".into() }, 3).unwrap();
        assert_eq!(offers(&effects)[0].2, "w");
        assert_eq!(m.waiting()[0].remaining_secs, 1, "estimates use the average wait once a request was served");
    }

    #[test]
    fn the_next_deadline_is_the_first_expiry_or_a_rejector_returning() {
        let mut m = Machine::new("wg", Settings { request_timeout_ms: 100_000, ..Settings::default() }, true);
        assert_eq!(m.next_deadline(0), None, "nothing waits on the clock");
        m.on(Input::AgentOnline { agent: "ann".into() }, 0).unwrap();
        let first = offers(&join(&mut m, "v", 1_000));
        assert_eq!(m.next_deadline(1_000), Some(21_000), "the offer expires first");
        m.on(Input::Reject { agent: "ann".into(), offer_id: first[0].1.clone() }, 2_000).unwrap();
        assert_eq!(m.next_deadline(2_000), Some(22_000), "Ann may take it again after the rejection memory");
        assert_eq!(m.next_deadline(22_000), Some(101_000), "then only the request timeout is left");
    }
}
