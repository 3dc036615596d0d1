//! The outcomes that have their own exit code (see `nexus --help`); every other error exits 1.

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0} invariant violation(s) found")]
    Violations(usize),
    #[error("order {order_id} ended {status}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NotCompleted { order_id: String, status: String, reason: Option<String> },
    #[error("order {order_id} is still {status} after {waited_seconds} s; follow it with `nexus status {order_id}`")]
    TimedOut { order_id: String, status: String, waited_seconds: u64 },
    #[error("retry refused: {0}")]
    RetryRefused(String),
    #[error("not everything was erased: {0}")]
    Incomplete(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::NotFound(_) => 3,
            Self::Violations(_) => 4,
            Self::NotCompleted { .. } => 5,
            Self::TimedOut { .. } => 6,
            Self::RetryRefused(_) => 7,
            Self::Incomplete(_) => 8,
        }
    }
}

/// The exit code for an error: its [`Failure`]'s, or 1.
pub fn code_of(error: &anyhow::Error) -> u8 {
    error.chain().find_map(|cause| cause.downcast_ref::<Failure>()).map_or(1, Failure::code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_their_code_through_context() {
        let error = anyhow::Error::new(Failure::NotFound("order x".into())).context("nexus status");
        assert_eq!(code_of(&error), 3);
        assert_eq!(code_of(&anyhow::anyhow!("throttled")), 1);
        assert_eq!(code_of(&Failure::Violations(2).into()), 4);
    }
}
