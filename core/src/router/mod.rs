//! The router: the first route whose conditions all hold picks the target;
//! route lists and virtual hosts are indexed when the table is built.

pub mod condition;
mod hosts;
mod index;
pub mod retry;
pub mod route;
pub mod table;

#[cfg(test)]
mod equivalence_tests;

pub use condition::{Condition, ConditionError, MatchOp};
pub use hosts::{HostMatch, VirtualHost};
pub use index::MIN_INDEXED_ROUTES;
pub use retry::{RetryOn, RetryPolicy, UnknownRetryCondition};
pub use route::{Mirror, PathRewrite, Redirect, Rewrite, Route, RouteAction, Target};
pub use table::{HOST_KEY, RouteTable};
