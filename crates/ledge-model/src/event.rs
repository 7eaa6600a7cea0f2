//! Lambda@Edge event records (filled in by the runtime work).
