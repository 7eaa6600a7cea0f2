//! Lambda function ARNs and qualifiers, as the control plane and the edge both read them.
//!
//! `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`, where the qualifier is
//! `$LATEST`, a version number or an alias name. CloudFront associations must name a
//! numbered version ([`FunctionArn::version`]).

use std::fmt;

/// What a qualifier designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    /// `$LATEST`.
    Latest,
    /// A published version (1, 2, …).
    Version(u64),
    /// An alias name (never all digits).
    Alias(String),
}

/// A parsed Lambda function ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionArn {
    /// Partition, normally `aws`.
    pub partition: String,
    /// Region, e.g. `us-east-1`.
    pub region: String,
    /// 12-digit account id.
    pub account: String,
    /// Function name.
    pub name: String,
    /// Qualifier, when the ARN has one.
    pub qualifier: Option<Qualifier>,
}

/// Why a string is not a Lambda function ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Lambda function ARN: {0}")]
pub struct ArnError(pub String);

/// `[A-Za-z0-9_-]{1,max}`: the shape of function and alias names.
pub fn is_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// === impl Qualifier ===

impl Qualifier {
    /// Classifies a qualifier; `None` when it has none of the allowed forms.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "$LATEST" {
            Some(Self::Latest)
        } else if !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok().map(Self::Version)
        } else if is_name(s, 128) {
            Some(Self::Alias(s.to_owned()))
        } else {
            None
        }
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("$LATEST"),
            Self::Version(n) => write!(f, "{n}"),
            Self::Alias(a) => f.write_str(a),
        }
    }
}

// === impl FunctionArn ===

impl FunctionArn {
    /// Parses a full function ARN (qualified or not).
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        let err = || ArnError(s.to_owned());
        let parts: Vec<&str> = s.split(':').collect();
        let (partition, region, account, name, qualifier) = match parts.as_slice() {
            ["arn", p, "lambda", r, a, "function", n] => (*p, *r, *a, *n, None),
            ["arn", p, "lambda", r, a, "function", n, q] => (*p, *r, *a, *n, Some(*q)),
            _ => return Err(err()),
        };
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        if !partition.starts_with("aws") || region.is_empty() || !account_ok || !is_name(name, 64) {
            return Err(err());
        }
        let qualifier = match qualifier {
            None => None,
            Some(q) => Some(Qualifier::parse(q).ok_or_else(err)?),
        };
        Ok(Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            name: name.to_owned(),
            qualifier,
        })
    }

    /// The version number, when the ARN names a published version.
    pub fn version(&self) -> Option<u64> {
        match self.qualifier {
            Some(Qualifier::Version(n)) => Some(n),
            _ => None,
        }
    }

    /// The same ARN without its qualifier.
    pub fn unqualified(&self) -> Self {
        Self {
            qualifier: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for FunctionArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition, self.region, self.account, self.name
        )?;
        if let Some(q) = &self.qualifier {
            write!(f, ":{q}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in [
            "arn:aws:lambda:us-east-1:111122223333:function:hello",
            "arn:aws:lambda:us-east-1:111122223333:function:hello:3",
            "arn:aws:lambda:us-east-1:111122223333:function:hello:$LATEST",
            "arn:aws:lambda:us-east-1:111122223333:function:hello:live",
        ] {
            assert_eq!(FunctionArn::parse(s).unwrap().to_string(), s);
        }
        let v =
            FunctionArn::parse("arn:aws:lambda:us-east-1:111122223333:function:hello:3").unwrap();
        assert_eq!(v.version(), Some(3));
        assert_eq!(v.unqualified().qualifier, None);
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "hello",
            "arn:aws:lambda:us-east-1:1111:function:hello",
            "arn:aws:s3:us-east-1:111122223333:function:hello",
            "arn:aws:lambda:us-east-1:111122223333:function:bad name",
            "arn:aws:lambda:us-east-1:111122223333:function:hello:a b",
        ] {
            assert!(FunctionArn::parse(s).is_err(), "{s}");
        }
    }
}
