//! A bounded parse of an XML document into a small element tree.
//!
//! Only what AWS request bodies use is accepted: elements, text, CDATA, the five predefined
//! entities and character references. A DTD is refused outright, so no entity can be declared
//! and nothing can expand; element count and depth are capped.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::{XmlError, MAX_DEPTH, MAX_ELEMENTS};

/// One element: its local name, namespace (root only), text and children.
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) text: String,
    pub(crate) children: Vec<Element>,
}

fn bad<T>(msg: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError::MalformedInput(msg.into()))
}

/// Parses `xml` into its root element.
pub(crate) fn parse(xml: &[u8]) -> Result<Element, XmlError> {
    let Ok(text) = std::str::from_utf8(xml) else {
        return bad("The XML document is not valid UTF-8.");
    };
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return bad(format!("The XML document is not well-formed: {e}")),
        };
        match event {
            Event::DocType(_) => {
                return bad("DTDs and entity declarations are not allowed in the XML document.")
            }
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return bad("The XML document has more than one root element.");
            }
            Event::Start(start) => {
                count += 1;
                if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return bad("The XML document is too large or too deeply nested.");
                }
                stack.push(open(&start, stack.is_empty())?);
            }
            Event::Empty(start) => {
                count += 1;
                if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return bad("The XML document is too large or too deeply nested.");
                }
                let el = open(&start, stack.is_empty())?;
                close(el, &mut stack, &mut root);
            }
            Event::End(_) => match stack.pop() {
                Some(el) => close(el, &mut stack, &mut root),
                None => return bad("The XML document has an unmatched end tag."),
            },
            Event::Text(t) => append(&mut stack, &t.xml10_content())?,
            Event::CData(c) => append(&mut stack, &c.xml10_content())?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return bad(format!("Undefined entity &{other};")),
                    },
                    Err(_) => return bad("Invalid character reference."),
                };
                append(&mut stack, resolved.encode_utf8(&mut [0; 4]))?;
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return bad("The XML document ended inside an element.");
    }
    match root {
        Some(r) => Ok(r),
        None => bad("The XML document is empty."),
    }
}

fn open(start: &quick_xml::events::BytesStart<'_>, is_root: bool) -> Result<Element, XmlError> {
    let name = start.local_name().as_ref().to_owned();
    let mut namespace = None;
    if is_root {
        for attr in start.attributes() {
            let Ok(attr) = attr else {
                return bad("The XML document has a malformed attribute.");
            };
            if attr.key.as_ref() == "xmlns" {
                match attr.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                    Ok(v) => namespace = Some(v.into_owned()),
                    Err(_) => return bad("The XML namespace is malformed."),
                }
            }
        }
    }
    Ok(Element {
        name,
        namespace,
        ..Element::default()
    })
}

fn close(el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn append(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => bad("The XML document has text outside its root element."),
    }
}
