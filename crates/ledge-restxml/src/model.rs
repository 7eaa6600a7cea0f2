//! AWS service models (botocore's `service-2.json`), reduced to what the codec needs.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// The CloudFront model, trimmed of documentation (`scripts/trim-service-model.py`).
const CLOUDFRONT_MODEL: &str = include_str!("../../../spec/cloudfront-2020-05-31.json");

/// A parsed service model: shapes by name, and the operations' HTTP bindings.
#[derive(Debug)]
pub struct ServiceModel {
    shapes: HashMap<String, Shape>,
    operations: HashMap<String, Operation>,
}

/// One shape of the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Named members in the model's order.
    Structure {
        /// Members, in serialization order.
        members: Vec<Member>,
        /// Names of the members that must be present.
        required: Vec<String>,
    },
    /// A wrapped list: one child element per item.
    List {
        /// Shape of each item.
        member: String,
        /// Element name of each item (`member` when absent).
        member_name: Option<String>,
    },
    /// A leaf value.
    Scalar {
        /// `string`, `integer`, `long`, `boolean`, `timestamp`, `double`, `blob` …
        kind: String,
        /// The allowed values of an enum string.
        enumeration: Option<Vec<String>>,
    },
}

/// A member of a structure.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Member name (the key in botocore's JSON form).
    pub name: String,
    /// Shape of the value.
    pub shape: String,
    /// Element (or header, or query) name when it differs from the member name.
    pub location_name: Option<String>,
    /// `header`, `uri`, `querystring`, … for members outside the body.
    pub location: Option<String>,
}

/// An operation's HTTP binding and shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// HTTP method.
    pub method: String,
    /// Request URI template, e.g. `/2020-05-31/distribution/{Id}/config`.
    pub request_uri: String,
    /// Input shape name.
    pub input: Option<String>,
    /// Output shape name.
    pub output: Option<String>,
    /// Status code of a success.
    pub response_code: u16,
}

/// The model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Not JSON.
    #[error("service model is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not a service model.
    #[error("service model has no {0}")]
    Shape(String),
}

// === impl Member ===

impl Member {
    /// The element name of this member in a body.
    pub fn xml_name(&self) -> &str {
        self.location_name.as_deref().unwrap_or(&self.name)
    }
}

// === impl ServiceModel ===

impl ServiceModel {
    /// The CloudFront 2020-05-31 model embedded in the binary, parsed once.
    pub fn cloudfront() -> Result<&'static ServiceModel, &'static ModelError> {
        static MODEL: OnceLock<Result<ServiceModel, ModelError>> = OnceLock::new();
        MODEL
            .get_or_init(|| ServiceModel::from_json(CLOUDFRONT_MODEL))
            .as_ref()
    }

    /// Parses a botocore `service-2.json`.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let doc: Value = serde_json::from_str(text)?;
        let shapes_json = doc
            .get("shapes")
            .and_then(Value::as_object)
            .ok_or_else(|| ModelError::Shape("shapes".into()))?;
        let mut shapes = HashMap::with_capacity(shapes_json.len());
        for (name, s) in shapes_json {
            shapes.insert(name.clone(), parse_shape(s));
        }
        let mut operations = HashMap::new();
        if let Some(ops) = doc.get("operations").and_then(Value::as_object) {
            for (name, op) in ops {
                let http = op.get("http");
                let text = |v: Option<&Value>, k: &str| {
                    v.and_then(|h| h.get(k))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                operations.insert(
                    name.clone(),
                    Operation {
                        method: text(http, "method").unwrap_or_default(),
                        request_uri: text(http, "requestUri").unwrap_or_default(),
                        input: text(op.get("input"), "shape"),
                        output: text(op.get("output"), "shape"),
                        response_code: http
                            .and_then(|h| h.get("responseCode"))
                            .and_then(Value::as_u64)
                            .and_then(|c| u16::try_from(c).ok())
                            .unwrap_or(200),
                    },
                );
            }
        }
        Ok(Self { shapes, operations })
    }

    /// The shape with this name.
    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.shapes.get(name)
    }

    /// The operation with this name (e.g. `CreateDistribution`).
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations.get(name)
    }
}

fn parse_shape(s: &Value) -> Shape {
    let kind = s.get("type").and_then(Value::as_str).unwrap_or("string");
    match kind {
        "structure" => {
            let members = s
                .get("members")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(name, v)| Member {
                            name: name.clone(),
                            shape: str_of(v, "shape").unwrap_or_default(),
                            location_name: str_of(v, "locationName"),
                            location: str_of(v, "location"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let required = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Shape::Structure { members, required }
        }
        "list" => {
            let member = s.get("member");
            Shape::List {
                member: member.and_then(|m| str_of(m, "shape")).unwrap_or_default(),
                member_name: member.and_then(|m| str_of(m, "locationName")),
            }
        }
        other => Shape::Scalar {
            kind: other.to_string(),
            enumeration: s.get("enum").and_then(Value::as_array).map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            }),
        },
    }
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}
