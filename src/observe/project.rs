//! The reconstruction as the explorer's [`App`] model, as of an event: the
//! same views (agents, chain tree, detail, probe) draw it.
