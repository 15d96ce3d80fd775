//! The router: the first route whose conditions all hold picks the target.

pub mod condition;
pub mod retry;
pub mod route;

pub use condition::{Condition, ConditionError, MatchOp};
pub use retry::{Mirror, RetryOn, RetryPolicy};
pub use route::{
    HOST_KEY, HostMatch, PathRewrite, Redirect, Rewrite, Route, RouteAction, RouteTable, Target,
    VirtualHost,
};
