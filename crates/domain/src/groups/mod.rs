//! Run groups (issue #17): one suite split across the pool, one answer. The pure parts that
//! the group commands are built on: how a suite is split across shards by its tests' past
//! durations ([`split`]) and how a group's members make its verdict ([`verdict`]).

pub mod split;
pub mod verdict;
