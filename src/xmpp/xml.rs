//! A small XML element tree for stanzas: parsing one element from a string (quick-xml) with
//! the restrictions XMPP puts on XML (RFC 6120 §11: no DTD, no entity beyond the five
//! predefined ones and character references, no comments or processing instructions), a
//! size and depth limit, namespaces resolved to each element's own `ns`, and writing back
//! with escaping.

use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Deepest nesting accepted in one stanza.
const MAX_DEPTH: usize = 32;

/// An element: local name, resolved namespace, attributes (qualified names as written,
/// `xmlns` declarations removed) and children.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Element {
    pub name: String,
    pub ns: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// Why a frame or body is not one acceptable XML element.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum XmlError {
    #[error("the stanza is {0} bytes; at most {1} are accepted")]
    TooLarge(usize, usize),
    #[error("not well-formed XML: {0}")]
    Malformed(String),
    #[error("{0} are not allowed in XMPP")]
    Restricted(&'static str),
    #[error("exactly one root element is expected; {0}")]
    Roots(&'static str),
    #[error("elements are nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl Element {
    pub fn new(name: &str, ns: &str) -> Self {
        Element { name: name.to_owned(), ns: ns.to_owned(), attrs: Vec::new(), children: Vec::new() }
    }

    /// Builder: adds an attribute (skipped when `value` is empty).
    pub fn attr(mut self, key: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.set_attr(key, value);
        }
        self
    }

    pub fn set_attr(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((key.to_owned(), value)),
        }
    }

    pub fn remove_attr(&mut self, key: &str) {
        self.attrs.retain(|(k, _)| k != key);
    }

    /// Builder: adds a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: adds text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Builder: adds `<name xmlns=ns>text</name>`.
    pub fn text_child(self, name: &str, ns: &str, text: impl Into<String>) -> Self {
        self.child(Element::new(name, ns).text(text))
    }

    pub fn get_attr(&self, key: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child named `name` in namespace `ns`.
    pub fn find(&self, name: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name && e.ns == ns)
    }

    /// The concatenated text content of this element's direct text children.
    pub fn text_content(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// The text of the child `name` in `ns`, if present.
    pub fn child_text(&self, name: &str, ns: &str) -> Option<String> {
        self.find(name, ns).map(Element::text_content)
    }

    /// Serialises the element; `parent_ns` is the namespace in scope (an `xmlns` is written
    /// only where it changes).
    pub fn write_to(&self, out: &mut String, parent_ns: &str) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns != parent_ns {
            let _ = write!(out, " xmlns=\"{}\"", escape(&self.ns));
        }
        for (key, value) in &self.attrs {
            let _ = write!(out, " {key}=\"{}\"", escape(value));
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &self.children {
            match child {
                Node::Element(e) => e.write_to(out, &self.ns),
                Node::Text(t) => out.push_str(&escape(t)),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    /// The element as a standalone document (its namespace declared on the root).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(128);
        self.write_to(&mut out, "");
        out
    }
}

/// Escapes text and attribute values.
pub fn escape(raw: &str) -> std::borrow::Cow<'_, str> {
    if !raw.contains(['&', '<', '>', '"', '\'']) {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Namespace declarations in scope: (prefix, uri), innermost last; "" is the default.
struct Scopes {
    frames: Vec<Vec<(String, String)>>,
}

impl Scopes {
    fn resolve(&self, prefix: &str) -> Option<&str> {
        self.frames.iter().rev().flat_map(|f| f.iter().rev()).find(|(p, _)| p == prefix).map(|(_, uri)| uri.as_str())
    }
}

fn malformed(e: impl std::fmt::Display) -> XmlError {
    XmlError::Malformed(e.to_string())
}

/// Opens an element: its namespace declarations go into a new scope, the rest are
/// attributes.
fn open(start: &BytesStart<'_>, scopes: &mut Scopes, default_ns: &str) -> Result<Element, XmlError> {
    let mut declared = Vec::new();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(malformed)?;
        let key = attr.key.into_inner().to_owned();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|_| XmlError::Restricted("entity references"))?
            .into_owned();
        if key == "xmlns" {
            declared.push((String::new(), value));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            declared.push((prefix.to_owned(), value));
        } else {
            attrs.push((key, value));
        }
    }
    scopes.frames.push(declared);
    let qname = start.name().into_inner().to_owned();
    let (prefix, local) = match qname.split_once(':') {
        Some((p, l)) => (p.to_owned(), l.to_owned()),
        None => (String::new(), qname),
    };
    let ns = match scopes.resolve(&prefix) {
        Some(uri) => uri.to_owned(),
        None if prefix.is_empty() => default_ns.to_owned(),
        None => return Err(XmlError::Malformed(format!("undeclared namespace prefix '{prefix}'"))),
    };
    Ok(Element { name: local, ns, attrs, children: Vec::new() })
}

/// Parses exactly one element from `input` (an XML declaration may precede it). Elements
/// without a namespace get `default_ns` (`jabber:client` for stanzas).
pub fn parse_element(input: &str, max_bytes: usize, default_ns: &str) -> Result<Element, XmlError> {
    if input.len() > max_bytes {
        return Err(XmlError::TooLarge(input.len(), max_bytes));
    }
    let mut reader = Reader::from_str(input);
    reader.config_mut().trim_text(false);
    let mut scopes = Scopes { frames: Vec::new() };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError::Roots("found a second one"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(open(&start, &mut scopes, default_ns)?);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    return Err(XmlError::Roots("found a second one"));
                }
                let element = open(&start, &mut scopes, default_ns)?;
                scopes.frames.pop();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                scopes.frames.pop();
                let element = stack.pop().ok_or_else(|| malformed("an end tag without a start"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                let content = text.xml_content(quick_xml::XmlVersion::Implicit1_0);
                match stack.last_mut() {
                    Some(parent) => push_text(parent, &content),
                    None if content.trim().is_empty() => {}
                    None => return Err(XmlError::Roots("found text outside the element")),
                }
            }
            Event::CData(data) => {
                let content = data.xml_content(quick_xml::XmlVersion::Implicit1_0);
                match stack.last_mut() {
                    Some(parent) => push_text(parent, &content),
                    None => return Err(XmlError::Roots("found text outside the element")),
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c.to_string(),
                    None => match reference.xml_content(quick_xml::XmlVersion::Implicit1_0).as_ref() {
                        "amp" => "&".into(),
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        _ => return Err(XmlError::Restricted("entity references other than the predefined five")),
                    },
                };
                match stack.last_mut() {
                    Some(parent) => push_text(parent, &resolved),
                    None => return Err(XmlError::Roots("found text outside the element")),
                }
            }
            Event::Decl(_) => {
                if root.is_some() || !stack.is_empty() {
                    return Err(malformed("an XML declaration inside the document"));
                }
            }
            Event::DocType(_) => return Err(XmlError::Restricted("DTDs (<!DOCTYPE>)")),
            Event::Comment(_) => return Err(XmlError::Restricted("comments")),
            Event::PI(_) => return Err(XmlError::Restricted("processing instructions")),
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed(format!("<{}> is not closed", stack[stack.len() - 1].name)));
    }
    root.ok_or(XmlError::Roots("found none"))
}

