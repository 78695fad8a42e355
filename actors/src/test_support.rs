//! Test helpers shared by the core's actor tests: a connection that records what it is
//! pushed, and a wait for an event to reach every recorder.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;

use crate::model::records::NewUser;
use crate::model::{Event, Push};

/// What one recorded connection received.
pub type Inbox = Arc<Mutex<Vec<Arc<Event>>>>;

/// A connection that records what it is pushed.
struct Recorder(Inbox);

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<Push> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: Push, _: &mut Context<Self>) {
        self.0.lock().unwrap().extend(msg.events().iter().cloned());
    }
}

/// A recording connection: its inbox, and the recipient to attach.
pub fn recorder() -> (Inbox, Recipient<Push>) {
    let inbox = Inbox::default();
    (inbox.clone(), Recorder(inbox).start().recipient())
}

/// Waits (up to 5 s) until every inbox holds an event that `wanted` accepts, and returns the
/// first such event of each; `what` names it in the failure.
pub async fn first_matching(inboxes: &[Inbox], what: &str, wanted: impl Fn(&Event) -> bool) -> Vec<Arc<Event>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<Option<Arc<Event>>> =
            inboxes.iter().map(|inbox| inbox.lock().unwrap().iter().find(|e| wanted(e)).cloned()).collect();
        if found.iter().all(Option::is_some) {
            return found.into_iter().flatten().collect();
        }
        assert!(tokio::time::Instant::now() < deadline, "not every inbox received {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A person's account named `name`, with a placeholder hash and nothing else set.
pub fn test_user(name: &str) -> NewUser {
    NewUser {
        kind: Default::default(),
        username: name.into(),
        password_hash: "h".into(),
        name: String::new(),
        email: String::new(),
        properties: vec![],
        scram: vec![],
    }
}
