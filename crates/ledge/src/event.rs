//! `ledge event`: prints a CloudFront event of one type, to feed `ledge invoke`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::process::ExitCode;

use ledge_model::event::{
    cloudfront_request_id, Body, CustomOrigin, EventInput, EventType, Headers, Request, Response,
};

/// The trigger to build an event for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Trigger {
    /// After CloudFront receives the viewer's request.
    ViewerRequest,
    /// Before CloudFront forwards the request to the origin.
    OriginRequest,
    /// After CloudFront receives the origin's response.
    OriginResponse,
    /// Before CloudFront returns the response to the viewer.
    ViewerResponse,
}

/// Flags of `ledge event`.
#[derive(Debug, clap::Args)]
pub(crate) struct EventArgs {
    /// Which trigger's event to print.
    #[arg(value_enum)]
    pub(crate) event_type: Trigger,
    /// Request path, starting with `/`.
    #[arg(long, default_value = "/")]
    pub(crate) uri: String,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub(crate) method: String,
    /// Query string, without the leading `?`.
    #[arg(long, default_value = "")]
    pub(crate) querystring: String,
    /// A request header `Name: value` (repeatable; replaces a default of the same name).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub(crate) headers: Vec<String>,
    /// Request body (request events; shown as with IncludeBody).
    #[arg(long)]
    pub(crate) body: Option<String>,
    /// The viewer's IP address.
    #[arg(long, default_value = "203.0.113.10")]
    pub(crate) client_ip: String,
    /// The distribution's domain name (also the viewer's Host).
    #[arg(long, default_value = "d111111abcdef8.cloudfront.net")]
    pub(crate) domain: String,
    /// The distribution id.
    #[arg(long, default_value = "EDFDVBD6EXAMPLE")]
    pub(crate) distribution_id: String,
    /// The custom origin's domain name (origin events).
    #[arg(long, default_value = "origin.example.com")]
    pub(crate) origin_domain: String,
    /// Response status (response events).
    #[arg(long, default_value_t = 200)]
    pub(crate) status: u16,
    /// A response header `Name: value` (repeatable; response events).
    #[arg(long = "response-header", value_name = "NAME:VALUE")]
    pub(crate) response_headers: Vec<String>,
}

/// Runs `ledge event`.
pub(crate) async fn run(args: EventArgs) -> anyhow::Result<ExitCode> {
    let event = build(&args)?;
    println!("{}", serde_json::to_string_pretty(&event)?);
    Ok(ExitCode::SUCCESS)
}

