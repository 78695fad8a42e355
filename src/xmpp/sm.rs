//! XEP-0198 stream management, one stream's counters: how many stanzas the server handled
//! from the client (`h` in the server's `<a/>`), and the stanzas sent to the client that it
//! has not acknowledged yet, kept to be sent again after a resumption or returned to the
//! store when the stream is not resumed.

use std::collections::VecDeque;

use bytestring::ByteString;

pub const NS: &str = "urn:xmpp:sm:3";

/// One stream's stream management.
#[derive(Debug, Default)]
pub struct StreamManagement {
    /// The resumption id, when the stream can be resumed.
    pub id: Option<String>,
    /// Stanzas handled from the client (mod 2^32).
    pub handled: u32,
    /// Stanzas sent to the client (mod 2^32).
    sent: u32,
    /// Sent and not acknowledged, oldest first, with the stored message each carries.
    unacked: VecDeque<(ByteString, Option<i64>)>,
    unacked_bytes: usize,
    /// An `<r/>` is on its way or scheduled.
    pub ack_requested: bool,
}

impl StreamManagement {
    pub fn new(id: Option<String>) -> Self {
        StreamManagement { id, ..StreamManagement::default() }
    }

    /// A stanza from the client was handled.
    pub fn handled_one(&mut self) {
        self.handled = self.handled.wrapping_add(1);
    }

    /// A stanza went to the client.
    pub fn sent_one(&mut self, stanza: ByteString, message_id: Option<i64>) {
        self.sent = self.sent.wrapping_add(1);
        self.unacked_bytes += stanza.len();
        self.unacked.push_back((stanza, message_id));
    }

    /// The client has handled `h` stanzas in all: those are dropped from the queue.
    pub fn acknowledge(&mut self, h: u32) -> Result<(), String> {
        let acknowledged_before = self.sent.wrapping_sub(self.unacked.len() as u32);
        let newly = h.wrapping_sub(acknowledged_before) as usize;
        if newly > self.unacked.len() {
            return Err(format!("h={h} acknowledges more stanzas than the {} sent", self.sent));
        }
        for (stanza, _) in self.unacked.drain(..newly) {
            self.unacked_bytes -= stanza.len();
        }
        Ok(())
    }

    /// What the client has not acknowledged, oldest first.
    pub fn unacked(&self) -> impl Iterator<Item = &ByteString> {
        self.unacked.iter().map(|(stanza, _)| stanza)
    }

    pub fn unacked_bytes(&self) -> usize {
        self.unacked_bytes
    }

    /// The stored messages among the unacknowledged stanzas.
    pub fn unacked_messages(&self) -> Vec<i64> {
        self.unacked.iter().filter_map(|(_, id)| *id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_drop_what_the_client_has_and_refuse_what_it_cannot_have() {
        let mut sm = StreamManagement::new(None);
        for n in 0..5 {
            sm.sent_one(ByteString::from(format!("<message id='{n}'/>")), (n % 2 == 0).then_some(n));
        }
        sm.acknowledge(2).unwrap();
        assert_eq!(sm.unacked().count(), 3);
        assert_eq!(sm.unacked_messages(), [2, 4]);
        sm.acknowledge(2).unwrap();
        assert_eq!(sm.unacked().count(), 3, "an old h changes nothing");
        assert!(sm.acknowledge(6).is_err());
        sm.acknowledge(5).unwrap();
        assert_eq!((sm.unacked().count(), sm.unacked_bytes()), (0, 0));
    }

    #[test]
    fn counters_wrap_at_two_to_the_thirty_two() {
        let mut sm = StreamManagement { sent: u32::MAX - 1, ..StreamManagement::default() };
        sm.sent_one(ByteString::from_static("<a/>"), None);
        sm.sent_one(ByteString::from_static("<b/>"), None);
        sm.sent_one(ByteString::from_static("<c/>"), None);
        sm.acknowledge(0).unwrap();
        assert_eq!(sm.unacked().map(|s| s.to_string()).collect::<Vec<_>>(), ["<c/>"]);
        sm.handled = u32::MAX;
        sm.handled_one();
        assert_eq!(sm.handled, 0);
    }
}
