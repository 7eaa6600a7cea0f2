//! The REST-XML codec of ledge's CloudFront API, driven by AWS's own service model.
//!
//! CloudFront's API is XML whose shapes (element names, member order, list wrappers, types,
//! required members, enums) are fully described by botocore's service model. Rather than
//! hand-write a type per shape, this crate reads that model (kept in the repository as
//! `spec/cloudfront-2020-05-31.json`, see `scripts/trim-service-model.py`) and decodes request
//! bodies into JSON values of botocore's own form (the form of boto3 dicts and of
//! `aws cloudfront … --distribution-config file://config.json`), and encodes such values back to
//! XML in the model's member order. Because both directions follow one model, whatever a client
//! puts comes back exactly, including members ledge does not act on.
//!
//! # Design
//! Decoding is two passes: a bounded parse into a small element tree (refusing DTDs and entity
//! declarations, so nothing can expand), then a walk of that tree against a shape. The tree walk
//! reports the error codes CloudFront uses: `MalformedInput` for XML that does not parse,
//! `MalformedXML` for XML that does not fit the shape, `InconsistentQuantities` for a
//! `Quantity` that does not match its `Items`.
//!
//! # Limitations
//! Flattened lists and maps do not occur in CloudFront's request shapes and are refused.

mod model;
mod tree;

use std::fmt::Write as _;

use serde_json::{Map, Value};

pub use model::{ModelError, ServiceModel, Shape};

/// The XML namespace of CloudFront API version 2020-05-31.
pub const CLOUDFRONT_NAMESPACE: &str = "http://cloudfront.amazonaws.com/doc/2020-05-31/";

/// Most elements one document may hold.
pub const MAX_ELEMENTS: usize = 100_000;
/// Deepest nesting one document may have.
pub const MAX_DEPTH: usize = 64;

/// Why a request body was refused, as CloudFront words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML, or XML with a DTD.
    #[error("{0}")]
    MalformedInput(String),
    /// Well-formed XML that does not fit the shape (unknown or missing element, bad value).
    #[error("{0}")]
    MalformedXml(String),
    /// A `Quantity` that differs from the number of `Items`.
    #[error("{0}")]
    InconsistentQuantities(String),
}

impl XmlError {
    /// The CloudFront error code (`Code` of the error response).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedInput(_) => "MalformedInput",
            Self::MalformedXml(_) => "MalformedXML",
            Self::InconsistentQuantities(_) => "InconsistentQuantities",
        }
    }
}

fn malformed<T>(msg: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError::MalformedXml(msg.into()))
}

// === impl ServiceModel: decoding ===

impl ServiceModel {
    /// Decodes a document whose root element is `root` and whose content is `shape`.
    ///
    /// The root may carry no namespace or CloudFront's; any other is refused.
    pub fn decode(&self, shape: &str, root: &str, xml: &[u8]) -> Result<Value, XmlError> {
        let element = tree::parse(xml)?;
        if element.name != root {
            return malformed(format!(
                "Expected the root element {root}, found {}",
                element.name
            ));
        }
        if let Some(ns) = &element.namespace {
            if ns != CLOUDFRONT_NAMESPACE {
                return malformed(format!("Unexpected XML namespace {ns}"));
            }
        }
        let value = self.decode_element(shape, &element)?;
        check_quantities(&value, root)?;
        Ok(value)
    }

    fn decode_element(&self, shape_name: &str, el: &tree::Element) -> Result<Value, XmlError> {
        let shape = self
            .shape(shape_name)
            .ok_or_else(|| XmlError::MalformedXml(format!("Unknown shape {shape_name}")))?;
        match shape {
            Shape::Structure { members, required } => {
                if !el.text.trim().is_empty() {
                    return malformed(format!("Unexpected text in element {}", el.name));
                }
                let mut out = Map::new();
                for child in &el.children {
                    let Some(member) = members
                        .iter()
                        .find(|m| m.location.is_none() && m.xml_name() == child.name)
                    else {
                        return malformed(format!(
                            "Unexpected element {} in {}",
                            child.name, el.name
                        ));
                    };
                    if out.contains_key(&member.name) {
                        return malformed(format!(
                            "Element {} appears twice in {}",
                            child.name, el.name
                        ));
                    }
                    let value = self.decode_element(&member.shape, child)?;
                    out.insert(member.name.clone(), value);
                }
                for name in required {
                    let in_body = members
                        .iter()
                        .any(|m| &m.name == name && m.location.is_none());
                    if in_body && !out.contains_key(name) {
                        return malformed(format!(
                            "Missing required element {name} in {}",
                            el.name
                        ));
                    }
                }
                Ok(Value::Object(out))
            }
            Shape::List {
                member,
                member_name,
            } => {
                let wanted = member_name.as_deref().unwrap_or("member");
                let mut items = Vec::with_capacity(el.children.len());
                for child in &el.children {
                    if child.name != wanted {
                        return malformed(format!(
                            "Unexpected element {} in {}, expected {wanted}",
                            child.name, el.name
                        ));
                    }
                    items.push(self.decode_element(member, child)?);
                }
                Ok(Value::Array(items))
            }
            Shape::Scalar { kind, enumeration } => {
                if !el.children.is_empty() {
                    return malformed(format!("Element {} must hold a value", el.name));
                }
                decode_scalar(kind, enumeration.as_deref(), &el.text, &el.name)
            }
        }
    }
}

