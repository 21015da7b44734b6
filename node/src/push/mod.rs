//! Live push to consoles: the event hub over applied entries and the `/ws` endpoint.

pub mod hub;
pub mod ws;
