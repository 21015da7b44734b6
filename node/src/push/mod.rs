//! Live push to consoles: the event hub over applied entries, the `/ws` endpoint and the node
//! as its backend (a gateway is the other).

pub mod hub;
pub mod node_backend;
pub mod ws;
