//! Subsonic answers: one tree rendered as JSON (`f=json`) or as the API's XML, where a scalar
//! field is an attribute, an object or a list of objects is child elements, and `value` is
//! an element's text.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub const API_VERSION: &str = "1.16.1";
const XMLNS: &str = "http://subsonic.org/restapi";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

impl Format {
    pub fn from_param(f: Option<&str>) -> Format {
        match f {
            Some("json") => Format::Json,
            _ => Format::Xml,
        }
    }
}

/// A failed call: a Subsonic error code and a message for people.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u32,
    pub message: String,
    /// The HTTP status (200 as the API wants, except where a client must see a failure).
    pub status: StatusCode,
}

impl ApiError {
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            status: StatusCode::OK,
        }
    }
    pub fn missing(param: &str) -> Self {
        Self::new(10, format!("required parameter '{param}' is missing"))
    }
    pub fn bad(param: &str, why: &str) -> Self {
        Self::new(10, format!("parameter '{param}' {why}"))
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(70, format!("{what} not found"))
    }
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::new(0, format!("{e:#}"))
    }
}

fn envelope(status: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("status".into(), json!(status));
    m.insert("version".into(), json!(API_VERSION));
    m.insert("type".into(), json!("meff"));
    m.insert("serverVersion".into(), json!(env!("CARGO_PKG_VERSION")));
    m.insert("openSubsonic".into(), json!(true));
    m
}

pub fn ok(format: Format, body: Map<String, Value>) -> Response {
    let mut m = envelope("ok");
    m.extend(body);
    render(format, m, StatusCode::OK)
}

pub fn fail(format: Format, e: &ApiError) -> Response {
    let mut m = envelope("failed");
    m.insert(
        "error".into(),
        json!({"code": e.code, "message": e.message}),
    );
    render(format, m, e.status)
}

fn render(format: Format, m: Map<String, Value>, status: StatusCode) -> Response {
    let (body, kind) = match format {
        Format::Json => (
            json!({ "subsonic-response": Value::Object(m) }).to_string(),
            "application/json",
        ),
        Format::Xml => (to_xml(&m), "text/xml; charset=utf-8"),
    };
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

pub fn to_xml(m: &Map<String, Value>) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let mut root = m.clone();
    root.insert("xmlns".into(), json!(XMLNS));
    element("subsonic-response", &root, &mut out);
    out
}

fn element(name: &str, fields: &Map<String, Value>, out: &mut String) {
    out.push('<');
    out.push_str(name);
    let mut text = None;
    for (k, v) in fields {
        match v {
            Value::Object(_) | Value::Array(_) | Value::Null => {}
            _ if k == "value" => text = Some(scalar(v)),
            _ => {
                out.push(' ');
                out.push_str(k);
                out.push_str("=\"");
                escape(&scalar(v), out);
                out.push('"');
            }
        }
    }
    let children: Vec<(&String, &Value)> = fields
        .iter()
        .filter(|(_, v)| matches!(v, Value::Object(_) | Value::Array(_)))
        .collect();
    if children.is_empty() && text.is_none() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    if let Some(t) = text {
        escape(&t, out);
    }
    for (k, v) in children {
        child(k, v, out);
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn child(name: &str, v: &Value, out: &mut String) {
    match v {
        Value::Object(o) => element(name, o, out),
        Value::Array(items) => {
            for item in items {
                child(name, item, out);
            }
        }
        Value::Null => {}
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other.clone());
            element(name, &m, out);
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// XML-escapes `s`, dropping the control characters XML 1.0 cannot carry.
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_has_attributes_children_and_text() {
        let body = json!({
            "album": {"id": "al-1", "name": "Tom & \"Jerry\" <3\u{1}", "song": [{"id": "a"}, {"id": "b"}]},
            "genres": {"genre": [{"value": "Rock", "songCount": 2}]},
        });
        let Value::Object(m) = body else {
            unreachable!()
        };
        let mut env = envelope("ok");
        env.extend(m);
        let x = to_xml(&env);
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><subsonic-response"));
        assert!(x.contains("xmlns=\"http://subsonic.org/restapi\""));
        assert!(x.contains("status=\"ok\""));
        assert!(x.contains(
            "<album id=\"al-1\" name=\"Tom &amp; &quot;Jerry&quot; &lt;3\"><song id=\"a\"/><song id=\"b\"/></album>"
        ));
        assert!(x.contains("<genre songCount=\"2\">Rock</genre>"), "{x}");
        assert!(x.ends_with("</subsonic-response>"));
    }
}
