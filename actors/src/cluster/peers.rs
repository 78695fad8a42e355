//! `Peers`: what one node knows of the others: which are alive (each heard within its
//! lease), and which users each holds, with their stations there.
//!
//! A peer is alive from the first relay heard from it until its lease runs out without a
//! heartbeat; a peer heard with a new start time restarted, and what it held before is
//! gone. Either way its users' holdings are dropped at once, so nothing is routed to a dead
//! node. Plain data: the router drives it with the clock.

use std::collections::HashMap;

use actix::Recipient;

use super::protocol::{AskPeers, Holding, ToPeers};

/// A router's place in its cluster: its name and start, its peers, and its link to them.
pub struct ClusterMembership {
    /// This node's name.
    pub node: String,
    /// When this node started (epoch ms): peers tell a restart by it.
    pub started_ms: i64,
    pub peers: Peers,
    pub link: Recipient<ToPeers>,
    pub asker: Recipient<AskPeers>,
}

/// What hearing from a peer means.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// A peer heard before, same start.
    Known,
    /// A peer not heard before: it needs our holdings.
    New,
    /// A peer whose lease ran out, heard again without a restart (it was out of reach):
    /// it needs our holdings, and what it relayed meanwhile was lost.
    Returned,
    /// A peer that restarted: what it held before is gone (returned), and it needs ours.
    Restarted { gone: Vec<(String, Holding)> },
}

#[derive(Debug)]
struct Peer {
    started_ms: i64,
    last_heard_ms: i64,
}

/// The live peers and their users.
#[derive(Debug)]
pub struct Peers {
    lease_ms: i64,
    peers: HashMap<String, Peer>,
    /// Peers whose lease ran out, with their start: heard again, they were out of reach.
    expired: HashMap<String, i64>,
    /// User → the peers that hold it, with what they hold.
    users: HashMap<String, Vec<(String, Holding)>>,
}

impl Peers {
    /// No peers yet; a peer not heard for `lease_ms` is dead.
    pub fn new(lease_ms: i64) -> Peers {
        Peers { lease_ms, peers: HashMap::new(), expired: HashMap::new(), users: HashMap::new() }
    }

    /// `node` (started at `started_ms`) was heard at `now_ms`.
    pub fn heard(&mut self, node: &str, started_ms: i64, now_ms: i64) -> Heard {
        match self.peers.get_mut(node) {
            Some(peer) if peer.started_ms == started_ms => {
                peer.last_heard_ms = now_ms;
                Heard::Known
            }
            Some(peer) => {
                *peer = Peer { started_ms, last_heard_ms: now_ms };
                Heard::Restarted { gone: self.forget_holdings(node) }
            }
            None => {
                self.peers.insert(node.to_owned(), Peer { started_ms, last_heard_ms: now_ms });
                match self.expired.remove(node) {
                    Some(before) if before == started_ms => Heard::Returned,
                    _ => Heard::New,
                }
            }
        }
    }

