//! The audit trail's hash chain (spec §10.3): one incremental check, one
//! genesis rule, one wording, used by observe and the explorer's audit view.
