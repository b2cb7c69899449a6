//! Client-side limits that keep Bulwark inside a provider's quotas, so that
//! a request is never sent just to collect a 429.

pub mod book;
pub mod estimate;
pub mod queue;
pub mod quota;
pub mod shared_quota;
pub mod window;
