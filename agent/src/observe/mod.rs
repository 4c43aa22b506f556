//! Observe stage: the live node. Each source is its own module and fails on its
//! own: a dead D-Bus never hides route drift.

pub mod bus;
pub mod networkmanager;
pub mod routes;
pub mod units;
