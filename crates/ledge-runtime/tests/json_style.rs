//! `JsonStyle` writes JSON as each real runtime's encoder does: a part of the event handed
//! back unchanged comes back byte for byte (what the edge relies on to skip re-reading it).
mod common;

use common::*;
use ledge_runtime::Language;
use serde_json::json;

/// Strings each encoder might escape differently: non-ASCII, astral, controls, DEL, quotes,
/// backslashes, slashes, line separators.
fn record() -> serde_json::Value {
    json!({
        "clientIp": "203.0.113.9",
        "headers": {
            "x-tricky": [{"key": "X-Tricky", "value": "é ü 😀 \u{1f}\t\n\"\\ / </script> \u{7f} \u{2028}"}],
            "host": [{"key": "Host", "value": "d.example"}]
        },
        "method": "GET",
        "querystring": "a=1&b=%C3%A9",
        "uri": "/caf\u{e9}",
        "body": {"inputTruncated": false, "data": "aGk=", "action": "read-only"}
    })
}

async fn echo_is_byte_for_byte(id: &str, handler: &str, file: &str, code: &str) {
    let rt = runtime();
    let f = rt.load(id, handler, &[(file, code)]).await;
    let style = Language::of(id).expect("supported").json_style();
    let mut record_bytes = Vec::new();
    style.write(&mut record_bytes, &record()).expect("json");
    let mut event = Vec::new();
    style
        .write(&mut event, &json!({"record": record()}))
        .expect("json");
    for _ in 0..2 {
        let out = f.invoke(&event).await.expect("invocation");
        assert_eq!(
            String::from_utf8_lossy(&out.payload),
            String::from_utf8_lossy(&record_bytes),
            "{id}"
        );
    }
}

#[tokio::test]
async fn node_hands_back_an_unchanged_record_byte_for_byte() {
    echo_is_byte_for_byte(
        "nodejs20.x",
        "index.handler",
        "index.js",
        "exports.handler = async (event) => event.record;",
    )
    .await;
}

#[tokio::test]
async fn python_hands_back_an_unchanged_record_byte_for_byte() {
    echo_is_byte_for_byte(
        "python3.12",
        "lambda_function.handler",
        "lambda_function.py",
        "def handler(event, context):\n    return event['record']\n",
    )
    .await;
}