fn decode_scalar(
    kind: &str,
    enumeration: Option<&[String]>,
    text: &str,
    element: &str,
) -> Result<Value, XmlError> {
    let bad = || malformed(format!("Invalid value {text:?} for element {element}"));
    match kind {
        "boolean" => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => bad(),
        },
        "integer" | "long" => match text.trim().parse::<i64>() {
            Ok(n) => Ok(Value::from(n)),
            Err(_) => bad(),
        },
        "double" | "float" => match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Value::from(n)),
            _ => bad(),
        },
        _ => {
            if let Some(allowed) = enumeration {
                if !allowed.iter().any(|a| a == text) {
                    return bad();
                }
            }
            Ok(Value::String(text.to_string()))
        }
    }
}

/// Checks every `{Quantity, Items}` pair in a decoded value.
pub fn check_quantities(value: &Value, path: &str) -> Result<(), XmlError> {
    match value {
        Value::Object(map) => {
            if let Some(q) = map.get("Quantity").and_then(Value::as_i64) {
                let items = map
                    .get("Items")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                if q < 0 || items as i64 != q {
                    return Err(XmlError::InconsistentQuantities(format!(
                        "The value of Quantity and the size of Items don't match in {path}."
                    )));
                }
            }
            for (k, v) in map {
                check_quantities(v, &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_quantities(v, path)),
        _ => Ok(()),
    }
}

// === impl ServiceModel: encoding ===

impl ServiceModel {
    /// Encodes `value` (botocore's JSON form of `shape`) as a document with root element `root`
    /// in CloudFront's namespace. Members absent from `value` are left out.
    pub fn encode(&self, shape: &str, root: &str, value: &Value) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.encode_element(shape, root, Some(CLOUDFRONT_NAMESPACE), value, &mut out);
        out
    }

    /// Encodes `value` as one element, without an XML declaration (for embedding).
    pub fn encode_fragment(&self, shape: &str, name: &str, value: &Value) -> String {
        let mut out = String::new();
        self.encode_element(shape, name, None, value, &mut out);
        out
    }

    fn encode_element(
        &self,
        shape_name: &str,
        name: &str,
        namespace: Option<&str>,
        value: &Value,
        out: &mut String,
    ) {
        let Some(shape) = self.shape(shape_name) else {
            return;
        };
        out.push('<');
        out.push_str(name);
        if let Some(ns) = namespace {
            let _ = write!(out, " xmlns=\"{ns}\"");
        }
        out.push('>');
        match (shape, value) {
            (Shape::Structure { members, .. }, Value::Object(map)) => {
                for m in members.iter().filter(|m| m.location.is_none()) {
                    if let Some(v) = map.get(&m.name).filter(|v| !v.is_null()) {
                        self.encode_element(&m.shape, m.xml_name(), None, v, out);
                    }
                }
            }
            (
                Shape::List {
                    member,
                    member_name,
                },
                Value::Array(items),
            ) => {
                let item_name = member_name.as_deref().unwrap_or("member");
                for item in items {
                    self.encode_element(member, item_name, None, item, out);
                }
            }
            (_, Value::String(s)) => out.push_str(&quick_xml::escape::escape(s.as_str())),
            (_, Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
            (_, Value::Number(n)) => {
                let _ = write!(out, "{n}");
            }
            _ => {}
        }
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
}

#[cfg(test)]
mod tests;
