//! vCards (vcard-temp, XEP-0054) as the doors take and show them: one
//! `<vCard xmlns='vcard-temp'>` element, checked like a stanza (RFC 6120 §11 restrictions,
//! size and depth limits) and stored as written back; and the photo in it, which is the
//! user's avatar.

use base64::Engine as _;

use crate::error::ApiError;
use crate::xmpp::xml::{parse_element, Element};

pub const NS: &str = "vcard-temp";

/// Checks a vCard as given (by the admin API or an XMPP client); the XML to store.
pub fn check(xml: &str, max_bytes: usize) -> Result<String, ApiError> {
    let element =
        parse_element(xml.trim(), max_bytes, "").map_err(|e| ApiError::bad_request(format!("invalid vCard: {e}")))?;
    check_element(&element)?;
    Ok(element.to_xml())
}

/// Checks a vCard element (the payload of an XMPP `vcard-temp` set).
pub fn check_element(element: &Element) -> Result<(), ApiError> {
    if element.name != "vCard" || element.ns != NS {
        return Err(ApiError::bad_request(format!(
            "a vCard is one <vCard xmlns='{NS}'> element, not <{} xmlns='{}'>",
            element.name, element.ns
        )));
    }
    Ok(())
}

/// A stored vCard as an element (`None` if it no longer parses, which a check prevents).
pub fn parse_stored(xml: &str) -> Option<Element> {
    parse_element(xml, usize::MAX, NS).ok()
}

/// A vCard's photo: its media type and bytes.
#[derive(Debug, PartialEq)]
pub struct Photo {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// The `<PHOTO><TYPE/><BINVAL/></PHOTO>` of a vCard, when it holds an image.
pub fn photo(vcard: &Element) -> Option<Photo> {
    let photo = vcard.find("PHOTO", NS)?;
    let media_type = photo.child_text("TYPE", NS).map(|t| t.trim().to_owned()).unwrap_or_else(|| "image/png".into());
    if !media_type.starts_with("image/") || media_type.contains(['\r', '\n']) {
        return None;
    }
    let encoded: String = photo.child_text("BINVAL", NS)?.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    (!bytes.is_empty()).then_some(Photo { media_type, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vcard_is_checked_and_its_photo_read() {
        let xml = "<vCard xmlns='vcard-temp'><FN>Ann</FN><PHOTO><TYPE>image/png</TYPE>\
                   <BINVAL>iVBO\nRw==</BINVAL></PHOTO></vCard>";
        let stored = check(xml, 10_000).unwrap();
        let element = parse_stored(&stored).unwrap();
        assert_eq!(element.child_text("FN", NS).as_deref(), Some("Ann"));
        let photo = photo(&element).unwrap();
        assert_eq!(photo.media_type, "image/png");
        assert_eq!(photo.bytes, [0x89, 0x50, 0x4e, 0x47]);
    }

    #[test]
    fn other_elements_and_bad_xml_are_refused() {
        assert!(check("<vcard xmlns='vcard-temp'/>", 100).is_err());
        assert!(check("<vCard/>", 100).is_err());
        assert!(check("<vCard xmlns='vcard-temp'>", 100).is_err());
        assert!(check("<!DOCTYPE x><vCard xmlns='vcard-temp'/>", 100).is_err());
        assert!(check(&format!("<vCard xmlns='vcard-temp'><FN>{}</FN></vCard>", "a".repeat(200)), 100).is_err());
    }

    #[test]
    fn a_photo_that_is_not_an_image_is_no_avatar() {
        let xml = "<vCard xmlns='vcard-temp'><PHOTO><TYPE>text/html</TYPE><BINVAL>PGI+</BINVAL></PHOTO></vCard>";
        assert!(photo(&parse_stored(xml).unwrap()).is_none());
    }
}
