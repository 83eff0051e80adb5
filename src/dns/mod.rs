//! DNS: the view of the cluster as names, and the rules that answer questions from it.

pub mod contents;
pub mod explain;
pub mod journal;
pub mod question;
pub mod rules;
pub mod sharded;
pub mod view;
