//! CloudFront path patterns: `*` (any run of characters, `/` included) and `?` (one character),
//! anchored at both ends, case-sensitive, matched against the path as received.
//!
//! A pattern is compiled once per snapshot; matching never allocates.

/// A compiled `PathPattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// The pattern with a leading `/` (CloudFront treats it as optional).
    text: Box<[u8]>,
    shape: Shape,
}

/// Fast paths for the shapes almost every real pattern has.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// `*` alone (after the leading slash: `/*`): everything.
    Any,
    /// No wildcard at all.
    Exact,
    /// `literal*`.
    Prefix(usize),
    /// `/*literal` (only the leading slash before the star).
    Suffix(usize),
    /// Anything else.
    General,
}

// === impl PathPattern ===

impl PathPattern {
    /// Compiles a pattern; a missing leading `/` is added.
    pub fn new(pattern: &str) -> Self {
        let mut text = Vec::with_capacity(pattern.len() + 1);
        if !pattern.starts_with('/') {
            text.push(b'/');
        }
        text.extend_from_slice(pattern.as_bytes());
        let stars = text.iter().filter(|b| **b == b'*').count();
        let qs = text.iter().filter(|b| **b == b'?').count();
        let shape = if qs == 0 && stars == 0 {
            Shape::Exact
        } else if qs == 0 && stars == 1 && text.as_slice() == b"/*" {
            Shape::Any
        } else if qs == 0 && stars == 1 && text.last() == Some(&b'*') {
            Shape::Prefix(text.len() - 1)
        } else if qs == 0 && stars == 1 && text.starts_with(b"/*") {
            Shape::Suffix(text.len() - 2)
        } else {
            Shape::General
        };
        Self {
            text: text.into_boxed_slice(),
            shape,
        }
    }

    /// Whether the URL path (no query string) matches.
    pub fn matches(&self, path: &str) -> bool {
        let p = path.as_bytes();
        let t = &self.text;
        match self.shape {
            Shape::Any => p.first() == Some(&b'/'),
            Shape::Exact => p == &t[..],
            Shape::Prefix(n) => p.starts_with(&t[..n]),
            Shape::Suffix(n) => p.first() == Some(&b'/') && p[1..].ends_with(&t[t.len() - n..]),
            Shape::General => glob(t, p),
        }
    }
}

/// Iterative wildcard matching with single-star backtracking: O(len(p) * len(t)) worst case,
/// no allocation.
pub(crate) fn glob(pat: &[u8], text: &[u8]) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        match pat.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(b'?') => {
                pi += 1;
                ti += 1;
            }
            Some(c) if *c == text[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[pi..].iter().all(|b| *b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        PathPattern::new(p).matches(path)
    }

    #[test]
    fn cloudfront_examples() {
        assert!(m("images/*.jpg", "/images/a/b/c.jpg"));
        assert!(m("/images/*.jpg", "/images/x.jpg"));
        assert!(!m("images/*.jpg", "/images/x.gif"));
        assert!(m("images/*", "/images/sample.gif"));
        assert!(m("a??.jpg", "/ant.jpg"));
        assert!(!m("a??.jpg", "/an.jpg"));
        assert!(m("*.doc*", "/x.doc"));
        assert!(m("*.doc*", "/x.docx"));
        assert!(m("*.doc*", "/a/b.docm"));
        assert!(!m("*.jpg", "/LOGO.JPG"));
        assert!(m("*", "/"));
        assert!(m("*", "/anything/at/all"));
        assert!(m("*.gif", "/a/b.gif"));
        assert!(!m("*.gif", "/a/b.gif2"));
        assert!(m("/api/*", "/api/"));
        assert!(!m("/api/*", "/api"));
        assert!(m("/exact", "/exact"));
        assert!(!m("/exact", "/exact/"));
        assert!(m("/a*b*c", "/aXbYc"));
        assert!(m("/a*b*c", "/abbbc"));
        assert!(!m("/a*b*c", "/abX"));
        assert!(m("/*/x?", "/dir/xy"));
    }
}
