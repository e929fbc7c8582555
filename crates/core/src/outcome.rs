//! How a command that ran to its end went; the command line turns it into an exit code.

/// How a command that ran to its end went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything succeeded.
    Success,
    /// Some inputs failed (already reported).
    SomeFailed,
    /// Stopped by a signal (Ctrl-C), cleanly, with its work left resumable (already reported).
    Interrupted,
}
