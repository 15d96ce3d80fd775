//! The router: the first route whose conditions all hold picks the target.

pub mod condition;
pub mod route;

pub use condition::{Condition, MatchOp};
pub use route::{Route, RouteAction, RouteTable, Target};
