//! DNS: the view of the cluster as names, and the rules that answer questions from it — zone
//! settings and labels (`zone`), which pods back a Service (`backing`, the writer's half), the
//! snapshot readers answer from (`view`, in `sharded` maps, with the `holders` of each address,
//! the `journal` of its changes and the `diagnosis` of what it leaves out), question names
//! (`question`), what each question gets (`answer`), the zone as records (`contents`), and why
//! an answer is empty (`explain`); with several clusters, each under its own zone and which one
//! a question goes to (`clusters`).

pub(crate) mod answer;
pub(crate) mod backing;
pub(crate) mod clusters;
pub(crate) mod clusterset;
pub(crate) mod contents;
pub(crate) mod diagnosis;
pub(crate) mod explain;
mod holders;
pub(crate) mod journal;
pub(crate) mod question;
pub(crate) mod sharded;
pub(crate) mod view;
pub(crate) mod zone;

#[cfg(test)]
#[rustfmt::skip]
mod tests;
