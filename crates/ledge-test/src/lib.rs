//! The shared integration-test harness: fake origins on `127.0.0.1:0`, the real `ledge edge`
//! process on port 0 with a snapshot file, clients (hyper, curl, raw TCP), self-signed
//! certificates and [`assert_eventually!`].
//!
//! A test in `crates/ledge/tests/` starts an origin and an edge in a few lines:
//!
//! ```no_run
//! # async fn demo() {
//! use ledge_test::{client, edge::Edge, origin::{Origin, Route}, snapshot};
//! let origin = Origin::new().route("/a", Route::ok("hello")).run().await;
//! let edge = Edge::builder("target/debug/ledge")
//!     .snapshot(snapshot::single("E1", "d1.ledge.localhost", origin.port()))
//!     .start();
//! let reply = client::get(edge.http, "d1.ledge.localhost", "/a").await;
//! assert_eq!(reply.text(), "hello");
//! # }
//! ```

pub mod certs;
pub mod client;
pub mod control;
pub mod edge;
pub mod lambda;
pub mod origin;
pub mod pg;
pub mod process;
pub mod snapshot;

/// Retries an assertion until it holds or `patience` (default 10 s) runs out.
///
/// `assert_eventually!(cond)` or `assert_eventually!(cond, Duration)`; `cond` may `.await`.
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr) => {
        $crate::assert_eventually!($cond, ::std::time::Duration::from_secs(10))
    };
    ($cond:expr, $patience:expr) => {{
        let deadline = ::std::time::Instant::now() + $patience;
        loop {
            if $cond {
                break;
            }
            if ::std::time::Instant::now() > deadline {
                panic!("condition never held: {}", stringify!($cond));
            }
            ::tokio::time::sleep(::std::time::Duration::from_millis(50)).await;
        }
    }};
}
