mod common;
use common::*;

#[tokio::test]
async fn node_and_python_answer() {
    let rt = runtime();
    let node = rt
        .load(
            "nodejs20.x",
            "index.handler",
            &[("index.js", "exports.handler = async (e) => ({ got: e.x });")],
        )
        .await;
    assert_eq!(
        call(&node, r#"{"x":1}"#).await,
        serde_json::json!({"got": 1})
    );
    let py = rt
        .load(
            "python3.11",
            "lambda_function.lambda_handler",
            &[(
                "lambda_function.py",
                "def lambda_handler(e, c):\n    return {'got': e['x']}\n",
            )],
        )
        .await;
    assert_eq!(call(&py, r#"{"x":2}"#).await, serde_json::json!({"got": 2}));
    let out = py.invoke(br#"{"x":3}"#).await.unwrap();
    println!("{}", out.logs.text());
}