fn push_text(parent: &mut Element, text: &str) {
    if let Some(Node::Text(last)) = parent.children.last_mut() {
        last.push_str(text);
    } else {
        parent.children.push(Node::Text(text.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "jabber:client";

    #[test]
    fn parses_namespaces_text_and_entities() {
        let el = parse_element(
            "<?xml version='1.0'?><message to='bob@d' type='chat'><body>a &amp; b &#x263A;</body>\
             <x:active xmlns:x='http://jabber.org/protocol/chatstates'/></message>",
            4096,
            CLIENT,
        )
        .unwrap();
        assert_eq!((el.name.as_str(), el.ns.as_str()), ("message", CLIENT));
        assert_eq!(el.get_attr("to"), Some("bob@d"));
        assert_eq!(el.child_text("body", CLIENT).as_deref(), Some("a & b ☺"));
        assert!(el.find("active", "http://jabber.org/protocol/chatstates").is_some());
    }

    #[test]
    fn refuses_what_xmpp_forbids() {
        let cases = [
            ("<!DOCTYPE x [<!ENTITY a 'b'>]><message/>", "DTD"),
            ("<message><body>&a;</body></message>", "entity"),
            ("<message to='&a;'/>", "entity"),
            ("<message/><message/>", "one root"),
            ("<message><!-- hi --></message>", "comments"),
            ("<message><body></message>", "well-formed"),
            ("", "one root"),
            ("text", "one root"),
        ];
        for (input, needle) in cases {
            let error = parse_element(input, 4096, CLIENT).unwrap_err().to_string();
            assert!(error.contains(needle), "{input}: {error}");
        }
        assert!(matches!(parse_element("<message/>", 5, CLIENT), Err(XmlError::TooLarge(10, 5))));
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        assert_eq!(parse_element(&deep, 4096, CLIENT), Err(XmlError::TooDeep));
    }

    #[test]
    fn writes_back_with_escaping_and_namespaces() {
        let el = Element::new("message", CLIENT)
            .attr("to", "a\"b")
            .child(Element::new("body", CLIENT).text("<hi> & 'you'"))
            .child(Element::new("active", "http://jabber.org/protocol/chatstates"));
        let xml = el.to_xml();
        assert_eq!(
            xml,
            "<message xmlns=\"jabber:client\" to=\"a&quot;b\"><body>&lt;hi&gt; &amp; &apos;you&apos;</body>\
             <active xmlns=\"http://jabber.org/protocol/chatstates\"/></message>"
        );
        assert_eq!(parse_element(&xml, 4096, CLIENT).unwrap(), el);
    }
}
