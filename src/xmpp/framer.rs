//! The XML stream of one TCP client connection (RFC 6120 §4), cut into its parts as bytes
//! arrive: the stream header, each complete top-level element (a stanza, `<auth/>`,
//! `<starttls/>`…) as its own text for [`super::xml::parse_element`], and the stream's end.
//!
//! The framer only finds boundaries: it tracks tags, quotes and nesting, not meaning. It
//! holds the bytes of the element in progress and nothing else; whitespace between elements
//! (keepalives) is dropped. What XMPP forbids at this level (comments, DTDs, processing
//! instructions other than the XML declaration, text beside stanzas) is refused here, the
//! rest by the element parser.

use super::xml::XmlError;

/// One part of the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// A stream header (`<stream:stream …>`), made self-closing so it parses as an element.
    /// A header inside the stream is a restart (after STARTTLS or SASL).
    Open(String),
    /// One complete top-level element.
    Element(String),
    /// `</stream:stream>`.
    Close,
}

/// What came of the bytes pushed so far.
pub struct Framer {
    buf: Vec<u8>,
    /// Where scanning resumes; always at a tag start or in text.
    scan: usize,
    /// 0 before the header, 1 between stanzas, more inside one.
    depth: usize,
    /// Where the element in progress starts in `buf`.
    element_start: usize,
    max: usize,
}

enum Tag {
    Start { self_closing: bool, end: usize, is_stream: bool },
    End { end: usize },
    Skip { end: usize },
}

impl Framer {
    /// `max`: the most bytes one element may take.
    pub fn new(max: usize) -> Self {
        Framer { buf: Vec::new(), scan: 0, depth: 0, element_start: 0, max }
    }

    /// Starts over, as before a stream header (after STARTTLS).
    pub fn reset(&mut self) {
        *self = Framer::new(self.max);
    }

    /// Bytes that are buffered and not yet part of a finished element.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Appends `bytes` and returns the parts they completed, in order; an error ends the
    /// stream (its parts before the error are returned first by earlier calls only).
    pub fn push(&mut self, bytes: &[u8], parts: &mut Vec<Part>) -> Result<(), XmlError> {
        self.buf.extend_from_slice(bytes);
        let result = self.scan_parts(parts);
        // Drop what is finished: before the element in progress, or everything between
        // elements.
        let keep_from = if self.depth >= 2 { self.element_start } else { self.scan };
        if keep_from > 0 {
            self.buf.drain(..keep_from);
            self.scan -= keep_from;
            self.element_start = self.element_start.saturating_sub(keep_from);
        }
        if self.buf.is_empty() {
            // Nothing held: give the memory back (an idle stream keeps no buffer).
            self.buf = Vec::new();
        }
        result?;
        if self.buf.len() > self.max {
            return Err(XmlError::TooLarge(self.buf.len(), self.max));
        }
        Ok(())
    }

    fn scan_parts(&mut self, parts: &mut Vec<Part>) -> Result<(), XmlError> {
        while self.scan < self.buf.len() {
            let byte = self.buf[self.scan];
            if byte != b'<' {
                if self.depth <= 1 && !byte.is_ascii_whitespace() {
                    return Err(XmlError::Malformed("text outside a stanza".into()));
                }
                self.scan += 1;
                continue;
            }
            let Some(tag) = self.tag_at(self.scan)? else { return Ok(()) };
            match tag {
                Tag::Skip { end } => self.scan = end,
                Tag::Start { self_closing, end, is_stream } => {
                    if is_stream && self.depth <= 1 {
                        if self_closing {
                            return Err(XmlError::Malformed("the stream header cannot be self-closing".into()));
                        }
                        let header = &self.buf[self.scan..end - 1];
                        let mut text = String::from_utf8(header.to_vec()).map_err(|_| not_utf8())?;
                        text.push_str("/>");
                        parts.push(Part::Open(text));
                        self.depth = 1;
                    } else if self.depth == 0 {
                        return Err(XmlError::Malformed("the stream starts with <stream:stream>".into()));
                    } else if self.depth == 1 {
                        if self_closing {
                            parts.push(Part::Element(self.text(self.scan, end)?));
                        } else {
                            self.element_start = self.scan;
                            self.depth = 2;
                        }
                    } else if !self_closing {
                        self.depth += 1;
                    }
                    self.scan = end;
                }
                Tag::End { end } => {
                    match self.depth {
                        0 => return Err(XmlError::Malformed("an end tag before the stream header".into())),
                        1 => {
                            parts.push(Part::Close);
                            self.depth = 0;
                        }
                        2 => {
                            parts.push(Part::Element(self.text(self.element_start, end)?));
                            self.depth = 1;
                        }
                        _ => self.depth -= 1,
                    }
                    self.scan = end;
                }
            }
        }
        Ok(())
    }

    fn text(&self, from: usize, to: usize) -> Result<String, XmlError> {
        String::from_utf8(self.buf[from..to].to_vec()).map_err(|_| not_utf8())
    }

