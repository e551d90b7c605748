//! The offload evaluation: is it worth running detection in the cloud rather than here?
//! Datasets ([`dataset`]), measurements in one row format ([`rows`], summarized with
//! [`stats`]) taken in-process ([`local`]) or over HTTP ([`client`], optionally through the
//! throttling [`proxy`]; signed with [`sigv4`] for an API behind IAM auth), a time and cost
//! model ([`model`]) and the report ([`report`], [`svg`]); adaptive offloading ([`policy`]
//! decides, [`adaptive`] runs, [`policy_table`] compares the runs); [`remote`] answers `detect files --endpoint` with the
//! in-process result schema.

pub mod adaptive;
pub mod client;
pub mod dataset;
pub mod local;
pub mod model;
pub mod policy;
pub mod policy_table;
pub mod proxy;
pub mod remote;
pub mod report;
pub mod rows;
pub mod sigv4;
pub mod stats;
pub mod svg;
