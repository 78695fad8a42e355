//! Contacts (the roster) and the RFC 6121 subscription rules, as plain code.
//!
//! A roster is stored as one row per (owner, contact) pair, holding both the item the owner
//! sees (nickname, groups, `listed`) and the subscription state of that direction pair
//! (`to`: the owner sees the contact's presence; `from`: the contact sees the owner's) with
//! the pending flags of the handshake. Every change touches both rows of a pair at once:
//! [`apply`] is the whole state machine, run by the store inside one transaction, so the
//! two sides can never disagree. It returns the rows before and after and the subscription
//! notices (`subscribe`, `subscribed`, …) the router delivers once the change commits.
//!
//! The chat API has no explicit "approve" call: a user approves a request by adding the
//! requester back. To make that one step, adding a contact also pre-approves that contact's
//! subscription (RFC 6121 §3.4), so two users who add each other end at `both`.
//!
//! Shared groups (Openfire's shared rosters) add to this without being stored in it: two
//! people of one shared group see each other as contacts, both ways, in that group
//! (`model::groups::with_shared`). The store applies it to every row it reads and reports.

pub use crate::model::records::{Notice, NoticeKind, RosterItem, RowChange, Subscription, Transition};

#[cfg(test)]
use crate::model::groups::{transition_with_shared, with_shared};

/// A change one user makes to their roster.
#[derive(Debug, Clone, PartialEq)]
pub enum RosterOp {
    /// Add the contact and ask to see its presence (approving its request if it made one).
    Add { nickname: Option<String>, groups: Vec<String> },
    /// Change the nickname and groups of a listed contact.
    Update { nickname: Option<String>, groups: Vec<String> },
    /// Remove the contact and cancel the subscriptions both ways.
    Remove,
    /// Admin: write an item with the given subscription (`None`: keep the current one),
    /// mirrored on the contact's side. `create` refuses an existing item; otherwise the
    /// item must exist.
    AdminSet { create: bool, nickname: Option<String>, groups: Vec<String>, subscription: Option<Subscription> },
}

/// Why a roster change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("'{0}' is already a contact")]
    AlreadyListed(String),
    #[error("'{0}' is not a contact")]
    NotListed(String),
}