    /// The tag starting at `at` (a `<`), or `None` when its end has not arrived yet.
    fn tag_at(&self, at: usize) -> Result<Option<Tag>, XmlError> {
        let rest = &self.buf[at..];
        let Some(&next) = rest.get(1) else { return Ok(None) };
        match next {
            b'/' => Ok(find(rest, b">").map(|n| Tag::End { end: at + n + 1 })),
            b'?' => {
                // The XML declaration, before a stream header (a first one or a restart).
                if self.depth > 1 || !rest.starts_with(b"<?xml") && rest.len() >= 5 {
                    return Err(XmlError::Restricted("processing instructions"));
                }
                Ok(find(rest, b"?>").map(|n| Tag::Skip { end: at + n + 2 }))
            }
            b'!' => {
                const CDATA: &[u8] = b"<![CDATA[";
                let prefix = &rest[..rest.len().min(CDATA.len())];
                if !CDATA.starts_with(prefix) {
                    return Err(XmlError::Restricted("comments and DTDs"));
                }
                if rest.len() < CDATA.len() {
                    return Ok(None);
                }
                if self.depth < 2 {
                    return Err(XmlError::Malformed("character data outside a stanza".into()));
                }
                Ok(find(rest, b"]]>").map(|n| Tag::Skip { end: at + n + 3 }))
            }
            _ => {
                let mut quote = None;
                for (i, &b) in rest.iter().enumerate().skip(1) {
                    match (quote, b) {
                        (None, b'"' | b'\'') => quote = Some(b),
                        (Some(q), b) if b == q => quote = None,
                        (None, b'<') => return Err(XmlError::Malformed("'<' inside a tag".into())),
                        (None, b'>') => {
                            let self_closing = rest[i - 1] == b'/';
                            let name_end = rest[1..i]
                                .iter()
                                .position(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>')
                                .map_or(i, |p| p + 1);
                            let name = &rest[1..name_end];
                            let is_stream = name == b"stream:stream" || name == b"stream";
                            return Ok(Some(Tag::Start { self_closing, end: at + i + 1, is_stream }));
                        }
                        _ => {}
                    }
                }
                Ok(None)
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn not_utf8() -> XmlError {
    XmlError::Malformed("the stream is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client' \
                          xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>";

    fn all(framer: &mut Framer, input: &str) -> Result<Vec<Part>, XmlError> {
        let mut parts = Vec::new();
        framer.push(input.as_bytes(), &mut parts)?;
        Ok(parts)
    }

    #[test]
    fn a_stream_splits_into_header_elements_and_end_byte_by_byte_as_at_once() {
        let input = format!(
            "{HEADER} <auth mechanism='PLAIN'>AGEAYg==</auth>\n<iq id=\"a>b\"><bind><x/></bind></iq>\
             <message><body><![CDATA[<not a tag>]]></body></message><presence/></stream:stream>"
        );
        let expected = vec![
            Part::Open(HEADER[21..HEADER.len() - 1].to_owned() + "/>"),
            Part::Element("<auth mechanism='PLAIN'>AGEAYg==</auth>".into()),
            Part::Element("<iq id=\"a>b\"><bind><x/></bind></iq>".into()),
            Part::Element("<message><body><![CDATA[<not a tag>]]></body></message>".into()),
            Part::Element("<presence/>".into()),
            Part::Close,
        ];
        assert_eq!(all(&mut Framer::new(1000), &input).unwrap(), expected);
        let mut framer = Framer::new(1000);
        let mut parts = Vec::new();
        for byte in input.as_bytes() {
            framer.push(std::slice::from_ref(byte), &mut parts).unwrap();
        }
        assert_eq!(parts, expected);
        assert_eq!(framer.pending(), 0);
    }

    #[test]
    fn a_new_header_inside_the_stream_is_a_restart() {
        let mut framer = Framer::new(1000);
        let parts = all(&mut framer, &format!("{HEADER}<auth/>{HEADER}<iq/>")).unwrap();
        assert_eq!(parts.len(), 4);
        assert!(matches!(parts[2], Part::Open(_)));
        assert_eq!(parts[3], Part::Element("<iq/>".into()));
    }

    #[test]
    fn what_xmpp_forbids_is_refused() {
        for bad in [
            format!("{HEADER}<!-- c --><iq/>"),
            format!("{HEADER}<?pi x?>"),
            "<!DOCTYPE x>".to_owned(),
            format!("{HEADER}hello"),
            "<iq/>".to_owned(),
            format!("{HEADER}<iq><a<b/></iq>"),
        ] {
            assert!(all(&mut Framer::new(1000), &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_element_past_the_limit_is_refused_before_it_ends() {
        let mut framer = Framer::new(64);
        let mut parts = Vec::new();
        framer.push(HEADER.as_bytes(), &mut parts).unwrap();
        framer.push(b"<message><body>", &mut parts).unwrap();
        let error = framer.push(&[b'x'; 100], &mut parts).unwrap_err();
        assert!(matches!(error, XmlError::TooLarge(..)));
    }
}
