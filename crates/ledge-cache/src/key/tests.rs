use super::*;
use crate::settings::{CacheSettings, TtlBounds};
use ledge_model::policy::{managed_cache_policy, CACHING_OPTIMIZED};
