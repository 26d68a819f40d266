//! Decision logic of the mesh: who is a member, who is alive, who should hold what. Pure
//! functions and state machines; the node drives them with events and the clock.

pub mod holdings;
pub mod holdings_pages;
pub mod liveness;
pub mod membership;
pub mod placement;
