//! Function names, partial and full ARNs, and qualifiers, as Lambda accepts them.

use crate::error::{ApiError, Violations};

/// The regular expression Lambda reports for a malformed `FunctionName`.
const NAME_PATTERN: &str = r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?";

/// A function named in a request path: its bare name and the qualifier it carried, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    /// The bare function name.
    pub name: String,
    /// `$LATEST`, a version number or an alias name, when the name carried one.
    pub qualifier: Option<String>,
}

pub use ledge_model::lambda::{is_name, Qualifier};

/// Parses a `{FunctionName}` path segment (already percent-decoded): `NAME[:QUALIFIER]`,
/// `ACCOUNT:function:NAME[:QUALIFIER]` or a full ARN. `max_len` is the operation's limit on
/// the whole string (140 or 256).
pub fn parse_function_ref(
    input: &str,
    region: &str,
    account: &str,
    max_len: usize,
) -> Result<FunctionRef, ApiError> {
    let mut violations = Violations::default();
    if input.len() > max_len {
        violations.add(
            input,
            "functionName",
            &format!("Member must have length less than or equal to {max_len}"),
        );
    }
    let parts: Vec<&str> = input.split(':').collect();
    let (arn_region, arn_account, name, qualifier) = match parts.as_slice() {
        ["arn", partition, "lambda", r, a, "function", name, rest @ ..]
            if partition.starts_with("aws") && rest.len() <= 1 =>
        {
            (Some(*r), Some(*a), *name, rest.first().copied())
        }
        [a, "function", name, rest @ ..] if rest.len() <= 1 => {
            (None, Some(*a), *name, rest.first().copied())
        }
        [name] => (None, None, *name, None),
        [name, q] => (None, None, *name, Some(*q)),
        _ => (None, None, "", None),
    };
    let qualifier_ok = qualifier.is_none_or(|q| Qualifier::parse(q).is_some());
    if !is_name(name, 64) || !qualifier_ok {
        violations.add(
            input,
            "functionName",
            &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
        );
    }
    violations.finish()?;
    if arn_region.is_some_and(|r| r != region) || arn_account.is_some_and(|a| a != account) {
        return Err(ApiError::InvalidParameter(format!(
            "The region or account in the function ARN ({input}) does not match this endpoint ({region}, {account})."
        )));
    }
    Ok(FunctionRef {
        name: name.to_owned(),
        qualifier: qualifier.map(str::to_owned),
    })
}

/// Combines a qualifier from the name with one from the `Qualifier` parameter.
pub fn merge_qualifier(
    from_name: Option<String>,
    from_query: Option<String>,
) -> Result<Option<String>, ApiError> {
    match (from_name, from_query) {
        (Some(a), Some(b)) if a != b => Err(ApiError::InvalidParameter(
            "The derived qualifier from the function name does not match the specified qualifier."
                .into(),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<FunctionRef, ApiError> {
        parse_function_ref(s, "us-east-1", "111122223333", 140)
    }

    #[test]
    fn accepts_every_form() {
        let plain = FunctionRef {
            name: "hello".into(),
            qualifier: None,
        };
        assert_eq!(parse("hello").unwrap(), plain);
        assert_eq!(parse("111122223333:function:hello").unwrap(), plain);
        assert_eq!(
            parse("arn:aws:lambda:us-east-1:111122223333:function:hello").unwrap(),
            plain
        );
        assert_eq!(
            parse("arn:aws:lambda:us-east-1:111122223333:function:hello:3")
                .unwrap()
                .qualifier
                .as_deref(),
            Some("3")
        );
        assert_eq!(
            parse("hello:$LATEST").unwrap().qualifier.as_deref(),
            Some("$LATEST")
        );
    }

    #[test]
    fn rejects_bad_names_and_foreign_arns() {
        assert!(matches!(parse("bad name"), Err(ApiError::Validation(_))));
        assert!(matches!(
            parse(&"x".repeat(141)),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            parse(&"x".repeat(65)),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            parse("arn:aws:lambda:eu-west-1:111122223333:function:hello"),
            Err(ApiError::InvalidParameter(_))
        ));
        assert!(matches!(
            parse("999999999999:function:hello"),
            Err(ApiError::InvalidParameter(_))
        ));
    }

    #[test]
    fn qualifiers() {
        assert_eq!(Qualifier::parse("$LATEST"), Some(Qualifier::Latest));
        assert_eq!(Qualifier::parse("12"), Some(Qualifier::Version(12)));
        assert_eq!(
            Qualifier::parse("live"),
            Some(Qualifier::Alias("live".into()))
        );
        assert_eq!(Qualifier::parse("a b"), None);
        assert!(merge_qualifier(Some("1".into()), Some("2".into())).is_err());
        assert_eq!(
            merge_qualifier(None, Some("2".into())).unwrap().as_deref(),
            Some("2")
        );
    }
}
