//! The Ozeki 10 HTTP API's replies: the REST form's envelope and message objects
//! (`specs/vendor_apis.md` §1.7), and the URL form's XML, HTML and JSON (§1.5); Ozeki's
//! `yyyy-MM-dd HH:mm:ss` (UTC) timestamps.

use quick_xml::escape::escape;
use serde_json::{json, Map, Value};
use switchboard_actors::model::mailbox::Mail;
use switchboard_actors::{Address, Hosts};
use time::{OffsetDateTime, PrimitiveDateTime};

/// `yyyy-MM-dd HH:mm:ss`, UTC.
pub fn ozeki_time(ms: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses `yyyy-MM-ddTHH:mm:ss` or `yyyy-MM-dd HH:mm:ss` (fractions of a second allowed),
/// read as UTC, into epoch milliseconds.
pub fn parse_ozeki_time(raw: &str) -> Option<i64> {
    let format = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day][first [T][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    let t = PrimitiveDateTime::parse(raw.trim(), format).ok()?;
    Some((t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
}

/// The sender's address as Ozeki shows it.
pub fn from_address(hosts: &Hosts, mail: &Mail) -> String {
    hosts.render(&Address::user(mail.from_user.as_str()))
}

/// The recipient as the sender wrote it, or the account it is.
pub fn to_address(hosts: &Hosts, mail: &Mail) -> String {
    match (&mail.to_address, &mail.to_user) {
        (written, _) if !written.is_empty() => written.clone(),
        (_, Some(user)) => hosts.render(&Address::user(user.as_str())),
        _ => String::new(),
    }
}

/// A message object (§1.7 "M"), keys omitted when empty.
pub fn message_object(hosts: &Hosts, mail: &Mail) -> Value {
    let mut m = Map::new();
    let mut put = |key: &str, value: Value| {
        m.insert(key.to_owned(), value);
    };
    put("message_id", json!(mail.message_id));
    put("from_address", json!(from_address(hosts, mail)));
    if let Some(station) = &mail.from_station {
        put("from_station", json!(station));
    }
    put("to_address", json!(to_address(hosts, mail)));
    if let Some(station) = &mail.to_station {
        put("to_station", json!(station));
    }
    if !mail.text.is_empty() {
        put("text", json!(mail.text));
    }
    put("create_date", json!(ozeki_time(mail.created_ms)));
    if let Some(until) = mail.valid_until_ms {
        put("valid_until", json!(ozeki_time(until)));
    }
    if let Some(at) = mail.time_to_send_ms {
        put("time_to_send", json!(ozeki_time(at)));
    }
    if let Some(reports) = mail.reports {
        put("submit_report_requested", json!(reports.submit));
        put("delivery_report_requested", json!(reports.delivery));
        put("view_report_requested", json!(reports.view));
    }
    if !mail.tags.is_empty() {
        let tags: Vec<Value> = mail.tags.iter().map(|(name, value)| json!({"name": name, "value": value})).collect();
        put("tags", Value::Array(tags));
    }
    if let Some(status) = &mail.status {
        put("status", json!(status));
    }
    Value::Object(m)
}

/// The REST form's envelope.
pub fn envelope(http_code: u16, response_code: &str, response_msg: &str, data: Value) -> Value {
    json!({"http_code": http_code, "response_code": response_code, "response_msg": response_msg, "data": data})
}

/// How the URL form answers (`ResponseFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlFormat {
    Xml,
    Html,
    Json,
}

impl UrlFormat {
    pub fn parse(raw: Option<&str>) -> Result<UrlFormat, String> {
        match raw.map(|r| r.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("xml") => Ok(UrlFormat::Xml),
            Some("html") => Ok(UrlFormat::Html),
            Some("json") => Ok(UrlFormat::Json),
            Some(other) => Err(format!("ResponseFormat {other:?} is not one of xml, html, json")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            UrlFormat::Xml => "application/xml; charset=utf-8",
            UrlFormat::Html => "text/html; charset=utf-8",
            UrlFormat::Json => "application/json",
        }
    }
}

/// One record of a URL-form reply's `data`: its element name and its fields, in order.
pub struct Record {
    pub element: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

/// The accept report of one sent message (`statuscode` 0: accepted).
pub fn accept_report(mail: &Mail, message_type: &str) -> Record {
    let accepted = mail.status.as_deref() == Some(switchboard_actors::mailbox::SUCCESS);
    let (code, message) = if accepted {
        ("0".to_owned(), "Message accepted for delivery".to_owned())
    } else {
        ("1".to_owned(), mail.status.clone().unwrap_or_default())
    };
    Record {
        element: "acceptreport",
        fields: vec![
            ("statuscode", code),
            ("statusmessage", message),
            ("messageid", mail.message_id.clone()),
            ("recipient", mail.to_address.clone()),
            ("messagetype", message_type.to_owned()),
            ("messagedata", mail.text.clone()),
        ],
    }
}

/// A downloaded message.
pub fn received_message(hosts: &Hosts, mail: &Mail) -> Record {
    Record {
        element: "message",
        fields: vec![
            ("messageid", mail.message_id.clone()),
            ("originator", from_address(hosts, mail)),
            ("recipient", to_address(hosts, mail)),
            ("messagetype", "SMS:TEXT".to_owned()),
            ("messagedata", mail.text.clone()),
            ("senttime", ozeki_time(mail.created_ms)),
            ("receivedtime", ozeki_time(mail.created_ms)),
        ],
    }
}

/// A URL-form reply: `<response><action/><code/><message/><data>records</data></response>`,
/// or the same as HTML or JSON.
pub fn url_reply(format: UrlFormat, action: &str, code: u16, message: &str, records: &[Record]) -> String {
    match format {
        UrlFormat::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>\n");
            out.push_str(&format!("<action>{}</action>\n", escape(action)));
            out.push_str(&format!("<code>{code}</code>\n<message>{}</message>\n<data>\n", escape(message)));
            for record in records {
                out.push_str(&format!("<{}>", record.element));
                for (name, value) in &record.fields {
                    out.push_str(&format!("<{name}>{}</{name}>", escape(value.as_str())));
                }
                out.push_str(&format!("</{}>\n", record.element));
            }
            out.push_str("</data>\n</response>\n");
            out
        }
        UrlFormat::Html => {
            let mut out = format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title></head><body>\n\
                 <h1>{0}</h1>\n<p>Code: {1}</p>\n<p>Message: {2}</p>\n",
                escape(action),
                code,
                escape(message)
            );
            if let Some(first) = records.first() {
                out.push_str("<table>\n<tr>");
                for (name, _) in &first.fields {
                    out.push_str(&format!("<th>{name}</th>"));
                }
                out.push_str("</tr>\n");
                for record in records {
                    out.push_str("<tr>");
                    for (_, value) in &record.fields {
                        out.push_str(&format!("<td>{}</td>", escape(value.as_str())));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</table>\n");
            }
            out.push_str("</body></html>\n");
            out
        }
        UrlFormat::Json => {
            let element = records.first().map_or("message", |r| r.element);
            let list: Vec<Value> = records
                .iter()
                .map(|r| Value::Object(r.fields.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect()))
                .collect();
            json!({"response": {"action": action, "code": code, "message": message, "data": {element: list}}})
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_actors::model::mailbox::{Folder, ReportRequests};

    fn hosts() -> Hosts {
        Hosts::new("localhost", "conference")
    }

    fn sent() -> Mail {
        Mail {
            message_id: "7d1b4a3e-0000-4000-8000-000000000001".into(),
            folder: Folder::Sent,
            from_user: "gateway".into(),
            from_station: None,
            to_address: "bob@localhost@%".into(),
            to_user: Some("bob".into()),
            to_station: None,
            text: "Hello <world>".into(),
            created_ms: 1_764_590_400_000,
            valid_until_ms: Some(1_764_590_460_000),
            time_to_send_ms: Some(1_764_590_400_000),
            reports: Some(ReportRequests { submit: true, delivery: true, view: false }),
            tags: vec![("campaign".into(), "x".into())],
            status: Some("SUCCESS".into()),
            archive_id: Some(7),
            marked: false,
        }
    }

    #[test]
    fn times_are_ozeki_style_utc_and_both_spellings_parse() {
        assert_eq!(ozeki_time(1_764_590_400_000), "2025-12-01 12:00:00");
        assert_eq!(parse_ozeki_time("2025-12-01T12:00:00"), Some(1_764_590_400_000));
        assert_eq!(parse_ozeki_time("2025-12-01 12:00:00.250"), Some(1_764_590_400_250));
        assert_eq!(parse_ozeki_time("yesterday"), None);
    }

    #[test]
    fn a_sent_message_serializes_exactly_as_the_rest_form_shows_it() {
        let m = message_object(&hosts(), &sent());
        assert_eq!(
            m,
            json!({
                "message_id": "7d1b4a3e-0000-4000-8000-000000000001",
                "from_address": "gateway@localhost",
                "to_address": "bob@localhost@%",
                "text": "Hello <world>",
                "create_date": "2025-12-01 12:00:00",
                "valid_until": "2025-12-01 12:01:00",
                "time_to_send": "2025-12-01 12:00:00",
                "submit_report_requested": true,
                "delivery_report_requested": true,
                "view_report_requested": false,
                "tags": [{"name": "campaign", "value": "x"}],
                "status": "SUCCESS"
            })
        );
        let send = json!({"total_count": 1, "success_count": 1, "failed_count": 0, "messages": [m]});
        let reply = envelope(200, "SUCCESS", "1 of 1 messages sent", send.clone());
        assert_eq!(
            reply,
            json!({"http_code": 200, "response_code": "SUCCESS", "response_msg": "1 of 1 messages sent", "data": send})
        );
    }

    #[test]
    fn a_received_message_names_its_sender_and_omits_what_it_lacks() {
        let received = Mail {
            message_id: "42".into(),
            folder: Folder::Inbox,
            from_user: "ann".into(),
            from_station: Some("web".into()),
            to_address: String::new(),
            to_station: None,
            reports: None,
            tags: vec![],
            status: None,
            valid_until_ms: None,
            time_to_send_ms: None,
            to_user: Some("gateway".into()),
            ..sent()
        };
        assert_eq!(
            message_object(&hosts(), &received),
            json!({
                "message_id": "42",
                "from_address": "ann@localhost",
                "from_station": "web",
                "to_address": "gateway@localhost",
                "text": "Hello <world>",
                "create_date": "2025-12-01 12:00:00"
            })
        );
    }

    #[test]
    fn url_replies_escape_what_they_carry() {
        let xml = url_reply(UrlFormat::Xml, "sendmessage", 200, "ok", &[accept_report(&sent(), "SMS:TEXT")]);
        assert!(xml.contains("<action>sendmessage</action>"), "{xml}");
        assert!(xml.contains("<acceptreport><statuscode>0</statuscode>"), "{xml}");
        assert!(xml.contains("<messagedata>Hello &lt;world&gt;</messagedata>"), "{xml}");
        let json: Value =
            serde_json::from_str(&url_reply(UrlFormat::Json, "sendmessage", 200, "ok", &[accept_report(&sent(), "t")]))
                .unwrap();
        assert_eq!(json["response"]["data"]["acceptreport"][0]["messagedata"], "Hello <world>");
        let html = url_reply(UrlFormat::Html, "receivemessage", 200, "ok", &[received_message(&hosts(), &sent())]);
        assert!(html.contains("<td>Hello &lt;world&gt;</td>"), "{html}");
    }
}
