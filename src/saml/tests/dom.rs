//! A minimal mutable DOM for building attacks out of genuinely signed
//! documents. It keeps names, attributes and text exactly as written (raw,
//! still escaped), so untouched signed parts canonicalize as before.

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, Clone)]
pub enum XNode {
    Element(XElement),
    /// Raw markup or text, written back verbatim.
    Raw(String),
}

#[derive(Debug, Clone)]
pub struct XElement {
    /// Qualified name as written (`saml2:Assertion`).
    pub name: String,
    /// Attributes as written (`xmlns:…` included), values still escaped.
    pub attrs: Vec<(String, String)>,
    pub children: Vec<XNode>,
}

impl XElement {
    pub fn new(name: &str) -> Self {
        Self { name: name.to_string(), attrs: Vec::new(), children: Vec::new() }
    }

    pub fn local(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    pub fn set_attr(&mut self, key: &str, value: &str) {
        match self.attrs.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.attrs.push((key.to_string(), value.to_string())),
        }
    }

    /// Index path (child indexes) to the first descendant-or-self in
    /// document order whose local name is `local`.
    pub fn path_to(&self, local: &str) -> Option<Vec<usize>> {
        if self.local() == local {
            return Some(Vec::new());
        }
        for (index, child) in self.children.iter().enumerate() {
            if let XNode::Element(e) = child {
                if let Some(mut rest) = e.path_to(local) {
                    rest.insert(0, index);
                    return Some(rest);
                }
            }
        }
        None
    }

    pub fn at(&self, path: &[usize]) -> &XElement {
        match path.split_first() {
            None => self,
            Some((first, rest)) => match &self.children[*first] {
                XNode::Element(e) => e.at(rest),
                XNode::Raw(_) => panic!("path through text"),
            },
        }
    }

    pub fn at_mut(&mut self, path: &[usize]) -> &mut XElement {
        match path.split_first() {
            None => self,
            Some((first, rest)) => match &mut self.children[*first] {
                XNode::Element(e) => e.at_mut(rest),
                XNode::Raw(_) => panic!("path through text"),
            },
        }
    }

    pub fn find_mut(&mut self, local: &str) -> &mut XElement {
        let path = self.path_to(local).unwrap_or_else(|| panic!("no {local}"));
        self.at_mut(&path)
    }

    /// Removes and returns the first element child named `local`.
    pub fn take_child(&mut self, local: &str) -> XElement {
        let index = self
            .children
            .iter()
            .position(|c| matches!(c, XNode::Element(e) if e.local() == local))
            .unwrap_or_else(|| panic!("no child {local} in {}", self.name));
        match self.children.remove(index) {
            XNode::Element(e) => e,
            XNode::Raw(_) => unreachable!(),
        }
    }

    /// Index of the first element child named `local`.
    pub fn child_index(&self, local: &str) -> usize {
        self.children
            .iter()
            .position(|c| matches!(c, XNode::Element(e) if e.local() == local))
            .unwrap_or_else(|| panic!("no child {local} in {}", self.name))
    }

    pub fn insert(&mut self, index: usize, element: XElement) {
        self.children.insert(index, XNode::Element(element));
    }

    pub fn push(&mut self, element: XElement) {
        self.children.push(XNode::Element(element));
    }

    /// Replaces the text content with `escaped_text` (already escaped).
    pub fn set_text(&mut self, escaped_text: &str) {
        self.children = vec![XNode::Raw(escaped_text.to_string())];
    }

    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push_str(&format!(" {k}=\"{}\"", v.replace('"', "&quot;")));
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &self.children {
            match child {
                XNode::Element(e) => e.write(out),
                XNode::Raw(raw) => out.push_str(raw),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

fn start(e: &quick_xml::events::BytesStart<'_>) -> XElement {
    let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
    let attrs = e
        .attributes()
        .map(|a| {
            let a = a.unwrap();
            (String::from_utf8(a.key.as_ref().to_vec()).unwrap(), String::from_utf8(a.value.to_vec()).unwrap())
        })
        .collect();
    XElement { name, attrs, children: Vec::new() }
}

/// Parses a document (declaration and prolog dropped) into its root element.
pub fn parse(xml: &str) -> XElement {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<XElement> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().unwrap();
        let raw = |text: String, stack: &mut Vec<XElement>| {
            if let Some(top) = stack.last_mut() {
                top.children.push(XNode::Raw(text));
            }
        };
        match event {
            Event::Start(e) => stack.push(start(&e)),
            Event::Empty(e) => {
                let element = start(&e);
                match stack.last_mut() {
                    Some(top) => top.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = stack.pop().unwrap();
                match stack.last_mut() {
                    Some(top) => top.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => raw(String::from_utf8(t.to_vec()).unwrap(), &mut stack),
            Event::GeneralRef(r) => raw(format!("&{};", String::from_utf8(r.to_vec()).unwrap()), &mut stack),
            Event::CData(c) => raw(format!("<![CDATA[{}]]>", String::from_utf8(c.to_vec()).unwrap()), &mut stack),
            Event::Comment(c) => raw(format!("<!--{}-->", String::from_utf8(c.to_vec()).unwrap()), &mut stack),
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    root.unwrap()
}
