//! The HTTP plumbing every handler shares, written once: the `{site}` path segment and
//! the registered site it names, the requesting page's host, and conditional GETs with
//! their ETags. A layer below the handlers: it imports only the sites and the error type
//! (the `Sites` it needs come from the router's state through `FromRef`).

pub mod conditional;
pub mod cors;
pub mod origin;
pub mod site;
