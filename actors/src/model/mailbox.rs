//! An HTTP API user's mailbox (Ozeki 10's folders): what it sent, what it could not send,
//! what waits to be sent, what it deleted, and its inbox.
//!
//! The inbox is the archive itself: a message addressed to an HTTP user stays pending in
//! the 1:1 archive (an HTTP user holds no live station), and it is in the inbox until it is
//! marked or deleted. Every other folder holds [`Mail`] rows of its own.

use super::message::StoredMessage;

/// One of the five folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Folder {
    Inbox,
    /// Accepted, to be sent at its `time_to_send`.
    Outbox,
    Sent,
    /// Refused (an unknown recipient, a block…); `status` says why.
    NotSent,
    /// Deleted from another folder; deleting it here removes it.
    Deleted,
}

impl Folder {
    pub const NAMES: &'static str = "inbox, outbox, sent, notsent, deleted";

    pub fn as_str(self) -> &'static str {
        match self {
            Folder::Inbox => "inbox",
            Folder::Outbox => "outbox",
            Folder::Sent => "sent",
            Folder::NotSent => "notsent",
            Folder::Deleted => "deleted",
        }
    }

    /// A folder name in any case.
    pub fn parse(raw: &str) -> Option<Folder> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "inbox" => Some(Folder::Inbox),
            "outbox" => Some(Folder::Outbox),
            "sent" => Some(Folder::Sent),
            "notsent" => Some(Folder::NotSent),
            "deleted" => Some(Folder::Deleted),
            _ => None,
        }
    }
}

/// The reports a sender asked for (Ozeki's `*_report_requested`), kept and shown back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportRequests {
    pub submit: bool,
    pub delivery: bool,
    pub view: bool,
}

/// A message in one of an HTTP user's folders.
#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    /// The sender's id for it (a UUID from the vendor's client), or the archive id of a
    /// received message.
    pub message_id: String,
    pub folder: Folder,
    /// The sending account and station.
    pub from_user: String,
    pub from_station: Option<String>,
    /// The recipient as the sender wrote it (`bob@localhost@%`, an e-mail address…).
    pub to_address: String,
    /// The account it resolved to; `None` when it resolved to none.
    pub to_user: Option<String>,
    pub to_station: Option<String>,
    pub text: String,
    pub created_ms: i64,
    pub valid_until_ms: Option<i64>,
    pub time_to_send_ms: Option<i64>,
    /// `None` for a received message (the sender's door had no such flags).
    pub reports: Option<ReportRequests>,
    pub tags: Vec<(String, String)>,
    /// In `sent`: `SUCCESS`; in `notsent`: why it was refused.
    pub status: Option<String>,
    /// The archived message it is (sent, or received), when there is one.
    pub archive_id: Option<i64>,
    /// Marked as downloaded: kept in its folder, not downloaded again.
    pub marked: bool,
}

impl Mail {
    /// A message that waits for `owner` in the archive, as a message of its inbox.
    pub fn waiting(owner: &str, message: &StoredMessage) -> Mail {
        Mail {
            message_id: message.id.to_string(),
            folder: Folder::Inbox,
            from_user: message.from_user.clone(),
            from_station: message.from_resource.clone(),
            to_address: String::new(),
            to_user: Some(owner.to_owned()),
            to_station: message.to_resource.clone(),
            text: message.body.clone(),
            created_ms: message.stamp_ms,
            valid_until_ms: message.expires_ms,
            time_to_send_ms: None,
            reports: None,
            tags: Vec::new(),
            status: None,
            archive_id: Some(message.id),
            marked: false,
        }
    }
}

/// What to do with the messages a client names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailAction {
    /// Move to `deleted`; from `deleted`, remove.
    Delete,
    /// Keep, but do not download again.
    Mark,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_round_trip_in_any_case() {
        for folder in [Folder::Inbox, Folder::Outbox, Folder::Sent, Folder::NotSent, Folder::Deleted] {
            assert_eq!(Folder::parse(folder.as_str()), Some(folder));
            assert_eq!(Folder::parse(&folder.as_str().to_uppercase()), Some(folder));
        }
        assert_eq!(Folder::parse("trash"), None);
    }
}