    /// Drops the peers whose lease ran out by `now_ms`; each with what it held.
    pub fn expire(&mut self, now_ms: i64) -> Vec<(String, Vec<(String, Holding)>)> {
        let dead: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, peer)| now_ms - peer.last_heard_ms > self.lease_ms)
            .map(|(node, _)| node.clone())
            .collect();
        dead.into_iter()
            .map(|node| {
                if let Some(peer) = self.peers.remove(&node) {
                    self.expired.insert(node.clone(), peer.started_ms);
                }
                let gone = self.forget_holdings(&node);
                (node, gone)
            })
            .collect()
    }

    fn forget_holdings(&mut self, node: &str) -> Vec<(String, Holding)> {
        let mut gone = Vec::new();
        self.users.retain(|user, holders| {
            if let Some(at) = holders.iter().position(|(n, _)| n == node) {
                gone.push((user.clone(), holders.swap_remove(at).1));
            }
            !holders.is_empty()
        });
        gone
    }

    /// `node` now holds `holding` of `user` (empty: nothing); whether anything changed.
    pub fn set_holding(&mut self, node: &str, user: &str, holding: Holding) -> bool {
        let holders = self.users.entry(user.to_owned()).or_default();
        let at = holders.iter().position(|(n, _)| n == node);
        let changed = match (at, holding.is_empty()) {
            (Some(at), true) => {
                holders.swap_remove(at);
                true
            }
            (Some(at), false) if holders[at].1 == holding => false,
            (Some(at), false) => {
                holders[at].1 = holding;
                true
            }
            (None, true) => false,
            (None, false) => {
                holders.push((node.to_owned(), holding));
                true
            }
        };
        if holders.is_empty() {
            self.users.remove(user);
        }
        changed
    }

    /// The first part of `node`'s snapshot: forget what it held before.
    pub fn replace_holdings(&mut self, node: &str) -> Vec<(String, Holding)> {
        self.forget_holdings(node)
    }

    /// Whether `node` is a live peer.
    pub fn is_alive(&self, node: &str) -> bool {
        self.peers.contains_key(node)
    }

    /// The live peers, by name.
    pub fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self.peers.keys().cloned().collect();
        nodes.sort();
        nodes
    }

    /// The peers that hold `user`, with what they hold.
    pub fn holders(&self, user: &str) -> &[(String, Holding)] {
        self.users.get(user).map_or(&[], Vec::as_slice)
    }

    /// The peers that hold `user` (stations or a watch).
    pub fn nodes_of(&self, user: &str) -> impl Iterator<Item = &str> {
        self.holders(user).iter().map(|(node, _)| node.as_str())
    }

    /// The peers that hold any of `users`, each with those of `users` it holds, in order.
    pub fn group_by_node<'a>(&self, users: impl Iterator<Item = &'a String>) -> Vec<(String, Vec<String>)> {
        let mut by_node: Vec<(String, Vec<String>)> = Vec::new();
        for user in users {
            for (node, holding) in self.holders(user) {
                if holding.resources.is_empty() {
                    continue;
                }
                match by_node.iter_mut().find(|(n, _)| n == node) {
                    Some((_, list)) => list.push(user.clone()),
                    None => by_node.push((node.clone(), vec![user.clone()])),
                }
            }
        }
        by_node
    }

    /// Whether a peer holds `resource` of `user`.
    pub fn has_station(&self, user: &str, resource: &str) -> bool {
        self.holders(user).iter().any(|(_, h)| h.resources.iter().any(|r| r == resource))
    }

    /// The user's stations on peers.
    pub fn station_count(&self, user: &str) -> usize {
        self.holders(user).iter().map(|(_, h)| h.resources.len()).sum()
    }

    /// Whether a peer holds a station of `user`, and whether one of them is available to chat.
    pub fn online(&self, user: &str) -> (bool, bool) {
        let holders = self.holders(user).iter().filter(|(_, h)| !h.resources.is_empty());
        holders.fold((false, false), |(_, available), (_, h)| (true, available || h.available))
    }

    /// Users with a station on some peer.
    pub fn users_online(&self) -> usize {
        self.users.values().filter(|holders| holders.iter().any(|(_, h)| !h.resources.is_empty())).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(resources: &[&str], available: bool) -> Holding {
        Holding { resources: resources.iter().map(|r| r.to_string()).collect(), available, watched: false }
    }

    #[test]
    fn a_peer_is_new_then_known_then_restarted_and_its_old_holdings_go() {
        let mut peers = Peers::new(1000);
        assert_eq!(peers.heard("b", 1, 0), Heard::New);
        assert_eq!(peers.heard("b", 1, 10), Heard::Known);
        assert!(peers.set_holding("b", "ann", held(&["phone"], true)));
        assert!(!peers.set_holding("b", "ann", held(&["phone"], true)), "the same holding changes nothing");
        assert_eq!(peers.heard("b", 2, 20), Heard::Restarted { gone: vec![("ann".into(), held(&["phone"], true))] });
        assert!(peers.holders("ann").is_empty());
        assert!(peers.is_alive("b"));
    }

    #[test]
    fn a_peer_not_heard_within_its_lease_is_dead_with_all_it_held() {
        let mut peers = Peers::new(1000);
        peers.heard("b", 1, 0);
        peers.heard("c", 1, 0);
        peers.set_holding("b", "ann", held(&["phone"], false));
        peers.set_holding("c", "ann", held(&["desk"], true));
        peers.heard("c", 1, 900);
        assert!(peers.expire(1000).is_empty(), "within the lease");
        let dead = peers.expire(1001);
        assert_eq!(dead, vec![("b".to_string(), vec![("ann".to_string(), held(&["phone"], false))])]);
        assert_eq!(peers.nodes(), ["c"]);
        assert_eq!(peers.nodes_of("ann").collect::<Vec<_>>(), ["c"]);
        assert_eq!(peers.expire(1901).len(), 1);
        assert_eq!(peers.users_online(), 0);
        assert_eq!(peers.heard("b", 1, 2000), Heard::Returned, "out of reach, not restarted");
        assert_eq!(peers.heard("c", 2, 2000), Heard::New, "restarted while out of reach");
    }

    #[test]
    fn holdings_answer_where_a_user_is_and_group_recipients_by_node() {
        let mut peers = Peers::new(1000);
        peers.set_holding("b", "ann", held(&["phone"], false));
        peers.set_holding("c", "ann", held(&["desk", "web"], true));
        peers.set_holding("c", "bob", held(&["x"], false));
        peers.set_holding("c", "cid", Holding { resources: vec![], available: false, watched: true });
        assert_eq!(peers.station_count("ann"), 3);
        assert!(peers.has_station("ann", "web") && !peers.has_station("ann", "x"));
        assert_eq!(peers.online("ann"), (true, true));
        assert_eq!(peers.online("bob"), (true, false));
        assert_eq!(peers.online("cid"), (false, false), "a watch is no station");
        assert_eq!(peers.nodes_of("cid").collect::<Vec<_>>(), ["c"]);
        let to = ["ann".to_string(), "bob".to_string(), "dan".to_string(), "cid".to_string()];
        assert_eq!(
            peers.group_by_node(to.iter()),
            vec![("b".to_string(), vec!["ann".to_string()]), ("c".to_string(), vec!["ann".into(), "bob".into()])]
        );
        assert!(peers.set_holding("c", "ann", Holding::default()));
        assert_eq!(peers.station_count("ann"), 1);
        assert_eq!(peers.users_online(), 2);
        assert_eq!(peers.replace_holdings("c").len(), 2);
        assert_eq!(peers.users_online(), 1);
    }
}