fn build(args: &EventArgs) -> anyhow::Result<ledge_model::event::Event> {
    let event_type = match args.event_type {
        Trigger::ViewerRequest => EventType::ViewerRequest,
        Trigger::OriginRequest => EventType::OriginRequest,
        Trigger::OriginResponse => EventType::OriginResponse,
        Trigger::ViewerResponse => EventType::ViewerResponse,
    };
    let at_origin = matches!(
        event_type,
        EventType::OriginRequest | EventType::OriginResponse
    );
    let mut defaults: Vec<(String, String)> = if at_origin {
        vec![
            ("X-Forwarded-For".into(), args.client_ip.clone()),
            ("User-Agent".into(), "Amazon CloudFront".into()),
            (
                "Via".into(),
                format!("1.1 {:032x}.cloudfront.net (CloudFront)", random_u128()),
            ),
            ("Host".into(), args.origin_domain.clone()),
        ]
    } else {
        vec![
            ("Host".into(), args.domain.clone()),
            ("User-Agent".into(), "curl/8.5.0".into()),
            ("Accept".into(), "*/*".into()),
        ]
    };
    let given = parse_headers(&args.headers)?;
    defaults.retain(|(name, _)| !given.iter().any(|(g, _)| g.eq_ignore_ascii_case(name)));
    let headers = Headers::from_pairs(defaults.into_iter().chain(given));

    let origin = at_origin.then(|| {
        ledge_model::event::EventOrigin::Custom(CustomOrigin {
            custom_headers: Headers::new(),
            domain_name: args.origin_domain.clone(),
            keepalive_timeout: 5,
            path: String::new(),
            port: 443,
            protocol: "https".into(),
            read_timeout: 30,
            ssl_protocols: vec!["TLSv1.2".into()],
        })
    });
    let response_headers = Headers::from_pairs(
        std::iter::once(("Content-Type".to_string(), "text/html".to_string()))
            .filter(|_| {
                !args
                    .response_headers
                    .iter()
                    .any(|h| h.to_ascii_lowercase().starts_with("content-type:"))
            })
            .chain(parse_headers(&args.response_headers)?),
    );
    let mut random = [0u8; 40];
    for chunk in random.chunks_mut(16) {
        chunk.copy_from_slice(&random_u128().to_le_bytes()[..chunk.len()]);
    }
    let input = EventInput {
        event_type,
        distribution_domain_name: args.domain.clone(),
        distribution_id: args.distribution_id.clone(),
        request_id: cloudfront_request_id(&random),
        request: Request {
            body: args.body.as_deref().map(|b| Body::from_bytes(b.as_bytes())),
            client_ip: args.client_ip.clone(),
            headers,
            method: args.method.to_ascii_uppercase(),
            origin,
            querystring: args.querystring.trim_start_matches('?').to_string(),
            uri: args.uri.clone(),
        },
        response: Some(Response {
            headers: response_headers,
            status: args.status.to_string(),
            status_description: reason_phrase(args.status).to_string(),
        }),
    };
    Ok(input.into_event())
}

fn parse_headers(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter()
        .map(|h| {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("header {h:?} is not NAME:VALUE"))?;
            let name = name.trim();
            if name.is_empty() {
                anyhow::bail!("header {h:?} has no name");
            }
            Ok((name.to_string(), value.trim().to_string()))
        })
        .collect()
}

/// Random bits without a random-number dependency: std's hasher keys are random per process.
fn random_u128() -> u128 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut out = 0u128;
    for salt in 0..2u8 {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u8(salt);
        out = (out << 64) | u128::from(h.finish());
    }
    out
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: EventArgs,
    }

    fn event(argv: &[&str]) -> serde_json::Value {
        let cli = Cli::parse_from(std::iter::once("event").chain(argv.iter().copied()));
        serde_json::to_value(build(&cli.args).unwrap()).unwrap()
    }

    #[test]
    fn viewer_request_with_flags() {
        let e = event(&[
            "viewer-request",
            "--uri",
            "/a",
            "--method",
            "post",
            "--header",
            "Cookie: a=1",
            "--header",
            "cookie: b=2",
            "--body",
            "hi",
        ]);
        let cf = &e["Records"][0]["cf"];
        assert_eq!(cf["config"]["eventType"], "viewer-request");
        assert_eq!(cf["config"]["requestId"].as_str().unwrap().len(), 56);
        assert_eq!(cf["request"]["method"], "POST");
        assert_eq!(cf["request"]["uri"], "/a");
        assert_eq!(cf["request"]["querystring"], "");
        assert_eq!(
            cf["request"]["headers"]["cookie"].as_array().unwrap().len(),
            2
        );
        assert_eq!(cf["request"]["headers"]["cookie"][1]["key"], "cookie");
        assert_eq!(cf["request"]["body"]["data"], "aGk=");
        assert!(cf.get("response").is_none());
        assert!(cf["request"].get("origin").is_none());
    }

    #[test]
    fn origin_response_has_origin_and_response() {
        let e = event(&["origin-response", "--status", "404"]);
        let cf = &e["Records"][0]["cf"];
        assert_eq!(cf["response"]["status"], "404");
        assert_eq!(cf["response"]["statusDescription"], "Not Found");
        assert_eq!(
            cf["request"]["origin"]["custom"]["domainName"],
            "origin.example.com"
        );
        assert_eq!(
            cf["request"]["headers"]["host"][0]["value"],
            "origin.example.com"
        );
        assert!(cf["request"].get("body").is_none());
    }
}