/// Applies `op` by `owner` on `contact` to the pair's two rows.
pub fn apply(
    op: RosterOp,
    owner: &str,
    contact: &str,
    owner_row: Option<RosterItem>,
    contact_row: Option<RosterItem>,
    auto_accept: bool,
) -> Result<Transition, RosterError> {
    let listed = owner_row.as_ref().is_some_and(|r| r.listed);
    let mut mine = owner_row.clone().unwrap_or_else(|| RosterItem::new(owner, contact));
    let mut theirs = contact_row.clone().unwrap_or_else(|| RosterItem::new(contact, owner));
    let mut notices = Vec::new();
    let notice = |kind, from: &str, to: &str| Notice { kind, from: from.to_owned(), to: to.to_owned() };

    match op {
        RosterOp::Add { nickname, groups } => {
            if listed {
                return Err(RosterError::AlreadyListed(contact.to_owned()));
            }
            mine.listed = true;
            mine.nickname = nickname;
            mine.groups = groups;
            // Adding back approves the contact's waiting request.
            if mine.pending_in {
                approve(&mut mine, &mut theirs);
                notices.push(notice(NoticeKind::Subscribed, owner, contact));
            }
            // …and approves in advance the request the contact may send later.
            if !mine.subscription.has_from() {
                mine.preapproved = true;
            }
            // Then ask to see the contact's presence.
            if !mine.subscription.has_to() {
                if theirs.subscription.has_from() || theirs.preapproved || auto_accept {
                    approve(&mut theirs, &mut mine);
                    notices.push(notice(NoticeKind::Subscribed, contact, owner));
                } else {
                    mine.ask_out = true;
                    theirs.pending_in = true;
                    notices.push(notice(NoticeKind::Subscribe, owner, contact));
                }
            }
        }
        RosterOp::Update { nickname, groups } => {
            if !listed {
                return Err(RosterError::NotListed(contact.to_owned()));
            }
            mine.nickname = nickname;
            mine.groups = groups;
        }
        RosterOp::Remove => {
            if !listed {
                return Err(RosterError::NotListed(contact.to_owned()));
            }
            if mine.subscription.has_to() || mine.ask_out {
                theirs.subscription = theirs.subscription.with_from(false);
                theirs.pending_in = false;
                notices.push(notice(NoticeKind::Unsubscribe, owner, contact));
            }
            if mine.subscription.has_from() || mine.pending_in {
                theirs.subscription = theirs.subscription.with_to(false);
                theirs.ask_out = false;
                notices.push(notice(NoticeKind::Unsubscribed, owner, contact));
            }
            mine = RosterItem::new(owner, contact);
        }
        RosterOp::AdminSet { create, nickname, groups, subscription } => {
            if create && listed {
                return Err(RosterError::AlreadyListed(contact.to_owned()));
            }
            if !create && !listed {
                return Err(RosterError::NotListed(contact.to_owned()));
            }
            mine.listed = true;
            mine.nickname = nickname;
            mine.groups = groups;
            mine.subscription = subscription.unwrap_or(mine.subscription);
            theirs.subscription = mine.subscription.mirrored();
            theirs.listed |= theirs.subscription != Subscription::None;
            // A set subscription settles any handshake in flight between the two.
            for row in [&mut mine, &mut theirs] {
                row.ask_out = false;
                row.pending_in = false;
                row.preapproved = false;
            }
        }
    }

    let keep = |row: RosterItem| (!row.is_empty()).then_some(row);
    Ok(Transition {
        owner_side: RowChange {
            owner: owner.to_owned(),
            contact: contact.to_owned(),
            before: owner_row,
            after: keep(mine),
        },
        contact_side: RowChange {
            owner: contact.to_owned(),
            contact: owner.to_owned(),
            before: contact_row,
            after: keep(theirs),
        },
        notices,
    })
}

