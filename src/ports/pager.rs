//! The on-call channel.

use crate::error::CallError;
use crate::page::Page;

/// The on-call channel.
#[allow(async_fn_in_trait)]
pub trait Pager {
    /// Publishes one page.
    async fn publish(&self, page: &Page) -> Result<(), CallError>;
}
