//! Who is calling, for the history a command writes and for plain repository names.

/// The caller of the commands.
#[allow(async_fn_in_trait)]
pub trait Identity {
    /// The caller's account and ARN, when they can be learnt.
    async fn caller(&self) -> Option<(String, String)>;
}
