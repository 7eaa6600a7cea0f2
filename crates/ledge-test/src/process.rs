//! Stopping a `ledge` process the way an operator does.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Stops `child` with SIGTERM and waits for it (up to 5 s, then SIGKILL). A ledge killed
/// outright leaves what it cleans up on a normal exit behind: as root, the tmpfs mounts of its
/// functions' `/tmp`, which would outlive the test's temporary directory.
pub fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}