/// `approver` lets `requester` see its presence: the approver gains `from`, the requester
/// `to`, and the handshake flags of that direction clear. An approved subscription is
/// always listed on the approver's side (RFC 6121 §3.1.5).
fn approve(approver: &mut RosterItem, requester: &mut RosterItem) {
    approver.subscription = approver.subscription.with_from(true);
    approver.pending_in = false;
    approver.preapproved = false;
    approver.listed = true;
    requester.subscription = requester.subscription.with_to(true);
    requester.ask_out = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add() -> RosterOp {
        RosterOp::Add { nickname: None, groups: vec![] }
    }

    /// Runs `op` by `owner` against a two-user world and writes the result back.
    fn run(world: &mut [Option<RosterItem>; 2], owner_is_ann: bool, op: RosterOp, auto: bool) -> Vec<NoticeKind> {
        let (o, c, oi, ci) = if owner_is_ann { ("ann", "bob", 0, 1) } else { ("bob", "ann", 1, 0) };
        let t = apply(op, o, c, world[oi].clone(), world[ci].clone(), auto).unwrap();
        world[oi] = t.owner_side.after;
        world[ci] = t.contact_side.after;
        t.notices.into_iter().map(|n| n.kind).collect()
    }

    fn sub(world: &[Option<RosterItem>; 2], i: usize) -> Subscription {
        world[i].as_ref().map_or(Subscription::None, |r| r.subscription)
    }

    #[test]
    fn manual_handshake_ends_in_both_when_the_contact_adds_back() {
        let mut world = [None, None];
        assert_eq!(run(&mut world, true, add(), false), vec![NoticeKind::Subscribe]);
        let bob = world[1].as_ref().unwrap();
        assert!(bob.pending_in && !bob.listed, "bob has a request, not a contact");
        assert!(world[0].as_ref().unwrap().ask_out);
        assert_eq!(sub(&world, 0), Subscription::None);

        // Bob adds Ann back: approves Ann's request; Ann's pre-approval approves Bob's.
        assert_eq!(run(&mut world, false, add(), false), vec![NoticeKind::Subscribed, NoticeKind::Subscribed]);
        assert_eq!(sub(&world, 0), Subscription::Both);
        assert_eq!(sub(&world, 1), Subscription::Both);
        assert!(world.iter().flatten().all(|r| r.listed && !r.ask_out && !r.pending_in && !r.preapproved));
    }

    #[test]
    fn auto_accept_approves_at_once() {
        let mut world = [None, None];
        assert_eq!(run(&mut world, true, add(), true), vec![NoticeKind::Subscribed]);
        assert_eq!(sub(&world, 0), Subscription::To);
        assert_eq!(sub(&world, 1), Subscription::From);
        assert!(world[1].as_ref().unwrap().listed);
    }

    #[test]
    fn removing_cancels_both_directions_and_keeps_the_other_listed() {
        let mut world = [None, None];
        run(&mut world, true, add(), false);
        run(&mut world, false, add(), false);
        let kinds = run(&mut world, true, RosterOp::Remove, false);
        assert_eq!(kinds, vec![NoticeKind::Unsubscribe, NoticeKind::Unsubscribed]);
        assert!(world[0].is_none());
        let bob = world[1].as_ref().unwrap();
        assert_eq!(bob.subscription, Subscription::None);
        assert!(bob.listed);
    }

    #[test]
    fn removing_a_requester_denies_the_request() {
        let mut world = [None, None];
        run(&mut world, true, add(), false);
        // Bob never added Ann, so he cannot remove her.
        let t = apply(RosterOp::Remove, "bob", "ann", world[1].clone(), world[0].clone(), false);
        assert_eq!(t.unwrap_err(), RosterError::NotListed("ann".into()));
        // Ann withdraws: Bob's request disappears with his row.
        run(&mut world, true, RosterOp::Remove, false);
        assert!(world[0].is_none() && world[1].is_none());
    }

    #[test]
    fn duplicates_and_unknown_items_are_refused() {
        let mut world = [None, None];
        run(&mut world, true, add(), false);
        let again = apply(add(), "ann", "bob", world[0].clone(), world[1].clone(), false);
        assert_eq!(again.unwrap_err(), RosterError::AlreadyListed("bob".into()));
        let update = RosterOp::Update { nickname: Some("B".into()), groups: vec![] };
        let t = apply(update, "bob", "ann", world[1].clone(), world[0].clone(), false);
        assert_eq!(t.unwrap_err(), RosterError::NotListed("ann".into()));
    }

    #[test]
    fn a_shared_group_lists_both_ways_and_keeps_the_own_groups() {
        let shared = vec!["staff".to_owned()];
        let row = with_shared(None, "ann", "bob", &shared).unwrap();
        assert!(row.listed && row.subscription == Subscription::Both && row.groups == shared);
        let mut own = RosterItem::new("ann", "bob");
        own.groups = vec!["friends".into()];
        own.ask_out = true;
        let row = with_shared(Some(own.clone()), "ann", "bob", &shared).unwrap();
        assert_eq!(row.groups, ["friends", "staff"]);
        assert!(!row.ask_out);
        assert_eq!(with_shared(Some(own.clone()), "ann", "bob", &[]), Some(own));
        // Adding a shared contact writes the row but asks nothing.
        let t = apply(RosterOp::Add { nickname: None, groups: vec![] }, "ann", "bob", None, None, false).unwrap();
        let t = transition_with_shared(t, &shared);
        assert!(t.notices.is_empty());
        assert_eq!(t.owner_side.before.unwrap().subscription, Subscription::Both);
    }

    #[test]
    fn admin_set_mirrors_the_subscription() {
        let mut world = [None, None];
        let op = RosterOp::AdminSet {
            create: true,
            nickname: None,
            groups: vec!["g".into()],
            subscription: Some(Subscription::To),
        };
        assert!(run(&mut world, true, op, false).is_empty());
        assert_eq!(sub(&world, 0), Subscription::To);
        assert_eq!(sub(&world, 1), Subscription::From);
        assert_eq!(Subscription::from_code(3).unwrap().mirrored(), Subscription::Both);
    }
}
