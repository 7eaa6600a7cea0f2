//! SigV4 tests against the published vectors of `apis.md` §1.5.

use super::*;

const KEY: &str = "AKIDLEDGEEXAMPLE01";
const SECRET: &str = "ledge/Secret+Key/Example/0123456789abcdEF";
const HOST: &str = "127.0.0.1:4000";
const TS: &str = "20240115T120000Z";

fn verifier() -> Verifier {
    Verifier {
        credentials: Credentials {
            access_key_id: KEY.into(),
            secret_access_key: SECRET.into(),
        },
        max_skew: Duration::from_secs(300),
    }
}

fn at(ts: &str) -> SystemTime {
    parse_amz_date(ts).unwrap()
}

fn auth(signed: &str, sig: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential={KEY}/20240115/us-east-1/lambda/aws4_request, SignedHeaders={signed}, Signature={sig}")
}

const SIG_A: &str = "c705a18329583f8bdf8511dfa0b8e4e5d10619557784cf817303197521eb6682";
const SIG_B: &str = "71921e7dd8ec5fd42a1f7426f63222200a29d8029282ab309f6617b2905c3cb1";

fn request_a(sig: &str) -> SignedRequest<'static> {
    SignedRequest {
        method: "GET",
        path: "/2015-03-31/functions/",
        query: "MaxItems=10&FunctionVersion=ALL",
        headers: vec![
            ("host".into(), HOST.into()),
            ("x-amz-date".into(), TS.into()),
            ("authorization".into(), auth("host;x-amz-date", sig)),
        ],
        body: b"",
    }
}

#[test]
fn signing_key_matches_vector() {
    let key = aws_sigv4::sign::v4::generate_signing_key(SECRET, at(TS), "us-east-1", "lambda");
    assert_eq!(
        hex::encode(key.as_ref()),
        "48e4130e1470bb10862ffd024c86953dd8676257a7843211b890dec59b964813"
    );
}

#[test]
fn vector_a_list_functions() {
    assert_eq!(
        canonical_uri("/2015-03-31/functions/"),
        "/2015-03-31/functions/"
    );
    assert_eq!(
        canonical_query("MaxItems=10&FunctionVersion=ALL", false),
        "FunctionVersion=ALL&MaxItems=10"
    );
    let canonical = "GET\n/2015-03-31/functions/\nFunctionVersion=ALL&MaxItems=10\nhost:127.0.0.1:4000\nx-amz-date:20240115T120000Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let sts = string_to_sign(TS, "20240115/us-east-1/lambda/aws4_request", canonical);
    assert!(sts.ends_with("7e2c17626e33de2888e308a74d11e2a7d834da755848675b0ae236edce59801d"));
    assert_eq!(sign(SECRET, at(TS), "us-east-1", "lambda", &sts), SIG_A);
    let ok = verifier()
        .verify(&request_a(SIG_A), "lambda", at(TS))
        .unwrap();
    assert_eq!(ok.region, "us-east-1");
}

#[test]
fn vector_b_invoke_with_arn_path() {
    let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A111122223333%3Afunction%3Ahello/invocations";
    assert_eq!(
        canonical_uri(path),
        "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A111122223333%253Afunction%253Ahello/invocations"
    );
    let req = SignedRequest {
        method: "POST",
        path,
        query: "Qualifier=3",
        headers: vec![
            ("host".into(), HOST.into()),
            ("x-amz-date".into(), TS.into()),
            ("x-amz-invocation-type".into(), "RequestResponse".into()),
            (
                "authorization".into(),
                auth("host;x-amz-date;x-amz-invocation-type", SIG_B),
            ),
        ],
        body: b"{\"ping\":1}",
    };
    assert_eq!(
        payload_hash(&req).unwrap(),
        "64877f16df2e7bc1e4229fe1559ccf65b3c87f1f70512d0fb1cc8cc3232e9778"
    );
    verifier().verify(&req, "lambda", at(TS)).unwrap();

    // A different body no longer matches.
    let tampered = SignedRequest {
        body: b"{\"ping\":2}",
        ..req
    };
    assert!(matches!(
        verifier().verify(&tampered, "lambda", at(TS)),
        Err(ApiError::InvalidSignature(_))
    ));
}

#[test]
fn vector_c_presigned() {
    let creds = verifier().credentials;
    let url = presign_get(
        &creds,
        HOST,
        "/2020-05-31/distribution/E2LEDGEXAMPLE1",
        "us-east-1",
        "cloudfront",
        at(TS),
        Duration::from_secs(300),
    );
    assert!(
        url.ends_with(
            "X-Amz-Signature=e54369031d4210c2aa7570e65e9dd5c8c09d1f7ba7862cbe4fec4141731a7144"
        ),
        "{url}"
    );
    let query = url.split_once('?').unwrap().1;
    let req = SignedRequest {
        method: "GET",
        path: "/2020-05-31/distribution/E2LEDGEXAMPLE1",
        query,
        headers: vec![("host".into(), HOST.into())],
        body: b"",
    };
    let v = verifier();
    v.verify(&req, "cloudfront", at("20240115T120100Z"))
        .unwrap();
    assert!(matches!(
        v.verify(&req, "cloudfront", at("20240115T120500Z")),
        Err(ApiError::InvalidSignature(m)) if m == "Request has expired"
    ));
    assert!(matches!(
        v.verify(&req, "lambda", at(TS)),
        Err(ApiError::InvalidSignature(_))
    ));
}

#[test]
fn verification_order_and_errors() {
    let v = verifier();
    let none = SignedRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: vec![("host".into(), HOST.into())],
        body: b"",
    };
    assert!(matches!(
        v.verify(&none, "lambda", at(TS)),
        Err(ApiError::MissingAuthentication)
    ));

    let mut bad = request_a(SIG_A);
    bad.headers[2].1 = "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00".into();
    assert!(matches!(
        v.verify(&bad, "lambda", at(TS)),
        Err(ApiError::IncompleteSignature(_))
    ));

    let err = v
        .verify(&request_a(SIG_A), "lambda", at("20240115T121101Z"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature expired: 20240115T120000Z is now earlier than 20240115T120601Z (20240115T121101Z - 5 min.)"
    );
    assert!(matches!(
        v.verify(&request_a(SIG_A), "lambda", at("20240115T115000Z")),
        Err(ApiError::InvalidSignature(_))
    ));

    let mut other_key = request_a(SIG_A);
    other_key.headers[2].1 = other_key.headers[2].1.replace(KEY, "AKIDUNKNOWN");
    assert!(matches!(
        v.verify(&other_key, "lambda", at(TS)),
        Err(ApiError::UnrecognizedClient)
    ));

    let mut unsigned_date = request_a(SIG_A);
    unsigned_date.headers[2].1 = auth("host", SIG_A);
    assert!(matches!(
        v.verify(&unsigned_date, "lambda", at(TS)),
        Err(ApiError::InvalidSignature(m)) if m.contains("X-Amz-Date")
    ));

    let wrong = request_a(&"0".repeat(64));
    assert!(matches!(
        v.verify(&wrong, "lambda", at(TS)),
        Err(ApiError::InvalidSignature(m)) if m.contains("does not match")
    ));
    assert!(matches!(
        v.verify(&request_a(SIG_A), "cloudfront", at(TS)),
        Err(ApiError::InvalidSignature(_))
    ));
}

#[test]
fn canonical_uri_normalises() {
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("//a/./b/../c/"), "/a/c/");
    assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
}
